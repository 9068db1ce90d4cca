import { decodeMessage, Observation } from '@vigil/contracts';
import { Lru } from './lru';

export interface ObservationLogLimits {
  /** Observations kept per observer, the latest ones. */
  perObserver: number;
  /** Observers whose observations are kept at most: the ones heard from least recently go first. */
  observers: number;
  /** An observation larger than this is kept as a note of its size, not its data, bytes. */
  maxBytes: number;
}

type Listener = (observation: Observation) => void;

/**
 * The latest observations of each observer, in the manager's memory, for `GET
 * /observers/{id}/observations`: bounded by count per observer, by observers kept (least
 * recently heard from go first), and by size per observation, so memory stays bounded however
 * many observers publish however much. Listeners hear each new one of their observer.
 */
export class ObservationLog {
  private readonly kept: Lru<string, Observation[]>;
  private readonly listeners = new Map<string, Set<Listener>>();

  constructor(private readonly limits: ObservationLogLimits) {
    this.kept = new Lru(limits.observers);
  }

  /** An observation as it came off the exchange. */
  record(body: Buffer): void {
    const decoded = decodeMessage(Observation, body);
    // The exchange takes anything: what is no observation is not kept.
    if (!decoded.ok) return;
    const observation =
      body.length > this.limits.maxBytes
        ? { ...decoded.value, data: { omitted: `${body.length} bytes, above the ${this.limits.maxBytes} kept` } }
        : decoded.value;
    const { observerId } = observation;
    let ring = this.kept.get(observerId);
    if (!ring) this.kept.set(observerId, (ring = []));
    ring.push(observation);
    if (ring.length > this.limits.perObserver) ring.shift();
    for (const listener of this.listeners.get(observerId) ?? []) listener(observation);
  }

  /** The latest `limit` observations kept for the observer, oldest first. */
  latest(observerId: string, limit: number): Observation[] {
    return (this.kept.get(observerId) ?? []).slice(-limit);
  }

  /** Calls `listener` with each new observation of the observer until the returned function is called. */
  listen(observerId: string, listener: Listener): () => void {
    let set = this.listeners.get(observerId);
    if (!set) this.listeners.set(observerId, (set = new Set()));
    set.add(listener);
    return () => {
      set.delete(listener);
      if (set.size === 0) this.listeners.delete(observerId);
    };
  }
}
