import { randomBytes, randomUUID } from 'node:crypto';
import { connect } from '@vigil/broker';
import { encodeMessage, type JobMessage } from '@vigil/contracts';
import type { Violation } from './invariants';
import type { Rng } from './rng';
import type { Workload } from './workload';
import { MANAGER_LEASE_MS, type ChaosService, type ChaosWorld } from './world';

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
