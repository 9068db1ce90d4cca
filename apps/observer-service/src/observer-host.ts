import { isDeepStrictEqual } from 'node:util';
import { backoffDelay, type BackoffPolicy } from '@vigil/backoff';
import { JobMessage, decodeMessage, secretValues, type ReleaseReason } from '@vigil/contracts';
import type { Logger } from '@vigil/logging';
import type { ObserverKind, RestartPolicy } from '@vigil/observer-sdk';
import { admit, type Admission, type HeldCopy } from './admission';
import type { KindRegistry } from './kind-registry';
import { ObserverRun, observerBindings, type RunOutcome } from './observer-run';
import { cancels, ObserverNotes, type CancelHow } from './observer-notes';
import { PacedBatch } from './paced-batch';
import { firstStart, START_REPORT_SPACING_MS } from './state-reporter';

export type Settlement = 'ack' | 'requeue' | 'dead-letter';

/** How the host settles jobs, without knowing the broker. `D` is the transport's delivery. */
export interface JobTransport<D> {
  /** False once the connection the job came on is lost: the broker has requeued it. */
  isLive(delivery: D): boolean;
  wasRedelivered(delivery: D): boolean;
  /** Settles a live delivery on the channel it came from; a lost one is left alone. */
  settle(delivery: D, how: Settlement): void;
  /** The number of jobs held changed (with several pools, consuming pauses while full). */
  heldChanged(held: number): void;
}

export type StopReason = 'cancelled' | 'crash-loop' | 'released';

/** What the host tells the manager. */
export interface HostReports {
  started(job: JobMessage, redelivered: boolean): void;
  stopped(stop: {
    observerId: string;
    /** Unknown for a repeated confirmation of a stop done earlier. */
    generation: number | undefined;
    reason: StopReason;
    graceful: boolean;
    abortLatencyMs?: number;
  }): void;
  failed(job: JobMessage, error: string, attempts: number): void;
  /** It published nothing for its `staleAfterMs` (`stale`), or published again after that. */
  stale(job: JobMessage, stale: boolean, lastPublishedAt: number | undefined, restart: boolean): void;
}

/** How often running observers are looked at for silence, ms. */
const STALE_CHECK_MS = 500;

export interface ObserverHostOptions<D> {
  kinds: KindRegistry;
  restartPolicy: RestartPolicy;
  stopTimeoutMs: number;
  /** How long cancels and releases are remembered, ms. */
  noteMemoryMs: number;
  /** Jobs held at which the service counts as full, when several pools share its capacity. */
  fullAt: number | undefined;
  /** Pauses of a job parked for want of its kind, before it goes back to the queue. */
  parkBackoff: BackoffPolicy;
  transport: JobTransport<D>;
  reports: HostReports;
  /** Sends an observation; false when it was dropped. */
  publish: (job: JobMessage, data: unknown) => boolean;
  /** A run ended here, whatever the cause: nothing it published may be sent after it. */
  ended: (job: JobMessage) => void;
  /** An observer crashed and is restarted in-process (for the metrics). */
  restarting?: () => void;
  log: Logger;
}

/** A job this service holds: running, waiting for an older copy of it to end, or parked. */
interface Hold<D> {
  /** Both change when a newer generation of the same run is adopted. */
  job: JobMessage;
  delivery: D;
  run?: ObserverRun;
  /** Waiting for this to end (an older or lost copy) before it is admitted again. */
  after?: Promise<unknown>;
  /** Parked for want of its kind: the timer hands it back to the queue. */
  parked?: { reason: string; timer: NodeJS.Timeout };
  /** The delivery is still this hold's to settle. */
  owns: boolean;
  /** From a cancel's arrival to the AbortSignal firing, reported with `observer.stopped`. */
  abortLatencyMs?: number;
}

/**
 * The heart of an observer service, apart from the broker: the table of jobs held, the admission
 * decision for each delivered job, and the start, stop, cancel and release of observer runs. A
 * service never runs two copies of one observer; it runs at most one generation of it, and a run
 * that must end (cancelled, released, superseded, its connection lost) is stopped before another
 * copy starts.
 */
