import { connectWithRecovery, type RecoveringChannelModel } from '@vigil/broker';
import { Observation, brokerNames, decodeMessage } from '@vigil/contracts';

const quiet = { info() {}, warn() {}, error() {} };
const RUNS_KEPT = 50;

/** One run of an observer on one service, from its first to its last observation seen. */
export interface Run {
  serviceId: string;
  start: number;
  end: number;
  lastSeq: number;
  /** Silences within the run longer than `SILENCE_KEPT_MS` (a frozen service), by when they began. */
  silences: { from: number; ms: number }[];
}

/** One observation as a listener of the watch gets it: `at` is when the service published it (its clock, ms). */
export interface SeenObservation {
  observerId: string;
  serviceId: string;
  at: number;
  seq: number | undefined;
}

/** A run's silences shorter than this are not kept: observers publish at least this often. */
const SILENCE_KEPT_MS = 250;

function seqOf(data: unknown): number | undefined {
  const seq = (data as { seq?: unknown } | null)?.seq;
  return typeof seq === 'number' ? seq : undefined;
}

/**
 * The outside view of what runs where: every observation carries the id of the service that
 * published it, so an observer seen recently from two services runs twice.
 */
export class ObservationWatch {
  /** observerId → serviceId → when last seen (ms). */
  private readonly seen = new Map<string, Map<string, number>>();
  /** `${observerId} ${serviceId}` → when first seen (ms). */
  private readonly first = new Map<string, number>();
  /** `${observerId} ${serviceId}` → the `at` of the first observation (the service's clock, ms). */
  private readonly firstPublished = new Map<string, number>();
  /** observerId → its recent runs, oldest first. */
  private readonly runs = new Map<string, Run[]>();
  private connection: RecoveringChannelModel | undefined;
  private readonly listeners = new Set<(observation: SeenObservation) => void>();

  /** `bindingKeys`: which observations to watch (routing keys `<kind>.<observerId>`); all by default. */
  static async start(
    amqpUrl: string,
    prefix: string,
    bindingKeys: readonly string[] = ['#'],
  ): Promise<ObservationWatch> {
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
        for (const key of bindingKeys) await channel.bindQueue(queue, names.observationsExchange, key);
        await channel.consume(queue, (msg) => msg && watch.record(msg.content), { noAck: true });
      },
    });
    return watch;
  }

  /** Takes one observation as it came off the exchange. */
  record(body: Buffer, now = Date.now()): void {
    const decoded = decodeMessage(Observation, body);
    if (!decoded.ok) return;
    const { observerId, serviceId, data, at } = decoded.value;
    let byService = this.seen.get(observerId);
    if (!byService) this.seen.set(observerId, (byService = new Map<string, number>()));
    byService.set(serviceId, now);
    const key = `${observerId} ${serviceId}`;
    if (!this.first.has(key)) {
      this.first.set(key, now);
      this.firstPublished.set(key, Date.parse(at));
    }
    const seq = seqOf(data);
    this.recordRun(observerId, serviceId, now, seq);
    if (this.listeners.size > 0) {
      const seen = { observerId, serviceId, at: Date.parse(at), seq };
      for (const listener of this.listeners) listener(seen);
    }
  }

  /**
   * Every observation from now on, as it arrives; returns the function that stops listening.
   * For measurements finer than the runs kept here (every tick of every observer, say).
   */
  listen(listener: (observation: SeenObservation) => void): () => void {
    this.listeners.add(listener);
    return () => this.listeners.delete(listener);
  }

  /** A ticker counts from 0 in every run, so `seq` tells a fresh run from one going on. */
  private recordRun(observerId: string, serviceId: string, at: number, seq: number | undefined): void {
    let runs = this.runs.get(observerId);
    if (!runs) this.runs.set(observerId, (runs = []));
    const current = runs.findLast((run) => run.serviceId === serviceId);
    const continues = current && (seq === undefined ? true : seq > current.lastSeq);
    if (current && continues) {
      if (at - current.end > SILENCE_KEPT_MS) current.silences.push({ from: current.end, ms: at - current.end });
      current.end = at;
      current.lastSeq = seq ?? current.lastSeq;
      return;
    }
    runs.push({ serviceId, start: at, end: at, lastSeq: seq ?? 0, silences: [] });
    if (runs.length > RUNS_KEPT) runs.shift();
  }

  /**
   * The longest time the observer ran on two services at once, among its recent runs: how
   * long two runs on different services both went on publishing, as seen from here.
   */
  doubleRunMs(observerId: string): number {
    const runs = this.runs.get(observerId) ?? [];
    let longest = 0;
    for (const [i, a] of runs.entries()) {
      for (const b of runs.slice(i + 1)) {
        if (a.serviceId === b.serviceId) continue;
        longest = Math.max(longest, Math.min(a.end, b.end) - Math.max(a.start, b.start));
      }
    }
    return longest;
  }

  /**
   * When the observer's first observation from `serviceId` was published, by that service's
   * clock: when it ran there, without the time the observation took to reach this watch.
   */
  publishedFirst(observerId: string, serviceId: string): number | undefined {
    return this.firstPublished.get(`${observerId} ${serviceId}`);
  }

  /** When the observer was first seen from `serviceId`, if ever. */
  firstSeen(observerId: string, serviceId: string): number | undefined {
    return this.first.get(`${observerId} ${serviceId}`);
  }

  /** Every observer ever seen, by id. */
  observerIds(): string[] {
    return [...this.seen.keys()];
  }

  /** The observer's recent runs (by service, first and last observation), oldest first. */
  runsOf(observerId: string): readonly Readonly<Run>[] {
    return this.runs.get(observerId) ?? [];
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
