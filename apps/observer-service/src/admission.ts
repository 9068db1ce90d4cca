import { cancels, type ObserverNote } from './observer-notes';

/** The copy of an observer a service holds when another job of it is delivered. */
export interface HeldCopy {
  readonly generation: number;
  /** Its delivery is still on a live connection (false: the broker has requeued its job). */
  readonly live: boolean;
  /** Running, waiting for an older copy to end, or parked for want of a kind. */
  readonly state: 'running' | 'stopping' | 'waiting' | 'parked';
  /** Of the same kind and with the same params as the job delivered now. */
  readonly sameRun: boolean;
}

export interface AdmissionInput {
  readonly generation: number;
  /** The service is shutting down, or shedding observers (their next generations must go elsewhere). */
  readonly stopping: boolean;
  readonly note: ObserverNote | undefined;
  readonly held: HeldCopy | undefined;
  /** Serving several pools, the service holds as many jobs as its capacity. */
  readonly full: boolean;
  readonly kindKnown: boolean;
  /** Why the params fail the kind's schema, if they do. */
  readonly paramsError: string | undefined;
}

/** What to do with a delivered job. */
export type Admission =
  /** Run it now. */
  | { action: 'start' }
  /** An older or lost copy of it is still ending here: admit the job again once it has. */
  | { action: 'wait' }
  /**
   * It is newer than the copy running here and asks for the same run: the run carries on as this
   * generation, and the older job is acked (a rotation, or a move that came back here).
   */
  | { action: 'adopt' }
  /** It is newer than the copy held here: that copy ends (its job acked), then this one is admitted again. */
  | { action: 'supersede' }
  /** Ack it and drop it: this generation runs here already, or a newer one does or was announced. */
  | { action: 'drop'; why: 'duplicate' | 'stale' }
  /** Cancelled: ack it (or dead-letter it, for a crash loop) and report it stopped. */
  | { action: 'cancelled'; deadLetter: boolean }
  /** Hand it back to the queue at once, for another service. */
  | { action: 'requeue'; why: 'stopping' | 'full' }
  /** Keep it unacked for a growing pause, then hand it back: no kind here runs it. */
  | { action: 'park' }
  /** Dead-letter it and report the observer failed: its params can never run. */
  | { action: 'reject'; error: string };

/**
 * The admission decision for a delivered job, from what the service holds and has been told.
 * A service never runs two generations of one observer: an older job than the generation it
 * holds or was told about is dropped, a newer one replaces the copy it holds (or, asking for the
 * same run, is adopted by it without a restart).
 */
export function admit(input: AdmissionInput): Admission {
  const { generation, note, held } = input;
  if (input.stopping) return { action: 'requeue', why: 'stopping' };
  if (cancels(note?.cancel, generation)) return { action: 'cancelled', deadLetter: note.cancel.deadLetter };
  if (note?.floor !== undefined && generation < note.floor) return { action: 'drop', why: 'stale' };
  if (held) {
    if (generation < held.generation) return { action: 'drop', why: 'stale' };
    // Its own job, back from the broker after a lost connection: the old run is still ending.
    if (!held.live) return { action: 'wait' };
    if (generation === held.generation) return { action: 'drop', why: 'duplicate' };
    if (held.state === 'stopping') return { action: 'wait' };
    if (held.state === 'running' && held.sameRun) return { action: 'adopt' };
    return { action: 'supersede' };
  }
  if (input.full) return { action: 'requeue', why: 'full' };
  if (!input.kindKnown) return { action: 'park' };
  if (input.paramsError !== undefined) return { action: 'reject', error: input.paramsError };
  return { action: 'start' };
}
