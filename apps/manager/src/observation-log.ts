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

/** An observation as it came (decoded when read), or one too large, decoded at once and cut down to a note. */
type Kept = Buffer | Observation;

/**
 * The latest observations of each observer, in the manager's memory, for `GET
 * /observers/{id}/observations`: bounded by count per observer, by observers kept (least
 * recently heard from go first), and by size per observation, so memory stays bounded however
 * many observers publish however much. Listeners hear each new one of their observer.
 *
 * Every observation of the fleet passes through here and few are ever read, so each is filed by
 * its routing key (`<kind>.<observerId>`) as it came and decoded only when read: for a busy
 * fleet the manager's share of the observations is a copy, not a validation.
 */
export class ObservationLog {
  private readonly kept: Lru<string, Kept[]>;
  private readonly listeners = new Map<string, Set<Listener>>();

  constructor(private readonly limits: ObservationLogLimits) {
    this.kept = new Lru(limits.observers);
  }

  /** An observation as it came off the exchange. */
  record(routingKey: string, body: Buffer): void {
    const observerId = routingKey.slice(routingKey.lastIndexOf('.') + 1).toLowerCase();
    let entry: Kept;
    if (body.length > this.limits.maxBytes) {
      const observation = decode(observerId, body);
      if (!observation) return;
      entry = { ...observation, data: { omitted: `${body.length} bytes, above the ${this.limits.maxBytes} kept` } };
    } else {
      // A copy: the delivered buffer may share its memory with the rest of what the socket read.
      entry = Buffer.from(body);
    }
    let ring = this.kept.get(observerId);
    if (!ring) this.kept.set(observerId, (ring = []));
    ring.push(entry);
    if (ring.length > this.limits.perObserver) ring.shift();
    const listeners = this.listeners.get(observerId);
    if (!listeners) return;
    const observation = readKept(observerId, entry);
    if (observation) for (const listener of listeners) listener(observation);
  }

  /** The latest `limit` observations kept for the observer, oldest first. */
  latest(observerId: string, limit: number): Observation[] {
    const id = observerId.toLowerCase();
    return (this.kept.get(id) ?? []).flatMap((entry) => readKept(id, entry) ?? []).slice(-limit);
  }

  /** Calls `listener` with each new observation of the observer until the returned function is called. */
  listen(observerId: string, listener: Listener): () => void {
    const id = observerId.toLowerCase();
    let set = this.listeners.get(id);
    if (!set) this.listeners.set(id, (set = new Set()));
    set.add(listener);
    return () => {
      set.delete(listener);
      if (set.size === 0) this.listeners.delete(id);
    };
  }
}

function readKept(observerId: string, entry: Kept): Observation | undefined {
  return Buffer.isBuffer(entry) ? decode(observerId, entry) : entry;
}

/** The exchange takes anything: what is no observation of the observer its routing key names is not one. */
function decode(observerId: string, body: Buffer): Observation | undefined {
  const decoded = decodeMessage(Observation, body);
  return decoded.ok && decoded.value.observerId.toLowerCase() === observerId ? decoded.value : undefined;
}
