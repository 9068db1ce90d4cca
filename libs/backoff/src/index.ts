/**
 * Capped exponential backoff with jitter: the one retry policy of every loop in Vigil (broker
 * reconnects, the manager's database connect and state retries, observer restarts, jobs parked
 * for want of a kind). Without jitter, thousands of observers that failed together retry a
 * shared endpoint together, in lockstep, for ever.
 */
export interface BackoffPolicy {
  /** Delay before the first retry, ms. */
  initialDelayMs: number;
  /** No delay exceeds this, jitter included, ms. */
  maxDelayMs: number;
  /** Growth per retry; 2 doubles. */
  factor?: number;
  /**
   * Spread, from 0 (none) to 1: each delay is drawn uniformly from ±`jitter` × its base.
   * The base saturates at `maxDelayMs / (1 + jitter)`, so delays stay spread at the cap instead
   * of piling up on it.
   */
  jitter?: number;
}

export const DEFAULT_JITTER = 0.2;

/** The delay before retry number `attempt` (0 for the first), ms; `random` is in [0, 1). */
export function backoffDelay(policy: BackoffPolicy, attempt: number, random: () => number = Math.random): number {
  const factor = policy.factor ?? 2;
  const jitter = Math.min(1, Math.max(0, policy.jitter ?? DEFAULT_JITTER));
  const ceiling = policy.maxDelayMs / (1 + jitter);
  const base = Math.min(ceiling, policy.initialDelayMs * factor ** Math.max(0, attempt));
  const spread = base * jitter * (2 * random() - 1);
  return Math.max(0, Math.round(base + spread));
}

/** A retry loop's state: how many times it has failed since it last succeeded. */
export class Backoff {
  private attempt = 0;

  constructor(
    private readonly policy: BackoffPolicy,
    private readonly random: () => number = Math.random,
  ) {}

  /** Failures since the last reset. */
  get failures(): number {
    return this.attempt;
  }

  /** The delay before the next retry; each call counts one more failure. */
  next(): number {
    return backoffDelay(this.policy, this.attempt++, this.random);
  }

  reset(): void {
    this.attempt = 0;
  }
}

/**
 * Waits `ms`, or less if `signal` fires first; resolves false when aborted. For retry loops,
 * which must end promptly when their owner stops.
 */
export function pause(ms: number, signal?: AbortSignal): Promise<boolean> {
  if (signal?.aborted) return Promise.resolve(false);
  return new Promise((resolve) => {
    const onAbort = () => {
      clearTimeout(timer);
      resolve(false);
    };
    const timer = setTimeout(() => {
      signal?.removeEventListener('abort', onAbort);
      resolve(true);
    }, ms);
    signal?.addEventListener('abort', onAbort, { once: true });
  });
}
