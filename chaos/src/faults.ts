import { randomBytes, randomUUID } from 'node:crypto';
import { connect } from '@vigil/broker';
import { encodeMessage, type JobMessage } from '@vigil/contracts';
import { RUNNING_WINDOW_MS, type Violation } from './invariants';
import type { Rng } from './rng';
import type { Workload } from './workload';
import { DRAIN_TIMEOUT_MS, MANAGER_LEASE_MS, REBALANCE_COOLDOWN_MS, type ChaosService, type ChaosWorld } from './world';

export const FAULT_KINDS = [
  'kill-service',
  'term-service',
  'freeze-service',
  'kill-manager',
  'restart-broker',
  'kill-broker',
  'restart-postgres',
  'blackhole-link',
  'duplicate-name',
  'garbage',
  'memory-alarm',
  'second-manager',
  'stranded-create',
  'duplicate-job',
  'purge-jobs',
  'kill-broker-node',
  'restart-broker-node',
  'kill-new-holder',
  'kill-manager-mid-move',
  'term-two-services',
  'join-under-load',
  'drain-undrain',
] as const;
export type FaultKind = (typeof FAULT_KINDS)[number];

/** Faults on the whole broker: a single node only (on a cluster they would be a full outage). */
const SINGLE_NODE_KINDS: readonly FaultKind[] = ['restart-broker', 'kill-broker'];
/** Faults on one node of a cluster. */
const CLUSTER_KINDS: readonly FaultKind[] = ['kill-broker-node', 'restart-broker-node'];

/** The fault kinds that apply to a single broker node, or to a cluster. */
export function faultKinds(cluster: boolean): readonly FaultKind[] {
  const other = cluster ? SINGLE_NODE_KINDS : CLUSTER_KINDS;
  return FAULT_KINDS.filter((kind) => !other.includes(kind));
}

export interface FaultContext {
  chaos: ChaosWorld;
  workload: Workload;
  rng: Rng;
  /** How many services the fleet is meant to have; a service ended beyond it is not replaced. */
  fleetSize: number;
  log: (message: string) => void;
}

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

/** Services in a stable order (by name), so a seed picks the same one on a replay. */
function sortedServices(ctx: FaultContext): ChaosService[] {
  return [...ctx.chaos.services].sort((a, b) => a.name.localeCompare(b.name) || a.handle.id.localeCompare(b.handle.id));
}

function pickService(ctx: FaultContext): ChaosService {
  return ctx.rng.pick(sortedServices(ctx));
}

/** A supervisor brings the service back under its name, unless the fleet is already full. */
async function replace(ctx: FaultContext, service: ChaosService, delayMs: number): Promise<string> {
  await ctx.chaos.retire(service);
  if (ctx.chaos.services.length >= ctx.fleetSize) return 'not replaced (the fleet is full)';
  await sleep(delayMs);
  await ctx.chaos.startService(service.name);
  return `restarted under its name after ${delayMs} ms`;
}

/** What a fault did, and for a fault whose heal waits until the invariants held, that heal. */
export interface FaultOutcome {
  description: string;
  heal?: () => Promise<void>;
  /** What the fault must have brought about once the invariants held (a joiner took its share). */
  verify?: () => Promise<Violation[]>;
  /**
   * How long the fault kept the manager from acting (killed until a successor held the lease, its
   * database down), ms: the release that ends a planned move's overlap waits for it.
   */
  managerStallMs?: number;
  /**
   * How long the fault kept every observer from running or from being seen (the broker down, its
   * publishing blocked, the whole fleet stopped), ms: an observer may run nowhere this long, plus
   * LOST_AFTER_MS and 2 s.
   */
  outageMs?: number;
}

/**
 * Injects one fault and heals it (restart, SIGCONT, link restored), or leaves the heal to be done
 * once the invariants held again; returns what was done.
 */
export async function inject(kind: FaultKind, ctx: FaultContext): Promise<FaultOutcome> {
  const outcome = await injectFault(kind, ctx);
  return typeof outcome === 'string' ? { description: outcome } : outcome;
}

