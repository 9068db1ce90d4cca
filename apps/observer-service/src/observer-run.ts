import { backoffDelay } from '@vigil/backoff';
import type { JobMessage } from '@vigil/contracts';
import { coerceError, type Logger } from '@vigil/logging';
import {
  fencingToken,
  sleep,
  type KindLogger,
  type ObserverContext,
  type ObserverKind,
  type RestartPolicy,
} from '@vigil/observer-sdk';
import { scrubText, scrubbingLogger } from './secret-scrub';

/**
 * Why a running observer was asked to stop. `quarantined`: cancelled for a crash loop;
 * `released`: the manager keeps another copy; `superseded`: a newer generation was delivered here.
 */
export type StopCause = 'cancelled' | 'quarantined' | 'released' | 'superseded' | 'shutdown' | 'connection-lost';

export type RunOutcome =
  { type: 'stopped'; cause: StopCause; graceful: boolean } | { type: 'failed'; error: Error; attempts: number };

export interface ObserverRunOptions {
  job: JobMessage;
  kind: ObserverKind;
  /** Params already parsed by the kind's schema (defaults applied). */
  params: unknown;
  policy: RestartPolicy;
  /** How long an aborted observer may take to end before it is given up on, ms. */
  stopTimeoutMs: number;
  publish: (data: unknown) => boolean;
  /** The service's logger; the run binds the observer's fields to it when it first logs. */
  log: Logger;
  /** The values of its secret params (longest first): scrubbed from its logs and its failure. */
  secrets?: readonly string[];
  /** Told of each crash that is followed by a restart. */
  restarting?: () => void;
}

/** The fields every log line about an observer carries. */
export function observerBindings(job: JobMessage): Record<string, string | number> {
  return { observerId: job.observerId, observer: job.name, kind: job.kind, generation: job.generation };
}

/**
 * What `run` gets, one per attempt. A class, not an object literal: V8 keeps a literal with a
 * getter as a dictionary, about 0.5 KB per observer for as long as it runs.
 */
class RunContext implements ObserverContext<unknown> {
  constructor(
    private readonly run: ObserverRun,
    readonly signal: AbortSignal,
    readonly attempt: number,
  ) {}

  get observerId(): string {
    return this.run.job.observerId;
  }

  get name(): string {
    return this.run.job.name;
  }

  get kind(): string {
    return this.run.job.kind;
  }

  get pool(): string {
    return this.run.job.pool;
  }

  get generation(): number {
    return this.run.job.generation;
  }

  get fencingToken(): string {
    return fencingToken(this.run.job.observerId, this.run.job.generation);
  }

  get params(): unknown {
    return this.run.params;
  }

  get publish(): (data: unknown) => boolean {
    return this.run.publish;
  }

  get log(): KindLogger {
    return this.run.log;
  }
}

/**
 * One observer running in this process: its AbortController, its restarts with exponential
 * backoff, and the outcome once it ended for good. A service holds thousands of these for weeks,
 * so it keeps its fields to itself rather than an options object and closures.
 */
export class ObserverRun {
  private current: JobMessage;
  private readonly kind: ObserverKind;
  private currentParams: unknown;
  readonly publish: (data: unknown) => boolean;
  private readonly policy: RestartPolicy;
  private readonly stopTimeoutMs: number;
  private readonly serviceLog: Logger;
  /** Undefined when it has none: most observers do not, and thousands of them run. */
  private readonly secrets: readonly string[] | undefined;
  /** Made on first use: a child logger costs about 600 bytes, and most observers never log. */
  private childLog: KindLogger | undefined;
  private readonly controller = new AbortController();
  private cause: StopCause | undefined;
  private result: Promise<RunOutcome> | undefined;
  private readonly restarting: (() => void) | undefined;
  /** When it started here, and when it last published (for its staleness), ms since the epoch. */
  readonly startedAt = Date.now();
  publishedAt: number | undefined;
  /** Reported stale and not published since. */
  stale = false;
  /** The current attempt's context: `onParams` gets it. */
  private context: RunContext | undefined;
  /** Settles the outcome; `stop` uses it to give up on an observer past its stop timeout. */
  private resolve: ((outcome: RunOutcome) => void) | undefined;

