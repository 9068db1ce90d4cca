import { z } from 'zod';
import { KindName, ObserverId, ObserverName, ServiceId, Timestamp } from './primitives';

/** What an observer publishes on the observations exchange. */
export const Observation = z.object({
  observerId: ObserverId,
  name: ObserverName,
  kind: KindName,
  serviceId: ServiceId,
  serviceName: z.string(),
  at: Timestamp,
  data: z.unknown(),
});
export type Observation = z.infer<typeof Observation>;