async function injectFault(kind: FaultKind, ctx: FaultContext): Promise<string | FaultOutcome> {
  const { chaos, rng } = ctx;
  switch (kind) {
    case 'kill-service': {
      const service = pickService(ctx);
      chaos.expectExit(service.handle.process, 'killed');
      service.handle.process.signal('SIGKILL');
      await service.handle.process.exited;
      return `SIGKILL ${service.name}; ${await replace(ctx, service, rng.int(200, 3000))}`;
    }
    case 'term-service': {
      const service = pickService(ctx);
      chaos.expectExit(service.handle.process, 'stopped');
      service.handle.process.signal('SIGTERM');
      const { code } = await service.handle.process.exited;
      if (code !== 0)
        throw new Error(`${service.name} exited ${code} after SIGTERM:\n${service.handle.process.tail()}`);
      return `SIGTERM ${service.name}; ${await replace(ctx, service, rng.int(200, 3000))}`;
    }
    case 'freeze-service': {
      const service = pickService(ctx);
      const ms = rng.int(500, 5000);
      service.handle.process.signal('SIGSTOP');
      await sleep(ms);
      service.handle.process.signal('SIGCONT');
      return `SIGSTOP ${service.name} for ${ms} ms, then SIGCONT`;
    }
    case 'kill-manager': {
      const manager = chaos.manager;
      if (!manager) throw new Error('no manager to kill');
      const ms = rng.int(200, 5000);
      const killed = Date.now();
      chaos.expectExit(manager, 'killed');
      manager.signal('SIGKILL');
      await manager.exited;
      await sleep(ms);
      await chaos.startManager();
      return { description: `SIGKILL the manager, restarted after ${ms} ms`, managerStallMs: stallSince(killed) };
    }
    case 'restart-broker':
    case 'kill-broker': {
      const ms = rng.int(0, 2000);
      const [rabbit] = chaos.nodes;
      const started = Date.now();
      const kill = kind === 'kill-broker';
      await (kill ? rabbit!.kill() : rabbit!.stop());
      await sleep(ms);
      await rabbit!.start();
      return {
        description: `broker ${kill ? 'killed' : 'stopped'}, started again after ${ms} ms`,
        outageMs: Date.now() - started,
      };
    }
    case 'memory-alarm': {
      // An alarm on any node blocks publishers on all: one node serves for the cluster too.
      const ms = rng.int(1000, 5000);
      const started = Date.now();
      await chaos.nodes[0]!.setMemoryHighWatermark(0);
      await sleep(ms);
      await chaos.nodes[0]!.setMemoryHighWatermark(0.4);
      return { description: `broker memory alarm for ${ms} ms`, outageMs: Date.now() - started };
    }
    case 'second-manager': {
      const first = { process: chaos.manager!, apiUrl: chaos.world.apiUrl };
      await chaos.startManager();
      const second = { process: chaos.manager!, apiUrl: chaos.world.apiUrl };
      const ms = rng.int(500, 3000);
      await sleep(ms);
      const killFirst = rng.chance(0.5);
      const [victim, survivor] = killFirst ? [first, second] : [second, first];
      chaos.expectExit(victim.process, 'killed');
      victim.process.signal('SIGKILL');
      await victim.process.exited;
      chaos.world.manager = survivor.process;
      chaos.world.apiUrl = survivor.apiUrl;
      const description = `a second manager started; after ${ms} ms the ${killFirst ? 'first' : 'second'} was killed`;
      // The standby takes over once the killed one's lease lapses, at its next try.
      return killFirst ? { description, managerStallMs: MANAGER_LEASE_MS + MANAGER_RENEW_MS } : description;
    }
    case 'stranded-create':
      return strandedCreate(ctx);
    case 'duplicate-job':
      return duplicateJob(ctx);
    case 'purge-jobs': {
      const services = [...chaos.services];
      const started = Date.now();
      for (const service of services) chaos.expectExit(service.handle.process, 'stopped');
      for (const service of services) service.handle.process.signal('SIGTERM');
      for (const service of services) {
        const { code } = await service.handle.process.exited;
        if (code !== 0)
          throw new Error(`${service.name} exited ${code} after SIGTERM:\n${service.handle.process.tail()}`);
        await chaos.retire(service);
      }
      const purged = await chaos.world.purge(chaos.world.names.jobsQueue('default'));
      for (const service of services) await chaos.startService(service.name);
      return {
        description: `every service stopped gracefully, ${purged} jobs purged from the queue, services started again`,
        outageMs: Date.now() - started,
      };
    }
    case 'kill-broker-node':
    case 'restart-broker-node': {
      // The node stays down until the invariants held without it: a cluster must work on a
      // majority, and a quick restart would hide whatever lived on that node alone.
      const index = rng.int(0, chaos.nodes.length - 1);
      const node = chaos.nodes[index]!;
      const ms = rng.int(0, 3000);
      const kill = kind === 'kill-broker-node';
      await (kill ? node.kill() : node.stop());
      await sleep(ms);
      return {
        description: `broker node ${index + 1} of ${chaos.nodes.length} ${kill ? 'killed' : 'stopped'}, started again once converged (≥ ${ms} ms) without it`,
        heal: () => node.start(),
      };
    }
    case 'restart-postgres': {
      const ms = rng.int(200, 4000);
      const kill = rng.chance(0.5);
      const stopped = Date.now();
      await (kill ? chaos.postgres.kill() : chaos.postgres.stop());
      await sleep(ms);
      await chaos.postgres.start();
      return {
        description: `Postgres ${kill ? 'killed' : 'stopped'}, started again after ${ms} ms`,
        // Without its database the manager cannot renew its lease either, and takes it again after.
        managerStallMs: stallSince(stopped),
      };
    }
    case 'blackhole-link': {
      const service = pickService(ctx);
      const ms = rng.int(500, 6000);
      service.proxy.blackhole();
      await sleep(ms);
      service.proxy.heal();
      return `${service.name}'s broker link black-holed for ${ms} ms`;
    }
    case 'duplicate-name': {
      const service = pickService(ctx);
      await chaos.startService(service.name);
      return `a second service named ${service.name} started`;
    }
    case 'garbage': {
      const count = rng.int(10, 50);
      await publishGarbage(chaos, rng, count);
      return `${count} garbage messages each to the state queue, the jobs queue and the control exchange`;
    }
    case 'kill-new-holder':
      return killNewHolder(ctx);
    case 'kill-manager-mid-move':
      return killManagerMidMove(ctx);
    case 'term-two-services':
      return termTwoServices(ctx);
    case 'join-under-load':
      return joinUnderLoad(ctx);
    case 'drain-undrain':
      return drainUndrain(ctx);
  }
}

