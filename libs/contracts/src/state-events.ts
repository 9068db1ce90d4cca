import { z } from 'zod';
import { Generation, KindName, ObserverId, ObserverName, PoolName, ServiceId, Timestamp } from './primitives';

/** Starts one `observers.started` event carries at most (about 150 bytes each). */
export const MAX_STARTS_PER_EVENT = 1000;

const eventBase = {
  serviceId: ServiceId,
  /** When the service emitted the event (the service's clock). */
  at: Timestamp,
};

export const KindDescription = z.object({
  name: KindName,
  /** JSON Schema (draft 2020-12) of the kind's params, generated from its zod schema. */
  paramsSchema: z.record(z.string(), z.unknown()),
  /** `never`: two copies must never run at once, so the manager does not rebalance or rotate it. */
  overlap: z.enum(['allowed', 'never']).optional(),
});
export type KindDescription = z.infer<typeof KindDescription>;

/**
 * What a service holds, in its births and heartbeats. `generations[i]` is the generation of
 * `running[i]` (two parallel arrays rather than objects: a heartbeat of ten thousand observers
 * stays small). Services from before generations send no `generations`.
 */
const holdings = {
  running: z.array(ObserverId),
  generations: z.array(Generation).optional(),
  /**
   * Jobs it holds without running them, and why: a kind it lacks. It hands each back to the
   * queue after a growing pause, so that a service that has the kind can take it.
   */
  waiting: z
    .array(z.object({ observerId: ObserverId, generation: Generation, reason: z.string().max(500) }))
    .optional(),
};

/** Parallel arrays must be parallel. */
function generationsMatch(event: { running?: string[] | undefined; generations?: number[] | undefined }): boolean {
  return event.generations === undefined || event.generations.length === event.running?.length;
}
const generationsMismatch = { message: 'generations must have one entry per running observer', path: ['generations'] };

/** Sent when a service (re)connects to the broker. `running` is what it holds at that moment. */
export const ServiceBorn = z
  .object({
    type: z.literal('service.born'),
    ...eventBase,
    name: z.string().min(1).max(200),
    capacity: z.int().positive(),
    pools: z.array(PoolName).min(1),
    kinds: z.array(KindDescription),
    version: z.string(),
    host: z.string(),
    pid: z.int().nonnegative(),
    startedAt: Timestamp,
    heartbeatIntervalMs: z.int().positive(),
    ...holdings,
  })
  .refine(generationsMatch, generationsMismatch);

/**
 * Every heartbeat says the service is alive, how full it is and whether it drains. It lists what
 * the service holds (`running`, `generations`, `waiting`) only when the holdings changed since the
 * last listing the broker confirmed, when the manager asked (`service.list`), and every few beats
 * regardless; otherwise it gives `runningCount` instead (`waiting` comes in every heartbeat). Comparing ten thousand listings with the
 * table every few seconds would cost the manager more than everything else it does at rest.
 */
export const ServiceHeartbeat = z
  .object({
    type: z.literal('service.heartbeat'),
    ...eventBase,
    name: z.string().min(1).max(200),
    capacity: z.int().positive(),
    heartbeatIntervalMs: z.int().positive(),
    ...holdings,
    running: holdings.running.optional(),
    /** How many observers it runs, in a heartbeat without `running`. */
    runningCount: z.int().nonnegative().optional(),
    freeSlots: z.int().nonnegative(),
    /** The service's memory at the heartbeat (optional: older services do not send it). */
    memory: z.object({ heapUsedBytes: z.int().nonnegative(), rssBytes: z.int().nonnegative() }).optional(),
    /** Observations dropped since the service started: observers publishing faster than the broker takes. */
    observationsDropped: z.int().nonnegative().optional(),
    /** It takes no new jobs and moves its observers away (an operator drain or a SIGTERM). */
    draining: z.boolean().optional(),
  })
  .refine(generationsMatch, generationsMismatch)
  .refine((event) => event.running !== undefined || event.runningCount !== undefined, {
    message: 'a heartbeat gives either running (its listing) or runningCount',
    path: ['runningCount'],
  });

export const ServiceDied = z.object({
  type: z.literal('service.died'),
  ...eventBase,
  name: z.string().min(1).max(200),
  reason: z.string(),
});

/**
 * Why a service asks for copies to be moved: `stop`, it is shutting down (SIGTERM); `drain`, an
 * operator is emptying it; `rebalance` and `rotate`, the manager asked it to shed these copies
 * (`service.shed`).
 */
