import {
  startPrivatePostgres,
  startPrivateRabbit,
  startPrivateRabbitCluster,
  World,
  type AppProcess,
  type PrivatePostgres,
  type PrivateRabbit,
  type QueueState,
  type ServiceHandle,
} from '@vigil/testkit';
import { TcpProxy, type TcpProxyTarget } from './tcp-proxy';

/** Nodes of the broker in cluster mode. */
export const CLUSTER_SIZE = 3;

/** The services' DRAIN_TIMEOUT_MS: how long a service waits for its copies to be moved away, ms. */
export const DRAIN_TIMEOUT_MS = 5_000;
/**
 * The manager's REBALANCE_COOLDOWN_MS: an observer moved this recently is not moved again to
 * rebalance. Short, so that rebalancing goes on between every pair of faults; long enough that a
 * flapping fleet cannot move one observer back and forth within a fault's convergence.
 */
export const REBALANCE_COOLDOWN_MS = 5_000;
/** The manager's MANAGER_LEASE_MS (its default): a killed manager's successor waits this long at most. */
export const MANAGER_LEASE_MS = 3_000;

/** A service of the chaos world, reaching the broker through a proxy of its own. */
export interface ChaosService {
  name: string;
  handle: ServiceHandle;
  proxy: TcpProxy;
}

/** What the suite is about to do to a process, so its exit is not counted as a crash. */
export type ExpectedExit = 'killed' | 'stopped';

/** The broker: one private node, or a private cluster behind a load-balancing proxy. */
interface ChaosBroker {
  nodes: readonly PrivateRabbit[];
  queues(): Promise<QueueState[]>;
  destroy(): Promise<void>;
  /** In cluster mode, the proxy the manager and the suite itself reach the cluster through. */
  front?: TcpProxy;
}

async function startBroker(cluster: boolean): Promise<ChaosBroker> {
  if (!cluster) {
    const rabbit = await startPrivateRabbit();
    return { nodes: [rabbit], queues: () => rabbit.queues(), destroy: () => rabbit.destroy() };
  }
  const rabbits = await startPrivateRabbitCluster(CLUSTER_SIZE);
  try {
    const front = await TcpProxy.start(rabbits.nodes.map((node) => ({ host: '127.0.0.1', port: node.port })));
    return { nodes: rabbits.nodes, queues: () => rabbits.queues(), destroy: () => rabbits.destroy(), front };
  } catch (err) {
    await rabbits.destroy();
    throw err;
  }
}

/**
 * Vigil in a world of its own: a private RabbitMQ node or cluster and a private Postgres cluster
 * (so all can be stopped and killed), the manager, and services each behind a TCP proxy (so one
 * service's broker link can be cut or black-holed). In cluster mode every proxy balances over the
 * nodes, the manager and the observation watch reach the cluster through one more, and jobs are
 * on quorum queues.
 */
export class ChaosWorld {
  readonly services: ChaosService[] = [];
  /** Every app process started, and whether the suite meant it to exit. */
  private readonly processes = new Map<AppProcess, ExpectedExit | undefined>();
  private serial = 0;
  private proxiesStarted = 0;

  private constructor(
    private readonly broker: ChaosBroker,
    readonly postgres: PrivatePostgres,
    readonly world: World,
  ) {}

  static async start({ cluster = false }: { cluster?: boolean } = {}): Promise<ChaosWorld> {
    const [broker, postgres] = await Promise.allSettled([startBroker(cluster), startPrivatePostgres()]);
    if (broker.status === 'rejected' || postgres.status === 'rejected') {
      await Promise.allSettled([
        broker.status === 'fulfilled' && broker.value.destroy(),
        postgres.status === 'fulfilled' && postgres.value.destroy(),
      ]);
      throw broker.status === 'rejected' ? broker.reason : (postgres as PromiseRejectedResult).reason;
    }
    const amqpUrl = broker.value.front
      ? `amqp://guest:guest@127.0.0.1:${broker.value.front.port}`
      : broker.value.nodes[0]!.url;
    const world = await World.create({
      amqpUrl,
      postgresUrl: postgres.value.url,
      env: cluster ? { QUEUE_TYPE: 'quorum' } : {},
    });
    const chaos = new ChaosWorld(broker.value, postgres.value, world);
    await chaos.startManager();
    return chaos;
  }

