import type { StateEvent, StateEventOf } from '@vigil/contracts';

/**
 * State events as a service would send them, for tests that stage a story the real services
 * cannot be made to tell on cue (e.g. a backlog in a precise order). Staged services heartbeat
 * once a minute, so the manager does not find them silent during a test.
 */
export const staged = {
  born(serviceId: string, name: string, running: string[] = []): StateEventOf<'service.born'> {
    const at = new Date().toISOString();
    return {
      type: 'service.born',
      serviceId,
      at,
      name,
      capacity: 10,
      pools: ['default'],
      kinds: [{ name: 'ticker', paramsSchema: { type: 'object' } }],
      version: '0',
      host: 'staged',
      pid: 1,
      startedAt: at,
      heartbeatIntervalMs: 60_000,
      running,
    };
  },

  heartbeat(
    serviceId: string,
    name: string,
    running: string[],
    generations?: number[],
  ): StateEventOf<'service.heartbeat'> {
    return {
      type: 'service.heartbeat',
      serviceId,
      at: new Date().toISOString(),
      name,
      capacity: 10,
      heartbeatIntervalMs: 60_000,
      running,
      ...(generations ? { generations } : {}),
      freeSlots: 10 - running.length,
    };
  },

  /** A heartbeat without a listing: the service says only how many it runs. */
  beat(serviceId: string, name: string, runningCount: number): StateEventOf<'service.heartbeat'> {
    const { running: _listing, ...beat } = staged.heartbeat(serviceId, name, []);
    return { ...beat, runningCount, freeSlots: 10 - runningCount };
  },

  started(serviceId: string, observerId: string, name: string, generation = 1): StateEventOf<'observer.started'> {
    return {
      type: 'observer.started',
      serviceId,
      at: new Date().toISOString(),
      observerId,
      name,
      kind: 'ticker',
      pool: 'default',
      redelivered: false,
      generation,
    };
  },

  startedTogether(
    serviceId: string,
    observers: { observerId: string; name: string }[],
  ): StateEventOf<'observers.started'> {
    return {
      type: 'observers.started',
      serviceId,
      at: new Date().toISOString(),
      observers: observers.map((o) => ({ ...o, kind: 'ticker', pool: 'default', redelivered: true, generation: 1 })),
    };
  },

  stopped(serviceId: string, observerId: string): StateEventOf<'observer.stopped'> {
    return {
      type: 'observer.stopped',
      serviceId,
      at: new Date().toISOString(),
      observerId,
      reason: 'cancelled',
      graceful: true,
    };
  },
} satisfies Record<string, (...args: never[]) => StateEvent>;