export const MovePurpose = z.enum(['stop', 'drain', 'rebalance', 'rotate']);
export type MovePurpose = z.infer<typeof MovePurpose>;

/**
 * A service asks for copies it runs to be moved before it lets them go: it keeps running them and
 * stops each once the manager has released it. `running` lists the copies to move (parallel to
 * `generations`). Observers of kinds that must never overlap are not listed while they run: a
 * stopping or drained service hands their jobs back, and a rotation stops them before asking.
 */
export const ServiceDraining = z
  .object({
    type: z.literal('service.draining'),
    ...eventBase,
    running: z.array(ObserverId),
    generations: z.array(Generation),
    /**
     * How long after `at` the service waits for the manager's answer before it stops the
     * observers itself: a manager that reads the request later (it was down) leaves it alone.
     */
    answerWithinMs: z.int().positive(),
    /** Services from before moves other than SIGTERM's send none: `stop`. */
    purpose: MovePurpose.default('stop'),
    /** Echoed in the answer, so that a late answer to an earlier request is not taken for this one's. */
    requestId: z.uuid().optional(),
  })
  .refine((e) => e.generations.length === e.running.length, generationsMismatch);

export const ObserverStarted = z.object({
  type: z.literal('observer.started'),
  ...eventBase,
  observerId: ObserverId,
  name: ObserverName,
  kind: KindName,
  pool: PoolName,
  /** True when the broker had delivered this job before (the observer moved here). */
  redelivered: z.boolean(),
  generation: Generation.default(1),
});

/**
 * Several `observer.started` in one message: a service taking over many observers at once
 * (failover, a burst of creates) would otherwise send one persistent message each, and on a
 * busy broker those messages, not the observers, set how fast the takeover is.
 */
export const ObserversStarted = z.object({
  type: z.literal('observers.started'),
  ...eventBase,
  observers: z
    .array(
      ObserverStarted.pick({
        observerId: true,
        name: true,
        kind: true,
        pool: true,
        redelivered: true,
        generation: true,
      }),
    )
    .min(1)
    .max(MAX_STARTS_PER_EVENT),
});

export const ObserverStopped = z.object({
  type: z.literal('observer.stopped'),
  ...eventBase,
  observerId: ObserverId,
  /**
   * `crash-loop`: stopped on the manager's word and its job dead-lettered; `released`: this
   * copy stopped and its job acked because the manager keeps another (`observer.release`).
   */
  reason: z.enum(['cancelled', 'crash-loop', 'released']),
  /** The generation of the copy that stopped (absent from services before generations). */
  generation: Generation.optional(),
  /** False when the observer ignored its AbortSignal past the stop timeout. */
  graceful: z.boolean(),
  /** Milliseconds from the cancel's arrival at the service to the AbortSignal firing. */
  abortLatencyMs: z.number().nonnegative().optional(),
});

export const ObserverFailed = z.object({
  type: z.literal('observer.failed'),
  ...eventBase,
  observerId: ObserverId,
  error: z.string(),
  attempts: z.int().nonnegative(),
  generation: Generation.optional(),
});

/**
 * An observer that declares how long it may stay silent (`staleAfterMs`) published nothing for
 * that long (`stale: true`), or published again after that (`stale: false`). `restart`: its kind
 * asks for a stale observer to be restarted at a new generation.
 */
export const ObserverStale = z.object({
  type: z.literal('observer.stale'),
  ...eventBase,
  observerId: ObserverId,
  generation: Generation,
  stale: z.boolean(),
  /** When it last published, if it ever did in this run. */
  lastPublishedAt: Timestamp.nullable(),
  restart: z.boolean(),
});

/**
 * Sent by the manager to its own state queue: once it comes back, everything queued before it
 * (a heartbeat behind a flood of other messages, say) has been applied.
 */
export const ManagerBarrier = z.object({
  type: z.literal('manager.barrier'),
  barrierId: z.uuid(),
  at: Timestamp,
});

export const StateEvent = z.discriminatedUnion('type', [
  ManagerBarrier,
  ServiceBorn,
  ServiceHeartbeat,
  ServiceDied,
  ServiceDraining,
  ObserverStarted,
  ObserversStarted,
  ObserverStopped,
  ObserverFailed,
  ObserverStale,
]);
export type StateEvent = z.infer<typeof StateEvent>;
export type StateEventType = StateEvent['type'];
export type StateEventOf<T extends StateEventType> = Extract<StateEvent, { type: T }>;
