import { randomBytes } from 'node:crypto';
import type { IncomingHttpHeaders } from 'node:http';
import path from 'node:path';
import { Client } from 'pg';
import { connect, type ChannelModel } from '@vigil/broker';
import { brokerNames, type BrokerNames } from '@vigil/contracts';
import { ObservationWatch } from './observations';
import { OpenApiCheck, type OpenApiDocument } from './openapi-check';
import { bearer, httpRequest } from './http';
import { AppProcess, MANAGER_MAIN, SERVICE_MAIN } from './processes';
import { waitFor } from './wait';

/** Kinds that exist to test failures (crashing, stubborn, service-killing), loaded by every service. */
export const TEST_KINDS = path.join(__dirname, '..', 'kinds', 'test-kinds.cjs');

export const SHARED_AMQP_URL = process.env.TEST_AMQP_URL ?? 'amqp://guest:guest@127.0.0.1:5672';
export const SHARED_POSTGRES_URL = process.env.TEST_DATABASE_URL ?? 'postgres://postgres@127.0.0.1:5432/test';

/** The worlds' LOST_AFTER_MS: a job no live service reports for this long is published again. */
export const WORLD_LOST_AFTER_MS = 2_000;

/** Fast timings so that failure detection takes seconds, not the production defaults. */
const FAST = {
  LOG_LEVEL: 'info',
  AMQP_HEARTBEAT_S: '1',
  HEARTBEAT_INTERVAL_MS: '300',
  RECONCILE_INTERVAL_MS: '100',
  CANCEL_RETRY_MS: '1000',
  STOP_TIMEOUT_MS: '2000',
  RESTART_INITIAL_DELAY_MS: '20',
  RESTART_MAX_DELAY_MS: '200',
  LOST_AFTER_MS: String(WORLD_LOST_AFTER_MS),
};

export interface WorldOptions {
  amqpUrl?: string;
  /** A Postgres server URL whose `test`-like database may create databases. */
  postgresUrl?: string;
  /** Extra environment for every app of this world (e.g. QUEUE_TYPE). */
  env?: Record<string, string>;
  /** The broker prefix, when the broker was set up for one (e.g. users limited to it); random by default. */
  prefix?: string;
  /** Observations the world's watch takes, by routing key (`<kind>.<observerId>`); all by default. */
  watchKeys?: readonly string[];
  /** Whether `api` holds every answer to the manager's OpenAPI document (see `World.checkAnswers`). */
  checkAnswers?: boolean;
}

export interface ApiResponse<T = Record<string, unknown>> {
  status: number;
  contentType: string;
  headers: IncomingHttpHeaders;
  body: T;
}

export interface ServiceHandle {
  process: AppProcess;
  id: string;
  name: string;
}

/**
 * An isolated Vigil: its own prefix on the broker and its own database, the built apps as real
 * processes, and an outside view of what runs where. Everything is removed by `close()`.
 */
export class World {
  readonly prefix: string;
  readonly names: BrokerNames;
  readonly database: string;
  /** The managers' VIGIL_ADMIN_TOKEN, which `api` sends unless told otherwise. */
  readonly adminToken = randomBytes(32).toString('hex');
  readonly amqpUrl: string;
  readonly databaseUrl: string;
  readonly services: ServiceHandle[] = [];
  manager: AppProcess | undefined;
  apiUrl = '';
  watch!: ObservationWatch;
  /**
   * Every answer `api` receives is held to the OpenAPI document the manager serves (fetched once
   * per world): an undocumented status, content type or shape throws, naming the route, status
   * and schema errors, and fails `close()` too, in case a poll swallowed the throw. A test that
   * makes the manager answer outside its contract on purpose turns this off.
   */
  checkAnswers: boolean;
  /** What did not fit the document, in the order seen. */
  readonly answerMismatches: string[] = [];
  private openApi: Promise<OpenApiCheck> | undefined;
  private readonly postgresUrl: string;
  private readonly extraEnv: Record<string, string>;