/** The manager's MANAGER_LEASE_RENEW_MS (its default): how often a standby tries for the lease. */
const MANAGER_RENEW_MS = 1_000;

/**
 * How long the manager could not act, for a fault that stopped it (or its database) at `since`
 * and has it running again now: a successor takes over only once the lease lapsed.
 */
function stallSince(since: number): number {
  return Date.now() - since + MANAGER_LEASE_MS + MANAGER_RENEW_MS;
}

/** Live observers the observations stream shows running on `service` now. */
function observersOn(ctx: FaultContext, service: ChaosService): string[] {
  return ctx.workload
    .live()
    .flatMap((entry) =>
      entry.id && ctx.chaos.world.watch.runningOn(entry.id, RUNNING_WINDOW_MS).includes(service.handle.id)
        ? [entry.id]
        : [],
    );
}

/**
 * The service where a copy of one of `ids` (observers on `source`) first started after `since`:
 * a planned move's destination, once its new copy runs. Undefined if none did within `timeoutMs`.
 */
async function newHolder(
  ctx: FaultContext,
  source: ChaosService,
  ids: readonly string[],
  since: number,
  timeoutMs: number,
): Promise<ChaosService | undefined> {
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    for (const id of ids) {
      const run = ctx.chaos.world.watch.runsOf(id).find((r) => r.serviceId !== source.handle.id && r.start >= since);
      const holder = run && ctx.chaos.services.find((s) => s.handle.id === run.serviceId);
      if (holder) return holder;
    }
    await sleep(5);
  }
  return undefined;
}

type MoveStart = 'SIGTERM' | 'operator drain';

/**
 * Starts moving `source`'s observers away: SIGTERM (it drains and exits; resolves to its exit),
 * or an operator drain (it stays up). Undefined when the manager refused the drain.
 */
async function startMoves(
  ctx: FaultContext,
  source: ChaosService,
  how: MoveStart,
): Promise<{ exited?: Promise<void> } | undefined> {
  if (how === 'operator drain') return (await ctx.chaos.drain(source, true)) === 200 ? {} : undefined;
  ctx.chaos.expectExit(source.handle.process, 'stopped');
  source.handle.process.signal('SIGTERM');
  const exited = stoppedCleanly(source);
  // Awaited once the fault is done with the moves; a bad exit meanwhile must not go unhandled.
  exited.catch(() => undefined);
  return { exited };
}