export class ObserverHost<D> {
  private readonly holdsOf = new Map<string, Hold<D>>();
  /** Every run not yet ended, including those of holds already replaced. */
  private readonly runs = new Set<ObserverRun>();
  /** Runs while some observer here may go stale. */
  private staleWatch: NodeJS.Timeout | undefined;
  /** Starts not logged yet: logged together, paced as their reports to the manager are. */
  private readonly startsToLog = new PacedBatch<{ job: JobMessage; redelivered: boolean }>(
    START_REPORT_SPACING_MS,
    (starts) => this.logStarts(starts),
  );
  private readonly notes: ObserverNotes;
  /** The service's restart policy with each kind's overrides, made once per kind. */
  private readonly policies = new Map<ObserverKind, RestartPolicy>();
  private heldCount = 0;
  private stopping = false;
  private refusing = false;

  constructor(private readonly options: ObserverHostOptions<D>) {
    this.notes = new ObserverNotes(options.noteMemoryMs);
  }

  /** Jobs held now on live connections: running, waiting or parked. */
  get held(): number {
    return this.heldCount;
  }

  /**
   * Whether a job of this observer is held here (running, waiting or parked); with `upTo`, only
   * a job of that generation or older (a newer one adopted here does not count).
   */
  holds(observerId: string, upTo = Infinity): boolean {
    const hold = this.holdsOf.get(observerId);
    return hold?.owns === true && hold.job.generation <= upTo;
  }

  /**
   * Observers running here now, and the generation of each (parallel arrays); with `movable`,
   * only those whose kind lets two copies overlap for a moment.
   */
  running({ movable = false }: { movable?: boolean } = {}): { ids: string[]; generations: number[] } {
    const ids: string[] = [];
    const generations: number[] = [];
    for (const hold of this.holdsOf.values()) {
      if (!hold.run || hold.run.stopCause || !hold.owns) continue;
      if (movable && this.options.kinds.get(hold.job.kind)?.overlap === 'never') continue;
      ids.push(hold.job.observerId);
      generations.push(hold.job.generation);
    }
    return { ids, generations };
  }

  /** Jobs parked here, and why. */
  parked(): { observerId: string; generation: number; reason: string }[] {
    return [...this.holdsOf.values()].flatMap((hold) =>
      hold.parked && hold.owns
        ? [{ observerId: hold.job.observerId, generation: hold.job.generation, reason: hold.parked.reason }]
        : [],
    );
  }

  /** A job message was delivered. Never throws for what the message holds. */
  deliver(delivery: D, content: Buffer): void {
    const decoded = decodeMessage(JobMessage, content);
    if (!decoded.ok) {
      this.options.log.error({ error: decoded.error }, 'invalid job message; dead-lettering it');
      this.options.transport.settle(delivery, 'dead-letter');
      return;
    }
    this.admit(this.take(decoded.value, delivery));
  }

  /** A cancel reached this service; it acts if it holds the observer, and remembers it anyway. */
  cancel(observerId: string, how: CancelHow, receivedAt = performance.now()): void {
    const { deadLetter } = how;
    const alreadyStopped = this.notes.get(observerId)?.stoppedHere === true;
    this.notes.cancel(observerId, how);
    const hold = this.holdsOf.get(observerId);
    if (hold && !cancels(how, hold.job.generation)) return;
    if (!hold) {
      // A repeated cancel: the manager missed our report (it may have been lost with a
      // connection), so it is sent again.
      if (alreadyStopped) this.reportStopped(observerId, undefined, 'cancelled', true, undefined);
      return;
    }
    if (hold.run) {
      if (hold.run.stopCause) return;
      hold.run.stop(deadLetter ? 'quarantined' : 'cancelled');
      hold.abortLatencyMs = performance.now() - receivedAt;
      return;
    }
    this.drop(hold, deadLetter ? 'dead-letter' : 'ack');
    this.reportStopped(observerId, hold.job.generation, deadLetter ? 'crash-loop' : 'cancelled', true, undefined);
  }