  private constructor(options: WorldOptions) {
    this.extraEnv = options.env ?? {};
    this.checkAnswers = options.checkAnswers ?? true;
    this.prefix = options.prefix ?? `t${randomBytes(4).toString('hex')}`;
    this.names = brokerNames(this.prefix);
    this.database = `vigil_${this.prefix}`;
    this.amqpUrl = options.amqpUrl ?? SHARED_AMQP_URL;
    this.postgresUrl = options.postgresUrl ?? SHARED_POSTGRES_URL;
    const url = new URL(this.postgresUrl);
    url.pathname = `/${this.database}`;
    this.databaseUrl = url.toString();
  }

  static async create(options: WorldOptions = {}): Promise<World> {
    const world = new World(options);
    await world.admin(`CREATE DATABASE ${world.database}`);
    world.watch = await ObservationWatch.start(world.amqpUrl, world.prefix, options.watchKeys);
    return world;
  }

  commonEnv(): Record<string, string> {
    return { ...FAST, AMQP_URL: this.amqpUrl, VIGIL_PREFIX: this.prefix, ...this.extraEnv };
  }

  async startManager(env: Record<string, string> = {}): Promise<AppProcess> {
    const manager = new AppProcess('manager', MANAGER_MAIN, {
      // Tests place observers on the services they choose; rebalancing has tests of its own.
      REBALANCE: 'off',
      ...this.commonEnv(),
      DATABASE_URL: this.databaseUrl,
      PORT: '0',
      HOST: '127.0.0.1',
      VIGIL_ADMIN_TOKEN: this.adminToken,
      // Tests create hundreds of observers in a burst; the limit has a test of its own.
      WRITE_RATE_LIMIT_PER_MINUTE: '0',
      ...env,
    });
    this.manager = manager;
    const ready = await waitFor('the manager to be ready', () => manager.logged('manager ready').at(-1), {
      timeoutMs: 30_000,
    }).catch((err: Error) => {
      throw new Error(`${err.message}\n${manager.tail()}`);
    });
    this.apiUrl = String(ready.api);
    return manager;
  }

  async startService(
    name: string,
    env: Record<string, string> = {},
    { nodeArgs = [] }: { nodeArgs?: readonly string[] } = {},
  ): Promise<ServiceHandle> {
    const child = new AppProcess(
      name,
      SERVICE_MAIN,
      {
        ...this.commonEnv(),
        SERVICE_NAME: name,
        CAPACITY: '10',
        KIND_MODULES: TEST_KINDS,
        ...env,
      },
      nodeArgs,
    );
    const ready = await waitFor(`service ${name} to be ready`, () => child.logged('observer service ready').at(-1), {
      timeoutMs: 30_000,
    }).catch((err: Error) => {
      throw new Error(`${err.message}\n${child.tail()}`);
    });
    const handle = { process: child, id: String(ready.serviceId), name };
    this.services.push(handle);
    // Creates are refused for a pool no live service serves, as the manager sees it: with the
    // manager up, wait until it has the service's birth.
    if (this.manager?.running) {
      await waitFor(`the manager to know service ${name}`, async () => {
        return (await this.api('GET', `/services/${handle.id}`)).status === 200;
      }).catch((err: Error) => {
        throw new Error(`${err.message}\n${this.manager?.tail() ?? ''}`);
      });
    }
    return handle;
  }

  async api<T = Record<string, unknown>>(method: string, path: string, body?: unknown): Promise<ApiResponse<T>> {
    return this.apiAt<T>(this.apiUrl, method, path, body);
  }

  /** A request with `token` (none when null) rather than the admin token. */
  async apiAs<T = Record<string, unknown>>(
    token: string | null,
    method: string,
    path: string,
    body?: unknown,
  ): Promise<ApiResponse<T>> {
    return this.apiAt<T>(this.apiUrl, method, path, body, token);
  }