async function stoppedCleanly(service: ChaosService): Promise<void> {
  const { code } = await service.handle.process.exited;
  if (code !== 0) throw new Error(`${service.name} exited ${code} after SIGTERM:\n${service.handle.process.tail()}`);
}

/** Retires services that have exited; supervisors bring them back under their names up to the fleet's size. */
async function replaceAll(ctx: FaultContext, services: readonly ChaosService[], delayMs: number): Promise<string> {
  for (const service of services) await ctx.chaos.retire(service);
  const restart = services.slice(0, Math.max(0, ctx.fleetSize - ctx.chaos.services.length));
  if (restart.length === 0) return 'not replaced (the fleet is full)';
  await sleep(delayMs);
  for (const service of restart) await ctx.chaos.startService(service.name);
  return `${restart.map((s) => s.name).join(' and ')} restarted under ${restart.length > 1 ? 'their names' : 'its name'} after ${delayMs} ms`;
}

/**
 * A service is drained (SIGTERM, or by an operator) and the service its first observer moves to
 * is killed as soon as that copy runs: the moves to it are cut halfway, and its new copies' jobs
 * go back to the queue while the source still runs the old ones. An operator-drained source is
 * undrained once the invariants held.
 */
async function killNewHolder(ctx: FaultContext): Promise<string | FaultOutcome> {
  const { chaos, rng } = ctx;
  const source = pickService(ctx);
  const how: MoveStart = rng.chance(0.5) ? 'SIGTERM' : 'operator drain';
  const delayMs = rng.int(200, 3000);
  const ids = observersOn(ctx, source);
  const since = Date.now();
  const started = await startMoves(ctx, source, how);
  if (!started) return `${source.name}: the manager refused the drain`;
  const holder = await newHolder(ctx, source, ids, since, DRAIN_TIMEOUT_MS);
  let killed = `no copy of its ${ids.length} observers started elsewhere within ${DRAIN_TIMEOUT_MS} ms`;
  if (holder) {
    chaos.expectExit(holder.handle.process, 'killed');
    holder.handle.process.signal('SIGKILL');
    await holder.handle.process.exited;
    killed = `SIGKILL ${holder.name} ${Date.now() - since} ms later, as the first copy moved to it ran`;
  }
  await started.exited;
  const gone = [...(started.exited ? [source] : []), ...(holder ? [holder] : [])];
  const replaced = gone.length > 0 ? `; ${await replaceAll(ctx, gone, delayMs)}` : '';
  const description = `${how} ${source.name} (${ids.length} observers); ${killed}${replaced}`;
  if (started.exited) return description;
  return { description, heal: () => undrain(chaos, source) };
}

async function undrain(chaos: ChaosWorld, service: ChaosService): Promise<void> {
  const status = await chaos.drain(service, false);
  // 409: the manager has it dead (it was replaced meanwhile), nothing to undrain.
  if (status !== 200 && status !== 409) throw new Error(`undrain ${service.name}: ${status}`);
}

/**
 * A service is drained (SIGTERM, or by an operator) and the active manager is killed with its
 * moves in flight: as the first moved copy runs (the new generation published, the old copy not
 * yet released), or a moment after the drain began (perhaps before the manager answered it).
 * Another manager starts after 0.2–3 s and must finish or undo every move.
 */
async function killManagerMidMove(ctx: FaultContext): Promise<string | FaultOutcome> {
  const { chaos, rng } = ctx;
  const source = pickService(ctx);
  const how: MoveStart = rng.chance(0.5) ? 'SIGTERM' : 'operator drain';
  const atFirstCopy = rng.chance(0.7);
  const afterMs = rng.int(0, 300);
  const downMs = rng.int(200, 3000);
  const delayMs = rng.int(200, 3000);
  const manager = chaos.manager;
  if (!manager) throw new Error('no manager to kill');
  const ids = observersOn(ctx, source);
  const since = Date.now();
  const started = await startMoves(ctx, source, how);
  if (!started) return `${source.name}: the manager refused the drain`;
  let when = `${afterMs} ms after the ${how}`;
  if (atFirstCopy) {
    const holder = await newHolder(ctx, source, ids, since, DRAIN_TIMEOUT_MS);
    when = holder
      ? `as the first copy moved to ${holder.name} ran (${Date.now() - since} ms after the ${how})`
      : `with no copy moved within ${DRAIN_TIMEOUT_MS} ms`;
  } else {
    await sleep(afterMs);
  }
  const killed = Date.now();
  chaos.expectExit(manager, 'killed');
  manager.signal('SIGKILL');
  await manager.exited;
  await sleep(downMs);
  await chaos.startManager();
  const managerStallMs = stallSince(killed);
  await started.exited;
  const replaced = started.exited ? `; ${await replaceAll(ctx, [source], delayMs)}` : '';
  const description = `${how} ${source.name} (${ids.length} observers), SIGKILL the manager ${when}, restarted after ${downMs} ms${replaced}`;
  return {
    description,
    managerStallMs,
    ...(!started.exited && { heal: () => undrain(chaos, source) }),
  };
}