  /** The manager keeps another copy: stop this one if it is of `generation` or older. */
  release(observerId: string, generation: number, reason: ReleaseReason): void {
    this.notes.release(observerId, generation);
    const hold = this.holdsOf.get(observerId);
    if (!hold || hold.job.generation > generation) return;
    // A planned move releases every copy it moved: expected, and one line per observer follows anyway.
    const level = reason === 'moved' ? 'debug' : 'warn';
    this.options.log[level]({ ...observerBindings(hold.job), reason }, 'the manager released this copy; stopping it');
    if (hold.run) {
      hold.run.stop('released');
      return;
    }
    this.drop(hold, 'ack');
    this.reportStopped(observerId, hold.job.generation, 'released', true, undefined);
  }

  /**
   * The connection jobs came on is lost and the broker has requeued them all; another service
   * may run them already. Every copy held stops at once. Returns how many runs were stopped.
   */
  connectionLost(): number {
    let stopped = 0;
    for (const hold of [...this.holdsOf.values()]) {
      hold.owns = false;
      if (hold.run) {
        if (!hold.run.stopCause) {
          hold.run.stop('connection-lost');
          stopped++;
        }
        continue;
      }
      if (hold.parked) clearTimeout(hold.parked.timer);
      this.holdsOf.delete(hold.job.observerId);
    }
    this.setHeld(0);
    return stopped;
  }

  /** Jobs delivered from now on go straight back to the queue: the service is stopping. */
  refuseNew(): void {
    this.stopping = true;
  }

  /**
   * While on, jobs delivered go straight back to the queue, for other services: this one is
   * shedding observers, and the next generation of one it sheds must not land here.
   */
  refuse(on: boolean): void {
    this.refusing = on;
  }

  /**
   * Stops now the runs whose kind must never overlap with another copy, and hands their jobs
   * back: a move would run two copies for a moment. Returns how many.
   */
  handBackUnmovable(): number {
    let count = 0;
    for (const hold of this.holdsOf.values()) {
      if (!hold.run || hold.run.stopCause || !hold.owns) continue;
      if (this.options.kinds.get(hold.job.kind)?.overlap !== 'never') continue;
      hold.run.stop('shutdown');
      count++;
    }
    return count;
  }

  /**
   * Stops everything. A job is handed back to the queue, except for the observers in `moving`:
   * the manager has published their next generation already, so their jobs here are acked.
   */
  async stop(moving: ReadonlySet<string> = new Set()): Promise<void> {
    this.stopping = true;
    this.startsToLog.flush();
    for (const hold of [...this.holdsOf.values()]) {
      const moved = moving.has(hold.job.observerId);
      if (hold.run) hold.run.stop(moved ? 'superseded' : 'shutdown');
      else this.drop(hold, moved ? 'ack' : 'requeue');
    }
    await Promise.allSettled([...this.runs].map((run) => run.outcome));
  }

  private take(job: JobMessage, delivery: D): Hold<D> {
    this.setHeld(this.heldCount + 1);
    return { job, delivery, owns: true };
  }

  /** Decides what becomes of a job just delivered, or one whose wait is over. */
  private admit(hold: Hold<D>): void {
    const { job } = hold;
    const current = this.holdsOf.get(job.observerId);
    const kind = this.options.kinds.get(job.kind);
    const params = kind?.params.safeParse(job.params);
    const decision = admit({
      generation: job.generation,
      stopping: this.stopping || this.refusing,
      note: this.notes.get(job.observerId),
      held: current && current !== hold ? this.describe(current, job, params?.success === true) : undefined,
      full: this.options.fullAt !== undefined && this.heldCount > this.options.fullAt,
      kindKnown: kind !== undefined,
      paramsError: params && !params.success ? params.error.message : undefined,
    });
    this.apply(decision, hold, current !== hold ? current : undefined, kind, params?.data);
  }