  /** A request to the API at `apiUrl`: one of several managers of this world. */
  async apiAt<T = Record<string, unknown>>(
    apiUrl: string,
    method: string,
    path: string,
    body?: unknown,
    token: string | null = this.adminToken,
  ): Promise<ApiResponse<T>> {
    const response = await httpRequest(method, `${apiUrl}${path}`, body, token === null ? {} : bearer(token));
    const answer = {
      status: response.status,
      contentType: response.headers['content-type'] ?? '',
      headers: response.headers,
      body: (response.text ? JSON.parse(response.text) : {}) as T,
    };
    if (this.checkAnswers) await this.checkAnswer(apiUrl, method, path, answer);
    return answer;
  }

  private async checkAnswer(apiUrl: string, method: string, path: string, answer: ApiResponse<unknown>) {
    const check = await this.openApiCheck(apiUrl);
    // No document (the manager is down or starting): nothing to hold the answer to.
    if (!check) return;
    const problem = check.problem({ method, path, ...answer });
    if (!problem) return;
    this.answerMismatches.push(problem);
    throw new Error(`the answer does not fit the manager's OpenAPI document: ${problem}`);
  }

  private async openApiCheck(apiUrl: string): Promise<OpenApiCheck | undefined> {
    this.openApi ??= httpRequest('GET', `${apiUrl}/openapi.json`, undefined, bearer(this.adminToken)).then(
      (response) => {
        if (response.status !== 200) throw new Error(`GET openapi.json: ${response.status}`);
        return new OpenApiCheck(JSON.parse(response.text) as OpenApiDocument);
      },
    );
    try {
      return await this.openApi;
    } catch {
      this.openApi = undefined;
      return undefined;
    }
  }

  /** The manager's Prometheus metrics, as text. */
  async metrics(): Promise<string> {
    return (await httpRequest('GET', this.apiUrl.replace(/\/api\/v1$/, '/metrics'), undefined, bearer(this.adminToken)))
      .text;
  }

  /** Creates a ticker observer and returns its id. */
  async createTicker(name: string, intervalMs = 100, pool?: string): Promise<string> {
    return this.createObserver(name, 'ticker', { intervalMs }, pool);
  }

  /** Creates an observer of any kind and returns its id. */
  async createObserver(name: string, kind: string, params: Record<string, unknown>, pool?: string): Promise<string> {
    const response = await this.api('POST', '/observers', { name, kind, params, ...(pool ? { pool } : {}) });
    if (response.status !== 201) throw new Error(`create ${name}: ${response.status} ${JSON.stringify(response.body)}`);
    return String(response.body.id);
  }

  /** Creates `count` observers named `<prefix>-<i>` of `kind` ticking every `intervalMs`; returns their ids. */
  async createTickers(prefix: string, count: number, intervalMs: number, kind = 'ticker'): Promise<string[]> {
    const ids: string[] = [];
    for (let i = 0; i < count; i++) ids.push(await this.createObserver(`${prefix}-${i}`, kind, { intervalMs }));
    return ids;
  }

  async observer(id: string): Promise<{
    status: string;
    serviceId: string | null;
    generation: number;
    lastError: string | null;
    waitReason: string | null;
    timeline: {
      at: string;
      event: string;
      serviceId: string | null;
      generation: number | null;
      reason: string | null;
    }[];
  }> {
    const response = await this.api<never>('GET', `/observers/${id}`);
    if (response.status !== 200) throw new Error(`GET observer ${id}: ${response.status}`);
    return response.body;
  }

  async service(id: string): Promise<{ status: string; running: number; observers: { id: string }[] }> {
    const response = await this.api<never>('GET', `/services/${id}`);
    if (response.status !== 200) throw new Error(`GET service ${id}: ${response.status}`);
    return response.body;
  }