/** Two services get SIGTERM at once: both drain, each into a fleet the other is leaving too. */
async function termTwoServices(ctx: FaultContext): Promise<string | FaultOutcome> {
  const { chaos, rng } = ctx;
  const services = sortedServices(ctx);
  const first = rng.pick(services);
  const second = rng.pick(services.filter((s) => s !== first).concat(services.length < 2 ? [first] : []));
  const delayMs = rng.int(200, 3000);
  if (first === second) return 'fewer than two services to stop';
  const stopped = Date.now();
  const pair = [first, second];
  for (const service of pair) chaos.expectExit(service.handle.process, 'stopped');
  for (const service of pair) service.handle.process.signal('SIGTERM');
  await Promise.all(pair.map(stoppedCleanly));
  const left = services.length - pair.length;
  const replaced = await replaceAll(ctx, pair, delayMs);
  return {
    description: `SIGTERM ${first.name} and ${second.name} at once; ${replaced}`,
    // With no service left to move to, every observer waits for the replacements.
    ...(left === 0 && { outageMs: Date.now() - stopped }),
  };
}

/**
 * A service joins while the workload creates and deletes: a full fleet first loses one (SIGTERM),
 * so that the joiner keeps it at its size. Rebalancing must give the joiner its share: once the
 * invariants held, it runs at least its even share less the rebalancer's tolerance.
 */
async function joinUnderLoad(ctx: FaultContext): Promise<string | FaultOutcome> {
  const { chaos, rng } = ctx;
  const full = chaos.services.length >= ctx.fleetSize;
  const leaver = full ? pickService(ctx) : undefined;
  const ms = rng.int(500, 3000);
  let left = '';
  if (leaver) {
    chaos.expectExit(leaver.handle.process, 'stopped');
    leaver.handle.process.signal('SIGTERM');
    await stoppedCleanly(leaver);
    await chaos.retire(leaver);
    left = `SIGTERM ${leaver.name}; `;
  }
  await sleep(ms);
  const joiner = await chaos.startService();
  return {
    description: `${left}${joiner.name} joined ${ms} ms later, under load`,
    verify: () => holdsItsShare(ctx, joiner),
  };
}

/**
 * An operator drains a service and undrains it 0–4 s later, its moves perhaps still under way.
 * It must take jobs again: once the invariants held, it runs its share.
 */
async function drainUndrain(ctx: FaultContext): Promise<string | FaultOutcome> {
  const { chaos, rng } = ctx;
  const service = pickService(ctx);
  const ms = rng.int(0, 4000);
  const ids = observersOn(ctx, service);
  const drained = await chaos.drain(service, true);
  if (drained !== 200) return `${service.name}: the manager refused the drain (${drained})`;
  await sleep(ms);
  await undrain(chaos, service);
  return {
    description: `operator drain of ${service.name} (${ids.length} observers), undrained after ${ms} ms`,
    verify: () => holdsItsShare(ctx, service),
  };
}

/**
 * Waits (a rebalance cool-down and then some) until `service` runs its even share of the live
 * observers, as the observations stream shows, less what the rebalancer tolerates (its
 * REBALANCE_TOLERANCE_PERCENT is 10, at least one observer, and it moves whole observers).
 */