  private apply(
    decision: Admission,
    hold: Hold<D>,
    current: Hold<D> | undefined,
    kind: ObserverKind | undefined,
    params: unknown,
  ): void {
    const { job } = hold;
    const log = () => this.options.log.child(observerBindings(job));
    switch (decision.action) {
      case 'start':
        this.start(hold, kind!, params);
        return;
      case 'wait':
        this.waitFor(hold, current!);
        return;
      case 'adopt':
        this.adopt(current!, hold, params);
        return;
      case 'supersede':
        log().info({ older: current!.job.generation }, 'a newer generation was delivered; it replaces the copy here');
        if (current!.run) current!.run.stop('superseded');
        else this.drop(current!, 'ack');
        this.waitFor(hold, current!);
        return;
      case 'drop':
        log().warn({ why: decision.why }, 'job of a copy that must not run here; acking and dropping it');
        this.drop(hold, 'ack');
        return;
      case 'cancelled':
        log().info({ deadLetter: decision.deadLetter }, 'job of a cancelled observer; not starting it');
        this.drop(hold, decision.deadLetter ? 'dead-letter' : 'ack');
        this.reportStopped(job.observerId, job.generation, decision.deadLetter ? 'crash-loop' : 'cancelled', true);
        return;
      case 'requeue':
        this.drop(hold, 'requeue');
        return;
      case 'park':
        this.park(hold);
        return;
      case 'reject':
        log().error({ error: decision.error }, 'params fail the kind schema; the observer failed');
        this.options.reports.failed(job, `invalid params: ${decision.error}`, 0);
        this.drop(hold, 'dead-letter');
        return;
    }
  }

  /** `paramsValid`: the delivered job's params pass its kind's schema. */
  private describe(hold: Hold<D>, delivered: JobMessage, paramsValid: boolean): HeldCopy {
    const state = hold.run ? (hold.run.stopCause ? 'stopping' : 'running') : hold.parked ? 'parked' : 'waiting';
    // Key order may differ (a republished job's params come from Postgres' jsonb).
    const sameParams = isDeepStrictEqual(hold.job.params, delivered.params);
    const takesParams = paramsValid && this.options.kinds.get(delivered.kind)?.onParams !== undefined;
    return {
      generation: hold.job.generation,
      live: this.options.transport.isLive(hold.delivery),
      state,
      sameRun: !delivered.fresh && hold.job.kind === delivered.kind && (sameParams || takesParams),
    };
  }

  /**
   * `newer` asks for the run `current` already has: the run goes on as the newer generation
   * (its fencing token moves up with it), the older job is acked, and the start of the newer
   * generation is reported, so the manager records it here without a gap or a second copy.
   */
  private adopt(current: Hold<D>, newer: Hold<D>, params: unknown): void {
    const older = current.job.generation;
    const changed = !isDeepStrictEqual(current.job.params, newer.job.params);
    this.options.transport.settle(current.delivery, 'ack');
    current.job = newer.job;
    current.delivery = newer.delivery;
    current.run!.adopt(newer.job, changed ? { value: params } : undefined);
    this.setHeld(this.heldCount - 1);
    const redelivered = this.options.transport.wasRedelivered(newer.delivery);
    this.options.log.info(
      { ...observerBindings(newer.job), older },
      'a newer generation of the run here; adopted in place',
    );
    this.options.reports.started(newer.job, redelivered);
  }

  /**
   * Holds `hold` until `current` (an older or lost copy) has ended, then admits it again: a
   * cancel, a release or a shutdown that came meanwhile has its say.
   */
  private waitFor(hold: Hold<D>, current: Hold<D>): void {
    // A lost delivery waiting in its place is dropped: the broker has requeued it.
    if (current.after && current.owns) this.drop(current, 'ack');
    hold.after = current.run?.outcome ?? current.after ?? Promise.resolve();
    this.holdsOf.set(hold.job.observerId, hold);
    void hold.after.then(() => {
      if (this.holdsOf.get(hold.job.observerId) !== hold) return;
      this.holdsOf.delete(hold.job.observerId);
      hold.after = undefined;
      if (!hold.owns || !this.options.transport.isLive(hold.delivery)) return;
      this.admit(hold);
    });
  }

