import { z } from 'zod';
import { Generation, KindName, ObserverId, ObserverName, ObserverParams, PoolName } from './primitives';

/** The longest silence an observer may declare before it counts as stale: a week, ms. */
export const MAX_STALE_AFTER_MS = 7 * 24 * 3_600_000;

/** The job message: published once per observer, held unacked while the observer runs. */
export const JobMessage = z.object({
  observerId: ObserverId,
  name: ObserverName,
  kind: KindName,
  pool: PoolName,
  params: ObserverParams,
  /** Jobs queued before generations existed carry none: they are the first placement. */
  generation: Generation.default(1),
  /**
   * A restart: a service running an older generation of the same run stops it and starts this
   * one afresh, rather than adopting it in place.
   */
  fresh: z.boolean().optional(),
  /**
   * An observer that publishes nothing for this long is reported stale (its create body's
   * `staleAfterMs`, over its kind's); absent or null: its kind's, if any.
   */
  staleAfterMs: z.int().min(1).max(MAX_STALE_AFTER_MS).nullish(),
});
export type JobMessage = z.infer<typeof JobMessage>;
