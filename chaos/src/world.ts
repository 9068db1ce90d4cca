import {
  startPrivatePostgres,
  startPrivateRabbit,
  World,
  type AppProcess,
  type PrivatePostgres,
  type PrivateRabbit,
  type ServiceHandle,
} from '@vigil/testkit';
import { TcpProxy } from './tcp-proxy';

/** A service of the chaos world, reaching the broker through a proxy of its own. */
export interface ChaosService {
  name: string;
  handle: ServiceHandle;
  proxy: TcpProxy;
}

/** What the suite is about to do to a process, so its exit is not counted as a crash. */
export type ExpectedExit = 'killed' | 'stopped';

/**
 * Vigil in a world of its own: a private RabbitMQ node and Postgres cluster (so both can be
 * stopped and killed), the manager, and services each behind a TCP proxy (so one service's
 * broker link can be cut or black-holed).
 */
export class ChaosWorld {
  readonly services: ChaosService[] = [];
  /** Every app process started, and whether the suite meant it to exit. */
  private readonly processes = new Map<AppProcess, ExpectedExit | undefined>();
  private serial = 0;

  private constructor(
    readonly rabbit: PrivateRabbit,
    readonly postgres: PrivatePostgres,
    readonly world: World,
  ) {}

  static async start(): Promise<ChaosWorld> {
    const [rabbit, postgres] = await Promise.all([startPrivateRabbit(), startPrivatePostgres()]);
    const world = await World.create({ amqpUrl: rabbit.url, postgresUrl: postgres.url });
    const chaos = new ChaosWorld(rabbit, postgres, world);
    await chaos.startManager();
    return chaos;
  }

  get manager(): AppProcess | undefined {
    return this.world.manager;
  }

  /**
   * The suite kills, freezes and cuts off services every few seconds, and an observer that keeps
   * landing on services that die soon after is what a crash loop looks like; crash loops have
   * tests of their own, so here no number of deaths quarantines an observer.
   */
  async startManager(): Promise<void> {
    this.processes.set(await this.world.startManager({ CRASH_LOOP_DEATHS: String(1_000_000) }), undefined);
  }

  /** A new service behind a new proxy; `name` defaults to a fresh one. */
  async startService(name = `chaos-${++this.serial}`): Promise<ChaosService> {
    const proxy = await TcpProxy.start({ host: '127.0.0.1', port: this.rabbit.port });
    try {
      const handle = await this.world.startService(name, {
        AMQP_URL: `amqp://guest:guest@127.0.0.1:${proxy.port}`,
        CAPACITY: '200',
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

  /** App processes that exited although the suite did nothing to them, with their last lines. */
  crashed(): { label: string; pid: number; tail: string }[] {
    return [...this.processes]
      .filter(([process, expected]) => !process.running && expected === undefined)
      .map(([process]) => ({ label: process.label, pid: process.pid, tail: process.tail(20) }));
  }

  async close(): Promise<void> {
    await this.world.close().catch(() => undefined);
    await Promise.allSettled(this.services.map((s) => s.proxy.close()));
    await Promise.allSettled([this.rabbit.destroy(), this.postgres.destroy()]);
  }
}