  private start(hold: Hold<D>, kind: ObserverKind, params: unknown): void {
    const { job } = hold;
    const run: ObserverRun = new ObserverRun({
      job,
      kind,
      params,
      policy: this.policyOf(kind),
      stopTimeoutMs: this.options.stopTimeoutMs,
      publish: (data) => this.publishFor(run, data),
      log: this.options.log,
      secrets: secretValues(params, this.options.kinds.secretPaths(kind.name)),
      restarting: this.options.restarting,
    });
    hold.run = run;
    this.holdsOf.set(job.observerId, hold);
    this.runs.add(run);
    if (!this.staleWatch && this.staleAfterMs(run) > 0) {
      this.staleWatch = setInterval(() => this.checkStale(), STALE_CHECK_MS);
      this.staleWatch.unref();
    }
    const redelivered = this.options.transport.wasRedelivered(hold.delivery);
    this.startsToLog.push({ job, redelivered }, firstStart(job, redelivered));
    this.options.reports.started(job, redelivered);
    void run.start().then((outcome) => this.ended(hold, outcome));
  }

  /**
   * One line for a lone start, one summary line for a burst or a stream (a takeover of ten
   * thousand would otherwise write ten thousand lines, an eighth of its CPU), paced as the start
   * reports are; each start of a burst is at debug.
   */
  private logStarts(starts: { job: JobMessage; redelivered: boolean }[]): void {
    const { log } = this.options;
    if (starts.length === 1) {
      log.info({ ...observerBindings(starts[0]!.job), redelivered: starts[0]!.redelivered }, 'observer started');
      return;
    }
    if (log.isLevelEnabled('debug'))
      for (const { job, redelivered } of starts)
        log.debug({ ...observerBindings(job), redelivered }, 'observer started');
    log.info(
      {
        started: starts.length,
        redelivered: starts.filter((s) => s.redelivered).length,
        sample: starts.slice(0, 10).map((s) => s.job.name),
      },
      'observers started',
    );
  }

  /** Only the copy that owns the observer here speaks for it; a stopping one is silent. */
  private publishFor(run: ObserverRun, data: unknown): boolean {
    const hold = this.holdsOf.get(run.job.observerId);
    if (hold?.run !== run || run.stopCause || !hold.owns) return false;
    run.publishedAt = Date.now();
    if (run.stale) {
      run.stale = false;
      this.options.reports.stale(run.job, false, run.publishedAt, false);
    }
    return this.options.publish(run.job, data);
  }

  /** The silence an observer may keep before it is stale: its own, else its kind's; 0: none. */
  private staleAfterMs(run: ObserverRun): number {
    return run.job.staleAfterMs ?? this.options.kinds.get(run.job.kind)?.staleAfterMs ?? 0;
  }

  /** Reports each running observer silent past its `staleAfterMs`, once per silence. */
  private checkStale(): void {
    const now = Date.now();
    let watched = 0;
    for (const run of this.runs) {
      const limit = this.staleAfterMs(run);
      if (limit === 0 || run.stopCause) continue;
      watched++;
      if (run.stale || now - (run.publishedAt ?? run.startedAt) <= limit) continue;
      run.stale = true;
      const restart = this.options.kinds.get(run.job.kind)?.restartWhenStale === true;
      this.options.log.warn(
        { ...observerBindings(run.job), silentMs: now - (run.publishedAt ?? run.startedAt), restart },
        'observer stale: it published nothing for longer than it may',
      );
      this.options.reports.stale(run.job, true, run.publishedAt, restart);
    }
    if (watched === 0) {
      clearInterval(this.staleWatch);
      this.staleWatch = undefined;
    }
  }

