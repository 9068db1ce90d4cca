import { connectWithRecovery, type RecoveringChannelModel } from '@vigil/broker';
import { Observation, brokerNames, decodeMessage } from '@vigil/contracts';

const quiet = { info() {}, warn() {}, error() {} };
const HISTORY = 200;

/**
 * The outside view of what runs where: every observation carries the id of the service that
 * published it, so an observer seen recently from two services runs twice.
 */
export class ObservationWatch {
  /** observerId → serviceId → when last seen (ms). */
  private readonly seen = new Map<string, Map<string, number>>();
  /** `${observerId} ${serviceId}` → when first seen (ms). */
  private readonly first = new Map<string, number>();
  /** observerId → recent observations, oldest first. */
  private readonly history = new Map<string, { at: number; serviceId: string }[]>();
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
    if (!byService) this.seen.set(observerId, (byService = new Map<string, number>()));
    const now = Date.now();
    byService.set(serviceId, now);
    const key = `${observerId} ${serviceId}`;
    if (!this.first.has(key)) this.first.set(key, now);
    let recent = this.history.get(observerId);
    if (!recent) this.history.set(observerId, (recent = []));
    recent.push({ at: now, serviceId });
    if (recent.length > HISTORY) recent.shift();
  }

  /**
   * The longest time the observer ran on two services at once, among recent observations: a
   * service that published, then another service published, then the first published again
   * within `gapMs` (so it never stopped) ran alongside the other from the other's observation
   * to its own last one. A clean move (all of one, then all of the other) counts 0.
   */
  doubleRunMs(observerId: string, gapMs: number): number {
    const recent = this.history.get(observerId) ?? [];
    let longest = 0;
    for (let i = 0; i < recent.length; i++) {
      const later = recent[i]!;
      for (let j = i - 1; j >= 0 && later.at - recent[j]!.at <= gapMs; j--) {
        if (recent[j]!.serviceId !== later.serviceId) continue;
        const intruder = recent.slice(j + 1, i).find((o) => o.serviceId !== later.serviceId);
        if (intruder) longest = Math.max(longest, later.at - intruder.at);
        break;
      }
    }
    return longest;
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
