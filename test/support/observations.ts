import { connectWithRecovery, type RecoveringChannelModel } from '@vigil/broker';
import { Observation, brokerNames, decodeMessage } from '@vigil/contracts';

const quiet = { info() {}, warn() {}, error() {} };

/**
 * The outside view of what runs where: every observation carries the id of the service that
 * published it, so an observer seen recently from two services runs twice.
 */
export class ObservationWatch {
  /** observerId → serviceId → when last seen (ms). */
  private readonly seen = new Map<string, Map<string, number>>();
  /** `${observerId} ${serviceId}` → when first seen (ms). */
  private readonly first = new Map<string, number>();
  private connection: RecoveringChannelModel | undefined;

  static async start(amqpUrl: string, prefix: string): Promise<ObservationWatch> {
    const watch = new ObservationWatch();
    const names = brokerNames(prefix);
    watch.connection = await connectWithRecovery({
      url: amqpUrl,
      heartbeatS: 5,
      connectionName: `vigil test observation watch ${prefix}`,
      log: quiet,
      onDisconnect: () => undefined,
      setup: async (connection) => {
        const channel = await connection.createChannel();
        await channel.assertExchange(names.observationsExchange, 'topic', { durable: true });
        const { queue } = await channel.assertQueue('', { exclusive: true, autoDelete: true });
        await channel.bindQueue(queue, names.observationsExchange, '#');
        await channel.consume(queue, (msg) => msg && watch.record(msg.content), { noAck: true });
      },
    });
    return watch;
  }

  private record(body: Buffer): void {
    const decoded = decodeMessage(Observation, body);
    if (!decoded.ok) return;
    const { observerId, serviceId } = decoded.value;
    let byService = this.seen.get(observerId);
    if (!byService) this.seen.set(observerId, (byService = new Map()));
    const now = Date.now();
    byService.set(serviceId, now);
    const key = `${observerId} ${serviceId}`;
    if (!this.first.has(key)) this.first.set(key, now);
  }

  /** When the observer was first seen from `serviceId`, if ever. */
  firstSeen(observerId: string, serviceId: string): number | undefined {
    return this.first.get(`${observerId} ${serviceId}`);
  }

  /** Services that published for the observer within the last `windowMs`. */
  runningOn(observerId: string, windowMs: number): string[] {
    const cutoff = Date.now() - windowMs;
    return [...(this.seen.get(observerId) ?? new Map<string, number>())]
      .filter(([, at]) => at >= cutoff)
      .map(([serviceId]) => serviceId);
  }

  /** When the observer was last seen from `serviceId`, if ever. */
  lastSeen(observerId: string, serviceId: string): number | undefined {
    return this.seen.get(observerId)?.get(serviceId);
  }

  async close(): Promise<void> {
    await this.connection?.close();
  }
}
