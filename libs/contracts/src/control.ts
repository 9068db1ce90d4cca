import { z } from 'zod';
import { ObserverId, Timestamp } from './primitives';

/** Broadcast on the control exchange; only the service holding the observer acts on it. */
export const CancelMessage = z.object({
  type: z.literal('observer.cancel'),
  observerId: ObserverId,
  requestedAt: Timestamp,
  /**
   * Dead-letter the job instead of dropping it: the manager found the observer in a crash
   * loop (its services kept dying while running it) and keeps the job for inspection.
   */
  deadLetter: z.boolean().default(false),
});
export type CancelMessage = z.infer<typeof CancelMessage>;

export const ControlMessage = z.discriminatedUnion('type', [CancelMessage]);
export type ControlMessage = z.infer<typeof ControlMessage>;