async function holdsItsShare(ctx: FaultContext, service: ChaosService): Promise<Violation[]> {
  const deadline = Date.now() + REBALANCE_COOLDOWN_MS + 10_000;
  let share = 0;
  let runs = 0;
  for (;;) {
    if (!service.handle.process.running || !ctx.chaos.services.includes(service)) return [];
    const even = ctx.workload.live().length / ctx.chaos.services.length;
    share = Math.max(0, Math.floor(even - Math.max(1, even / 10)) - 1);
    runs = observersOn(ctx, service).length;
    if (runs >= share) return [];
    if (Date.now() > deadline) break;
    await sleep(250);
  }
  return [
    {
      rule: 'joiner-left-idle',
      detail: `${service.name} runs ${runs} observers, fewer than its share less the tolerance (${share}), after ${REBALANCE_COOLDOWN_MS + 10_000} ms`,
    },
  ];
}

/**
 * What a manager killed between a create's publish and its mark leaves, kept down past 10 s: a
 * row not marked published (made long ago as far as its clock goes), its job in the queue, and
 * the job's start waiting in the state queue. The job must not be published a second time.
 */
async function strandedCreate(ctx: FaultContext): Promise<FaultOutcome> {
  const { chaos, rng, workload } = ctx;
  const manager = chaos.manager;
  if (!manager) throw new Error('no manager to kill');
  const killed = Date.now();
  chaos.expectExit(manager, 'killed');
  manager.signal('SIGKILL');
  await manager.exited;
  const id = randomUUID();
  const name = `stranded-${id.slice(0, 8)}`;
  const params = { intervalMs: 100 };
  await chaos.world.sql(
    `INSERT INTO observers (id, name, kind, pool, params, status, unplaced_since, created_at, updated_at)
     VALUES ($1, $2, 'ticker', 'default', $3, 'Created', now() - interval '60 s', now() - interval '60 s',
             now() - interval '60 s')`,
    [id, name, JSON.stringify(params)],
  );
  const job: JobMessage = { observerId: id, name, kind: 'ticker', pool: 'default', params, generation: 1 };
  await chaos.world.publishRaw(chaos.world.names.jobsQueue('default'), encodeMessage(job));
  workload.adopt(name, 'ticker', id);
  const ms = rng.int(10_500, 12_000);
  await sleep(ms);
  await chaos.startManager();
  return {
    description: `the manager killed between a create's publish and its mark (${name}), restarted after ${ms} ms`,
    managerStallMs: stallSince(killed),
  };
}

/** A copy of a live observer's job, exactly as the manager published it, into the jobs queue. */
async function duplicateJob(ctx: FaultContext): Promise<string> {
  const { chaos, rng, workload } = ctx;
  const live = workload.live().filter((entry) => entry.id !== undefined);
  if (live.length === 0) return 'no live observer to copy';
  const entry = rng.pick(live);
  const response = await chaos.world.api<JobMessage & { id: string }>('GET', `/observers/${entry.id}`);
  if (response.status !== 200) return `the manager did not answer for ${entry.name} (${response.status})`;
  const { id, name, kind, pool, params, generation } = response.body;
  const job: JobMessage = { observerId: id, name, kind, pool, params, generation };
  await chaos.world.publishRaw(chaos.world.names.jobsQueue(pool), encodeMessage(job));
  return `a copy of ${name}'s job (generation ${generation}) put in the jobs queue`;
}

/** Bytes that are not a valid message of any kind: random bytes, broken JSON, JSON of wrong shapes. */
function garbage(rng: Rng): Buffer {
  const shapes = [
    () => randomBytes(rng.int(0, 300)),
    () => Buffer.from('{"type": "observer.started", "serviceId": '),
    () => Buffer.from(JSON.stringify({ type: 'service.heartbeat', running: 'everything' })),
    () => Buffer.from(JSON.stringify({ observerId: 'not-a-uuid', kind: 42 })),
    () => Buffer.from(JSON.stringify([1, 2, 3])),
    () => Buffer.from('null'),
  ];
  return rng.pick(shapes)();
}

async function publishGarbage(chaos: ChaosWorld, rng: Rng, count: number): Promise<void> {
  const { names } = chaos.world;
  const connection = await connect(chaos.world.amqpUrl);
  // A broken connection fails the publishes below; its error event must not crash the suite.
  connection.on('error', () => undefined);
  try {
    const channel = await connection.createConfirmChannel();
    for (let i = 0; i < count; i++) {
      channel.sendToQueue(names.stateQueue, garbage(rng), { persistent: true });
      channel.sendToQueue(names.jobsQueue('default'), garbage(rng), { persistent: true });
      channel.publish(names.controlExchange, '', garbage(rng));
    }
    await channel.waitForConfirms();
  } finally {
    await connection.close();
  }
}
