import { z } from 'zod';
import { KindName, ObserverId, ObserverName, ObserverParams, PoolName } from './primitives';

/** The job message: published once per observer, held unacked while the observer runs. */
export const JobMessage = z.object({
  observerId: ObserverId,
  name: ObserverName,
  kind: KindName,
  pool: PoolName,
  params: ObserverParams,
});
export type JobMessage = z.infer<typeof JobMessage>;