  constructor(options: ObserverRunOptions) {
    this.current = options.job;
    this.kind = options.kind;
    this.currentParams = options.params;
    this.policy = options.policy;
    this.stopTimeoutMs = options.stopTimeoutMs;
    this.publish = options.publish;
    this.serviceLog = options.log;
    this.secrets = options.secrets?.length ? options.secrets : undefined;
    this.restarting = options.restarting;
  }

  /** The job it runs for: the latest generation adopted. */
  get job(): JobMessage {
    return this.current;
  }

  get params(): unknown {
    return this.currentParams;
  }

  /**
   * Carries on as a newer generation of the same run: the context's generation and fencing
   * token move up; the logger is made again with the new binding. With `params` (changed, for a
   * kind that takes them live), the kind's `onParams` gets them.
   */
  adopt(job: JobMessage, params?: { value: unknown }): void {
    this.current = job;
    this.childLog = undefined;
    if (!params) return;
    this.currentParams = params.value;
    const context = this.context;
    if (!context || !this.kind.onParams) return;
    try {
      this.kind.onParams(params.value, context);
    } catch (err) {
      this.log.error({ err: coerceError(err) }, 'onParams threw; the observer runs on with the new params');
    }
  }

  /** The service's logger bound to this observer (and scrubbing its secrets). */
  get log(): KindLogger {
    if (this.childLog) return this.childLog;
    const child = this.serviceLog.child(observerBindings(this.job));
    this.childLog = this.secrets ? scrubbingLogger(child, this.secrets) : child;
    return this.childLog;
  }

  /** `text` without this observer's secret params in it. */
  scrub(text: string): string {
    return this.secrets ? scrubText(text, this.secrets) : text;
  }

  /**
   * Starts the observer. Separate from the constructor because `run` may publish at once, and
   * the service must know the run as its own before it does.
   */
  start(): Promise<RunOutcome> {
    this.result ??= new Promise<RunOutcome>((resolve) => {
      this.resolve = resolve;
      void this.runWithRestarts().then(resolve);
    });
    return this.result;
  }

  /** Resolves when the observer ended, failed past its policy, or overran its stop timeout. */
  get outcome(): Promise<RunOutcome> {
    return this.start();
  }

  get stopCause(): StopCause | undefined {
    return this.cause;
  }

  /** Fires the observer's AbortSignal; the first cause wins. */
  stop(cause: StopCause): void {
    if (this.cause) return;
    this.cause = cause;
    this.controller.abort(new Error(`observer stopped: ${cause}`));
    // An observer that ignores its signal must not hold its slot (or a shutdown) forever.
    setTimeout(() => this.resolve?.(this.stopped(false)), this.stopTimeoutMs).unref();
  }

  private async runWithRestarts(): Promise<RunOutcome> {
    const { kind, policy } = this;
    const signal = this.controller.signal;
    let restarts = 0;
    for (let attempt = 0; ; attempt++) {
      const startedAt = Date.now();
      let error: Error;
      try {
        this.context = new RunContext(this, signal, attempt);
        await kind.run(this.context);
        if (signal.aborted) return this.stopped(true);
        error = new Error('run() returned before the observer was cancelled');
      } catch (thrown) {
        if (signal.aborted) return this.stopped(true);
        error = coerceError(thrown);
      }
      if (Date.now() - startedAt >= policy.resetAfterMs) restarts = 0;
      if (restarts >= policy.maxRestarts) return { type: 'failed', error, attempts: attempt + 1 };
      const delayMs = backoffDelay(policy, restarts);
      restarts++;
      this.restarting?.();
      this.log.warn({ err: error, attempt, restartInMs: delayMs }, 'observer crashed; restarting');
      if (!(await sleep(delayMs, signal))) return this.stopped(true);
    }
  }

  private stopped(graceful: boolean): RunOutcome {
    return { type: 'stopped', cause: this.cause ?? 'shutdown', graceful };
  }
}
