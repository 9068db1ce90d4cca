import type { JobMessage } from '@vigil/contracts';
import { coerceError, type LazyChild } from '@vigil/logging';
import { sleep, type ObserverKind, type RestartPolicy } from '@vigil/observer-sdk';

/** Why a running observer was asked to stop; `quarantined`: cancelled for a crash loop. */
export type StopCause = 'cancelled' | 'quarantined' | 'shutdown' | 'connection-lost';

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
  publish: (data: unknown) => void;
  log: LazyChild;
}

/**
 * One observer running in this process: its AbortController, its restarts with exponential
 * backoff, and the outcome once it ended for good.
 */
export class ObserverRun {
  readonly job: JobMessage;
  private readonly controller = new AbortController();
  private cause: StopCause | undefined;
  private result: Promise<RunOutcome> | undefined;
  /** Ends the outcome as not graceful: armed by `stop`, fired after the stop timeout. */
  private giveUp: (() => void) | undefined;

  constructor(private readonly options: ObserverRunOptions) {
    this.job = options.job;
  }

  /**
   * Starts the observer. Separate from the constructor because `run` may publish at once, and
   * the service must know the run as its own before it does.
   */
  start(): Promise<RunOutcome> {
    this.result ??= new Promise<RunOutcome>((resolve) => {
      this.giveUp = () => resolve(this.stopped(false));
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
    setTimeout(() => this.giveUp?.(), this.options.stopTimeoutMs).unref();
  }

  private async runWithRestarts(): Promise<RunOutcome> {
    const { kind, policy, log } = this.options;
    const signal = this.controller.signal;
    let restarts = 0;
    for (let attempt = 0; ; attempt++) {
      const startedAt = Date.now();
      let error: Error;
      try {
        await kind.run({
          observerId: this.job.observerId,
          name: this.job.name,
          kind: this.job.kind,
          pool: this.job.pool,
          params: this.options.params,
          signal,
          attempt,
          publish: this.options.publish,
          get log() {
            return log();
          },
        });
        if (signal.aborted) return this.stopped(true);
        error = new Error('run() returned before the observer was cancelled');
      } catch (thrown) {
        if (signal.aborted) return this.stopped(true);
        error = coerceError(thrown);
      }
      if (Date.now() - startedAt >= policy.resetAfterMs) restarts = 0;
      if (restarts >= policy.maxRestarts) return { type: 'failed', error, attempts: attempt + 1 };
      const delayMs = Math.min(policy.initialDelayMs * 2 ** restarts, policy.maxDelayMs);
      restarts++;
      log().warn({ err: error, attempt, restartInMs: delayMs }, 'observer crashed; restarting');
      if (!(await sleep(delayMs, signal))) return this.stopped(true);
    }
  }

  private stopped(graceful: boolean): RunOutcome {
    return { type: 'stopped', cause: this.cause ?? 'shutdown', graceful };
  }
}
