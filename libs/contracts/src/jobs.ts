import { z } from 'zod';
import { Generation, KindName, ObserverId, ObserverName, ObserverParams, PoolName } from './primitives';

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
});
export type JobMessage = z.infer<typeof JobMessage>;