  /** The broker's nodes: one, or the cluster's. */
  get nodes(): readonly PrivateRabbit[] {
    return this.broker.nodes;
  }

  /** Every queue's counts, from the node (or a live node of the cluster). */
  queues(): Promise<QueueState[]> {
    return this.broker.queues();
  }

  get manager(): AppProcess | undefined {
    return this.world.manager;
  }

  /**
   * The suite kills, freezes and cuts off services every few seconds, and an observer that keeps
   * landing on services that die soon after is what a crash loop looks like; crash loops have
   * tests of their own, so here no number of deaths quarantines an observer. Rebalancing is on,
   * as in production: every fault that adds or removes a service, and the workload's uneven
   * creates, make the manager move observers make-before-break while other faults strike.
   */
  async startManager(): Promise<void> {
    const manager = await this.world.startManager({
      CRASH_LOOP_DEATHS: String(1_000_000),
      REBALANCE: 'on',
      REBALANCE_COOLDOWN_MS: String(REBALANCE_COOLDOWN_MS),
      MANAGER_LEASE_MS: String(MANAGER_LEASE_MS),
    });
    this.processes.set(manager, undefined);
  }

  /** A new service behind a new proxy; `name` defaults to a fresh one. */
  async startService(name = `chaos-${++this.serial}`): Promise<ChaosService> {
    // Each service's proxy starts its turns at another node, so the fleet spreads over the cluster.
    const targets: TcpProxyTarget[] = this.nodes.map((node) => ({ host: '127.0.0.1', port: node.port }));
    const first = this.proxiesStarted++ % targets.length;
    const proxy = await TcpProxy.start([...targets.slice(first), ...targets.slice(0, first)]);
    try {
      const handle = await this.world.startService(name, {
        AMQP_URL: `amqp://guest:guest@127.0.0.1:${proxy.port}`,
        CAPACITY: '200',
        DRAIN_TIMEOUT_MS: String(DRAIN_TIMEOUT_MS),
      });
      this.processes.set(handle.process, undefined);
      const service = { name, handle, proxy };
      this.services.push(service);
      return service;
    } catch (err) {
      await proxy.close();
      throw err;
    }
  }

  /**
   * An operator drains the service (it stays up and has its observers moved away), or lets it
   * take jobs again; returns the API's status (409: the manager has it dead already).
   */
  async drain(service: ChaosService, draining: boolean): Promise<number> {
    const response = await this.world.api('POST', `/services/${service.handle.id}/${draining ? 'drain' : 'undrain'}`);
    return response.status;
  }

  /** Records that the suite is about to end `process` (killed, or stopped gracefully). */
  expectExit(process: AppProcess, how: ExpectedExit): void {
    this.processes.set(process, how);
  }

  /** Forgets a service that has exited (its proxy closes). */
  async retire(service: ChaosService): Promise<void> {
    const index = this.services.indexOf(service);
    if (index >= 0) this.services.splice(index, 1);
    await service.proxy.close();
  }

  /** The last `lines` log lines of every app process started, by label and pid. */
  logTails(lines: number): Record<string, string> {
    return Object.fromEntries([...this.processes.keys()].map((p) => [`${p.label} (pid ${p.pid})`, p.tail(lines)]));
  }

  /** App processes that exited although the suite did nothing to them, with their last lines. */
  crashed(): { label: string; pid: number; tail: string }[] {
    return [...this.processes]
      .filter(([process, expected]) => !process.running && expected === undefined)
      .map(([process]) => ({ label: process.label, pid: process.pid, tail: process.tail(20) }));
  }

  async close(): Promise<void> {
    await this.world.close().catch(() => undefined);
    await Promise.allSettled([...this.services.map((s) => s.proxy.close()), this.broker.front?.close()]);
    await Promise.allSettled([this.broker.destroy(), this.postgres.destroy()]);
  }
}
