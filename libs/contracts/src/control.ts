import { z } from 'zod';
import { Generation, ObserverId, ServiceId, Timestamp } from './primitives';

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
  /**
   * Only copies of this generation or older (a pause: the observer is kept, and a later
   * generation, once resumed, must run). Absent: every copy, for good (a delete).
   */
  upTo: Generation.optional(),
});
export type CancelMessage = z.infer<typeof CancelMessage>;

/** Why the manager releases a copy of an observer. */
export const ReleaseReason = z.enum([
  /** Another live service runs the same generation, and started it first. */
  'duplicate',
  /** A newer generation runs elsewhere. */
  'stale-generation',
  /** A planned move: the newer generation the manager published for it runs elsewhere now. */
  'moved',
  /** The observer is paused: no copy of it may run until it is resumed (at a newer generation). */
  'paused',
]);
export type ReleaseReason = z.infer<typeof ReleaseReason>;

/**
 * Sent to one service only (its own control queue): stop this copy, ack its job, report
 * `observer.stopped` with reason `released`. A copy of another generation is left alone, and
 * jobs of this generation or older that reach the service later are dropped.
 */
export const ReleaseMessage = z.object({
  type: z.literal('observer.release'),
  observerId: ObserverId,
  generation: Generation,
  /** The addressee: a message that reaches another service (a misrouted copy) is ignored. */
  serviceId: ServiceId,
  reason: ReleaseReason,
  requestedAt: Timestamp,
});
export type ReleaseMessage = z.infer<typeof ReleaseMessage>;

/**
 * Sent to one service only, in answer to its `service.draining`: the manager has published the
 * next generation of each of `moving` (confirmed by the broker), and releases each copy there
 * once the new one runs elsewhere. A draining service that hears nothing falls back to stopping
 * its observers and handing their jobs back.
 */
export const DrainAcceptedMessage = z.object({
  type: z.literal('service.drain-accepted'),
  serviceId: ServiceId,
  moving: z.array(ObserverId),
  /** The `requestId` of the `service.draining` this answers, when it had one. */
  requestId: z.uuid().optional(),
  requestedAt: Timestamp,
});
export type DrainAcceptedMessage = z.infer<typeof DrainAcceptedMessage>;

/**
 * Sent to one service only: an operator drains it (`draining: true`: it stops taking jobs and has
 * its observers moved, and stays up) or lets it take jobs again. Sent again whenever the
 * service's heartbeat disagrees with what the manager keeps, so a lost message is not lost for long.
 */
export const ServiceDrainMessage = z.object({
  type: z.literal('service.drain'),
  serviceId: ServiceId,
  draining: z.boolean(),
  requestedAt: Timestamp,
});
export type ServiceDrainMessage = z.infer<typeof ServiceDrainMessage>;

/**
 * Sent to one service only: the manager wants these copies moved, to even out the load
 * (`rebalance`) or to ack jobs held too long (`rotate`). The service answers with a
 * `service.draining` of the copies it can move; a rebalancing service takes no new jobs until
 * they have gone, a rotating one may take their next generation back itself.
 */
export const ServiceShedMessage = z.object({
  type: z.literal('service.shed'),
  serviceId: ServiceId,
  purpose: z.enum(['rebalance', 'rotate']),
  observerIds: z.array(ObserverId).min(1).max(10_000),
  requestedAt: Timestamp,
});
export type ServiceShedMessage = z.infer<typeof ServiceShedMessage>;

/**
 * The manager wants a service's full listing of what it holds, in a heartbeat sent at once: to
 * one service (`serviceId`) or, without it, to all (through the control exchange). It also says
 * that this manager reads heartbeats without a listing: from the first one it receives, a service
 * lists its holdings only when they changed, when asked, and every few beats (see
 * `ServiceHeartbeat`). A service that never receives one lists them in every heartbeat, as
 * managers before it expect.
 */
export const ServiceListMessage = z.object({
  type: z.literal('service.list'),
  serviceId: ServiceId.optional(),
  requestedAt: Timestamp,
});
export type ServiceListMessage = z.infer<typeof ServiceListMessage>;

export const ControlMessage = z.discriminatedUnion('type', [
  CancelMessage,
  ReleaseMessage,
  DrainAcceptedMessage,
  ServiceDrainMessage,
  ServiceShedMessage,
  ServiceListMessage,
]);
export type ControlMessage = z.infer<typeof ControlMessage>;