  private ended(hold: Hold<D>, outcome: RunOutcome): void {
    const run = hold.run!;
    const { job } = hold;
    this.runs.delete(run);
    this.options.ended(job);
    if (this.holdsOf.get(job.observerId) === hold) this.holdsOf.delete(job.observerId);
    const { log } = run;
    if (outcome.type === 'failed') {
      log.error({ err: outcome.error, attempts: outcome.attempts }, 'observer failed past its restart policy');
      // A lost job is redelivered elsewhere, where it gets its own retries.
      if (!hold.owns) return;
      this.options.reports.failed(job, run.scrub(outcome.error.message), outcome.attempts);
      this.drop(hold, 'dead-letter');
      return;
    }
    if (!outcome.graceful)
      log.error({ stopTimeoutMs: this.options.stopTimeoutMs }, 'observer ignored its AbortSignal; giving up on it');
    log.info({ cause: outcome.cause }, 'observer stopped');
    const owned = hold.owns;
    switch (outcome.cause) {
      case 'cancelled':
      case 'quarantined':
      case 'released': {
        const deadLetter = outcome.cause === 'quarantined';
        this.drop(hold, deadLetter ? 'dead-letter' : 'ack');
        if (!owned) return;
        if (outcome.cause === 'cancelled') this.notes.stoppedHere(job.observerId);
        const reason = deadLetter ? 'crash-loop' : outcome.cause === 'released' ? 'released' : 'cancelled';
        this.reportStopped(job.observerId, job.generation, reason, outcome.graceful, hold.abortLatencyMs);
        return;
      }
      case 'superseded':
        this.drop(hold, 'ack');
        return;
      case 'shutdown':
        this.drop(hold, 'requeue');
        return;
      case 'connection-lost':
        return;
    }
  }

  /**
   * Holds the job unacked for a growing pause, then hands it back to the queue: a service whose
   * kinds include it may take it meanwhile. Its heartbeats say it waits, and why.
   */
  private park(hold: Hold<D>): void {
    const { job } = hold;
    const delayMs = backoffDelay(this.options.parkBackoff, this.notes.parked(job.observerId));
    const reason = `a service that took its job has no kind "${job.kind}" (it has ${this.options.kinds.names().join(', ') || 'none'})`;
    this.options.log.error(
      { ...observerBindings(job), pool: job.pool, retryInMs: delayMs },
      'unknown kind; holding the job, then handing it back for another service',
    );
    const timer = setTimeout(() => {
      if (this.holdsOf.get(job.observerId) === hold) this.drop(hold, 'requeue');
    }, delayMs);
    timer.unref();
    hold.parked = { reason, timer };
    this.holdsOf.set(job.observerId, hold);
  }

  /** Settles a hold's delivery (if still its own) and forgets the hold. */
  private drop(hold: Hold<D>, how: Settlement): void {
    if (hold.parked) clearTimeout(hold.parked.timer);
    if (this.holdsOf.get(hold.job.observerId) === hold && !hold.run) this.holdsOf.delete(hold.job.observerId);
    if (!hold.owns) return;
    hold.owns = false;
    this.options.transport.settle(hold.delivery, how);
    this.setHeld(this.heldCount - 1);
  }

  private setHeld(count: number): void {
    this.heldCount = count;
    this.options.transport.heldChanged(count);
  }

  private reportStopped(
    observerId: string,
    generation: number | undefined,
    reason: StopReason,
    graceful: boolean,
    abortLatencyMs?: number,
  ): void {
    this.options.reports.stopped({
      observerId,
      generation,
      reason,
      graceful,
      ...(abortLatencyMs === undefined ? {} : { abortLatencyMs }),
    });
  }

  private policyOf(kind: ObserverKind): RestartPolicy {
    let policy = this.policies.get(kind);
    if (!policy) this.policies.set(kind, (policy = { ...this.options.restartPolicy, ...kind.restartPolicy }));
    return policy;
  }
}
