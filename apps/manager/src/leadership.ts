import { hostname } from 'node:os';
import { randomUUID } from 'node:crypto';
import type { DataSource, EntityManager } from 'typeorm';
import { coerceError, type Logger } from '@vigil/logging';
import { sql } from './db/sql';

/** The transaction was refused: another manager holds the lease now. Nothing was written. */
export class NotActiveError extends Error {
  override readonly name = 'NotActiveError';
  constructor() {
    super('this manager no longer holds the lease: another one is active');
  }
}

export interface LeadershipOptions {
  db: DataSource;
  /** How long a lease lasts without renewal, ms: a dead manager's is taken over after this. */
  leaseMs: number;
  /** How often the lease is renewed, or sought by a standby, ms. */
  renewMs: number;
  log: Logger;
  /** This manager became the active one, under `epoch`. */
  onActive: (epoch: number) => Promise<void>;
  /** It is not (or no longer) the active one. */
  onStandby: () => Promise<void>;
}

/**
 * Which manager applies state and reconciles: the holder of a lease row in Postgres, renewed every
 * `renewMs` and lost `leaseMs` after the last renewal. Each new holder increments the lease's
 * epoch, and every transaction of the active manager checks that epoch under a share lock first:
 * a manager that lost the lease without noticing (frozen, cut off) cannot write once another has
 * taken over, and the new one's takeover waits for its last transaction to commit. The state
 * queue's single-active-consumer does the same on the broker's side.
 */
export class Leadership {
  readonly managerId = `${hostname()}/${process.pid}/${randomUUID().slice(0, 8)}`;
  private epoch: number | undefined;
  private lastRenewedAt = 0;
  private timer: NodeJS.Timeout | undefined;
  /** Role changes, one after another. */
  private transition: Promise<void> = Promise.resolve();
  private renewing: Promise<void> | undefined;
  private saidStandby = false;

  constructor(private readonly options: LeadershipOptions) {}

  get active(): boolean {
    return this.epoch !== undefined;
  }

  get currentEpoch(): number | undefined {
    return this.epoch;
  }

  start(): void {
    this.timer = setInterval(() => void this.renew(), this.options.renewMs);
    void this.renew();
  }

  /** Gives the lease up (a graceful stop), so that another manager takes over at once. */
  async stop(): Promise<void> {
    clearInterval(this.timer);
    await this.renewing;
    const wasActive = this.active;
    await this.demote();
    if (!wasActive) return;
    await sql(this.options.db, `UPDATE manager_lease SET expires_at = now() WHERE id = 1 AND holder = $1`, [
      this.managerId,
    ]).catch((err: unknown) => this.options.log.warn({ err: coerceError(err) }, 'could not give the lease up'));
  }

  /** Runs `apply` in a transaction that first proves this manager still holds the lease. */
  transaction<T>(apply: (tx: EntityManager) => Promise<T>): Promise<T> {
    const epoch = this.epoch;
    if (epoch === undefined) return Promise.reject(new NotActiveError());
    return this.options.db.transaction(async (tx) => {
      const held = await sql<unknown>(
        tx,
        `SELECT 1 FROM manager_lease WHERE id = 1 AND holder = $1 AND epoch = $2 FOR SHARE`,
        [this.managerId, epoch],
      );
      if (held.length === 0) {
        void this.enqueue(() => this.demote());
        throw new NotActiveError();
      }
      return apply(tx);
    });
  }

  private renew(): Promise<void> {
    this.renewing ??= this.tryRenew().finally(() => {
      this.renewing = undefined;
    });
    return this.renewing;
  }

  private async tryRenew(): Promise<void> {
    const { db, leaseMs, log } = this.options;
    try {
      const rows = await sql<{ epoch: string }>(
        db,
        `UPDATE manager_lease SET
           epoch = CASE WHEN holder = $1 AND expires_at > now() THEN epoch ELSE epoch + 1 END,
           holder = $1, expires_at = now() + make_interval(secs => $2 / 1000.0)
         WHERE id = 1 AND (holder = $1 OR holder IS NULL OR expires_at <= now())
         RETURNING epoch`,
        [this.managerId, leaseMs],
      );
      const row = rows[0];
      if (!row) {
        if (!this.saidStandby) log.info({ managerId: this.managerId }, 'another manager is active; standing by');
        this.saidStandby = true;
        await this.enqueue(() => this.demote());
        return;
      }
      this.saidStandby = false;
      this.lastRenewedAt = performance.now();
      const epoch = Number(row.epoch);
      if (epoch !== this.epoch) await this.enqueue(() => this.promote(epoch));
    } catch (err) {
      log.warn({ err: coerceError(err) }, 'could not renew the manager lease');
      // Past its end the lease may be another manager's: stop acting as if it were ours.
      if (this.active && performance.now() - this.lastRenewedAt > leaseMs) await this.enqueue(() => this.demote());
    }
  }

  private enqueue(change: () => Promise<void>): Promise<void> {
    this.transition = this.transition.then(change, change);
    return this.transition;
  }

  private async promote(epoch: number): Promise<void> {
    if (this.epoch !== undefined) await this.options.onStandby();
    this.epoch = epoch;
    this.options.log.info({ managerId: this.managerId, epoch }, 'this manager is now the active one');
    await this.options.onActive(epoch);
  }

  private async demote(): Promise<void> {
    if (this.epoch === undefined) return;
    const epoch = this.epoch;
    this.epoch = undefined;
    this.options.log.warn({ managerId: this.managerId, epoch }, 'this manager is no longer the active one');
    await this.options.onStandby();
  }
}