  /** Waits until the manager shows the observer in `status` (and on `serviceId`, if given). */
  async waitForStatus(id: string, status: string, serviceId?: string | null, timeoutMs = 20_000) {
    return waitFor(
      `observer ${id} to be ${status}${serviceId === undefined ? '' : ` on ${serviceId}`}`,
      async () => {
        const observer = await this.observer(id);
        const matches = observer.status === status && (serviceId === undefined || observer.serviceId === serviceId);
        return matches ? observer : false;
      },
      { timeoutMs },
    );
  }

  /** Message counts of a queue on this world's broker. */
  async queueCounts(queue: string): Promise<{ messageCount: number; consumerCount: number }> {
    return this.withConnection(async (connection) => (await connection.createChannel()).checkQueue(queue));
  }

  /** Waits for the next message in the dead-letter queue and takes it: its job and why it died. */
  async takeDeadLetter(): Promise<{ job: { observerId?: string }; deaths: { queue: string; reason: string }[] }> {
    return this.withConnection(async (connection) => {
      const channel = await connection.createChannel();
      const dead = await waitFor('a message in the dead-letter queue', () =>
        channel.get(this.names.deadLetterQueue, { noAck: true }),
      );
      return {
        job: JSON.parse(dead.content.toString()) as { observerId?: string },
        deaths: dead.properties.headers?.['x-death'] ?? [],
      };
    });
  }

  /** Removes every ready message from a queue (held ones stay); returns how many went. */
  async purge(queue: string): Promise<number> {
    return this.withConnection(
      async (connection) => (await (await connection.createChannel()).purgeQueue(queue)).messageCount,
    );
  }

  /** Runs one statement on this world's database (the manager's), as an outside party would. */
  async sql<T = Record<string, unknown>>(statement: string, params: unknown[] = []): Promise<T[]> {
    const client = new Client({ connectionString: this.databaseUrl });
    await client.connect();
    try {
      return (await client.query(statement, params)).rows as T[];
    } finally {
      await client.end();
    }
  }

  /** Publishes raw bytes to a queue (for garbage-input tests). */
  async publishRaw(queue: string, body: Buffer | string): Promise<void> {
    await this.withConnection(async (connection) => {
      const channel = await connection.createConfirmChannel();
      channel.sendToQueue(queue, Buffer.from(body), { persistent: true });
      await channel.waitForConfirms();
    });
  }

  async close(): Promise<void> {
    await Promise.allSettled([...this.services.map((s) => s.process.kill()), this.manager?.kill()]);
    await this.watch?.close().catch(() => undefined);
    await this.deleteBrokerObjects().catch(() => undefined);
    await this.admin(`DROP DATABASE IF EXISTS ${this.database} WITH (FORCE)`).catch(() => undefined);
    if (this.answerMismatches.length > 0) {
      throw new Error(`answers that do not fit the manager's OpenAPI document:\n${this.answerMismatches.join('\n')}`);
    }
  }

  /**
   * A short-lived connection for `use`. A channel the broker closes (a queue whose node is down)
   * fails `use`; the error the connection emits with it must not crash the test process.
   */
  private async withConnection<T>(use: (connection: ChannelModel) => Promise<T>): Promise<T> {
    const connection = await connect(this.amqpUrl);
    connection.on('error', () => undefined);
    try {
      return await use(connection);
    } finally {
      await connection.close().catch(() => undefined);
    }
  }

  private async deleteBrokerObjects(): Promise<void> {
    await this.withConnection(async (connection) => {
      const channel = await connection.createChannel();
      for (const pool of ['default', 'blue', 'green']) await channel.deleteQueue(this.names.jobsQueue(pool));
      await channel.deleteQueue(this.names.stateQueue);
      await channel.deleteQueue(this.names.deadLetterQueue);
      for (const exchange of [
        this.names.controlExchange,
        this.names.observationsExchange,
        this.names.deadLetterExchange,
      ]) {
        await channel.deleteExchange(exchange);
      }
    });
  }

  private async admin(statement: string): Promise<void> {
    const client = new Client({ connectionString: this.postgresUrl });
    await client.connect();
    try {
      await client.query(statement);
    } finally {
      await client.end();
    }
  }
}
