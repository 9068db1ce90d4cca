/**
 * A private, throw-away RabbitMQ node for integration tests that need to stop, kill or
 * restart "the broker" without touching the shared one on 127.0.0.1:5672.
 *
 * Isolation, and why each piece is there:
 * - own node name (vigil-test-<random>@localhost), own AMQP and distribution ports;
 * - own RABBITMQ_CONF_ENV_FILE, so /etc/rabbitmq/rabbitmq-env.conf (NODENAME=rabbit@localhost)
 *   is never read;
 * - own HOME and therefore own Erlang cookie: even a mistaken rabbitmqctl call can only
 *   authenticate against the private node, never against the shared rabbit@localhost;
 * - empty enabled_plugins, so no management/prometheus listeners;
 * - every process we start carries a marker variable in its environment, and we only ever
 *   signal processes carrying that marker.
 * Only epmd (port 4369) is shared, which is harmless.
 *
 * A private cluster (`startPrivateRabbitCluster`) is several such nodes sharing one cookie of
 * their own, generated per cluster: each keeps its own HOME, names, ports and markers, and the
 * shared cookie authenticates them to each other only.
 *
 * Runs as root; the server and rabbitmqctl run as the `rabbitmq` user (uid/gid on spawn),
 * like the Debian wrapper does, and the temp directory is owned by that user.
 */
import { randomBytes } from 'node:crypto';
import { chown, mkdir, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { connect } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import {
  SYSTEM_PATH,
  type SystemUser,
  canBind,
  execFileAsync,
  isPortOpen,
  listPids,
  lookupUser,
  pickFreePort,
  pollUntil,
  processState,
  signal,
  tail,
  spawnServer,
} from './host';

/** Real scripts behind the /usr/sbin wrappers; the wrappers `su` and re-quote arguments. */
const RABBITMQ_BIN = '/usr/lib/rabbitmq/bin';
/** A node boots in 5-7 s here; be generous for loaded CI machines. */
const START_TIMEOUT_MS = 60_000;
const STOP_TIMEOUT_MS = 60_000;
/** Boot and shutdown take seconds; polling more often only adds load. */
const POLL_MS = 100;
/** Environment markers that identify processes belonging to one private node. */
const SERVER_MARKER = 'VIGIL_PRIVATE_RABBIT_DIR';
const CLI_MARKER = 'VIGIL_PRIVATE_RABBIT_CLI_DIR';

export interface PrivateRabbitOptions {
  /** Sets `consumer_timeout` (delivery acknowledgement timeout) and a matching check interval. */
  consumerTimeoutMs?: number;
  /** Extra rabbitmq.conf (sysctl format) lines, appended verbatim. */
  extraConfig?: string[];
}

export interface PrivateRabbit {
  /** amqp://guest:guest@127.0.0.1:<port> */
  readonly url: string;
  readonly port: number;
  readonly nodeName: string;
  /** Graceful `rabbitmqctl stop`; resolves once the VM has exited and the port is closed. */
  stop(): Promise<void>;
  /** SIGKILL of the beam.smp process; resolves once it is gone and the port is closed. */
  kill(): Promise<void>;
  /** (Re)starts with the same data dir, node name and ports; resolves when AMQP accepts connections. */
  start(): Promise<void>;
  /** Kills whatever is left of the node and removes its directory; safe to call twice. */
  destroy(): Promise<void>;
  /** Every queue's ready and unacknowledged messages and consumers (`rabbitmqctl list_queues`). */
  queues(): Promise<QueueState[]>;
  /**
   * Runs one of the node's CLI tools against it (as the rabbitmq user, with its cookie) and
   * returns its stdout; `rabbitmqctl` unless told otherwise.
   */
  ctl(
    args: string[],
    timeoutMs?: number,
    tool?: 'rabbitmqctl' | 'rabbitmq-diagnostics' | 'rabbitmq-queues',
  ): Promise<string>;
  /**
   * Sets the memory high watermark (a fraction of the machine's memory): 0 raises the memory
   * alarm at once, and the node blocks every publishing connection until it is set back.
   */
  setMemoryHighWatermark(fraction: number): Promise<void>;
}

export interface QueueState {
  name: string;
  ready: number;
  unacked: number;
  consumers: number;
}

export async function startPrivateRabbit(options: PrivateRabbitOptions = {}): Promise<PrivateRabbit> {
  const node = await newNode([]);
  try {
    await node.prepare(options, newCookie());
    await node.start();
    return node;
  } catch (error) {
    // Never leak a half-started node when the factory fails.
    await node.destroy().catch(() => undefined);
    throw error;
  }
}

/** Several private nodes clustered together; each can be stopped, killed and started on its own. */
export interface PrivateRabbitCluster {
  readonly nodes: readonly PrivateRabbit[];
  /** `list_queues` as answered by the first running node that answers. */
  queues(): Promise<QueueState[]>;
  /** Destroys every node; safe to call twice. */
  destroy(): Promise<void>;
}

/**
 * Starts `size` private nodes with one cookie of their own and joins the others to the first
 * (`stop_app`, `join_cluster`, `start_app`). A node stopped or killed later rejoins by itself when
 * started again, as long as another member is up.
 */
export async function startPrivateRabbitCluster(
  size: number,
  options: PrivateRabbitOptions = {},
): Promise<PrivateRabbitCluster> {
  if (!Number.isInteger(size) || size < 2) throw new Error(`a cluster needs at least 2 nodes, got ${size}`);
  const nodes: PrivateRabbitNode[] = [];
  const cluster = new PrivateCluster(nodes);
  try {
    for (let i = 0; i < size; i++) nodes.push(await newNode(nodes.flatMap((n) => [n.port, n.distPort])));
    const cookie = newCookie();
    for (const node of nodes) await node.prepare(options, cookie);
    await Promise.all(nodes.map((node) => node.start()));
    const [first, ...others] = nodes;
    for (const node of others) await node.joinCluster(first!.nodeName);
    return cluster;
  } catch (error) {
    await cluster.destroy().catch(() => undefined);
    throw error;
  }
}

class PrivateCluster implements PrivateRabbitCluster {
  private destroying: Promise<void> | undefined;

  constructor(readonly nodes: PrivateRabbitNode[]) {}

  async queues(): Promise<QueueState[]> {
    const errors: string[] = [];
    for (const node of this.nodes) {
      if (!(await node.isRunning())) continue;
      try {
        return await node.queues();
      } catch (error) {
        errors.push((error as Error).message.split('\n')[0] ?? '');
      }
    }
    throw new Error(`no node of the cluster answered list_queues: ${errors.join('; ') || 'none is running'}`);
  }

  destroy(): Promise<void> {
    this.destroying ??= Promise.allSettled(this.nodes.map((node) => node.destroy())).then((results) => {
      const failed = results.find((r): r is PromiseRejectedResult => r.status === 'rejected');
      if (failed) throw failed.reason;
    });
    return this.destroying;
  }
}

/** A node with fresh names and ports (none of `avoid`), prepared by the caller. */
async function newNode(avoid: number[]): Promise<PrivateRabbitNode> {
  const user = await lookupUser('rabbitmq');
  // AMQP and Erlang distribution ports, kept for the node's lifetime (restarts included).
  const port = await pickFreePort(avoid);
  const distPort = await pickFreePort([...avoid, port]);
  const dir = await mkdtemp(join(tmpdir(), 'vigil-rabbit-'));
  return new PrivateRabbitNode(dir, `vigil-test-${randomBytes(4).toString('hex')}@localhost`, port, distPort, user);
}

function newCookie(): string {
  return randomBytes(24).toString('hex').toUpperCase();
}

function rabbitPaths(dir: string) {
  return {
    config: join(dir, 'rabbitmq'), // RABBITMQ_CONFIG_FILE takes the path without ".conf"
    advancedConfig: join(dir, 'advanced.config'),
    confEnv: join(dir, 'rabbitmq-env.conf'),
    plugins: join(dir, 'enabled_plugins'),
    cookie: join(dir, '.erlang.cookie'),
    mnesia: join(dir, 'mnesia'),
    logs: join(dir, 'log'),
    pidFile: join(dir, 'rabbitmq.pid'),
    console: join(dir, 'console.log'),
  };
}

class PrivateRabbitNode implements PrivateRabbit {
  readonly url: string;
  private readonly paths: ReturnType<typeof rabbitPaths>;
  private destroying: Promise<void> | undefined;

  constructor(
    private readonly dir: string,
    readonly nodeName: string,
    readonly port: number,
    readonly distPort: number,
    private readonly user: SystemUser,
  ) {
    this.url = `amqp://guest:guest@127.0.0.1:${port}`;
    this.paths = rabbitPaths(dir);
  }

  async queues(): Promise<QueueState[]> {
    const out = await this.ctl(
      ['list_queues', '-q', '--no-table-headers', 'name', 'messages_ready', 'messages_unacknowledged', 'consumers'],
      30_000,
    );
    return out
      .split('\n')
      .filter((line) => line.trim().length > 0)
      .map((line) => {
        const [name = '', ready, unacked, consumers] = line.split('\t');
        return { name, ready: Number(ready), unacked: Number(unacked), consumers: Number(consumers) };
      });
  }

  /** Writes config, cookie and directories, all owned by the rabbitmq user. */
  async prepare(options: PrivateRabbitOptions, cookie: string): Promise<void> {
    const { consumerTimeoutMs, extraConfig = [] } = options;
    const config = ['loopback_users = none', `listeners.tcp.default = 127.0.0.1:${this.port}`];
    // An unset advanced.config path would fall back to /etc/rabbitmq/advanced.config.
    let advanced = '[].\n';
    if (consumerTimeoutMs !== undefined) {
      if (!Number.isInteger(consumerTimeoutMs) || consumerTimeoutMs <= 0) {
        throw new Error(`consumerTimeoutMs must be a positive integer, got ${consumerTimeoutMs}`);
      }
      config.push(`consumer_timeout = ${consumerTimeoutMs}`);
      // RabbitMQ only checks consumer_timeout on the channel tick (default every 60 s), so a
      // short timeout needs a short tick; it is not settable from rabbitmq.conf.
      const tick = Math.max(100, Math.min(1000, Math.floor(consumerTimeoutMs / 2)));
      advanced = `[{rabbit, [{channel_tick_interval, ${tick}}]}].\n`;
    }
    config.push(...extraConfig);

    await mkdir(this.paths.mnesia);
    await mkdir(this.paths.logs);
    await writeFile(`${this.paths.config}.conf`, `${config.join('\n')}\n`);
    await writeFile(this.paths.advancedConfig, advanced);
    await writeFile(
      this.paths.confEnv,
      '# Private test node: deliberately empty so /etc/rabbitmq/rabbitmq-env.conf is not used.\n',
    );
    await writeFile(this.paths.plugins, '[].\n');
    await writeFile(this.paths.cookie, cookie, { mode: 0o400 });
    for (const path of [
      this.dir,
      this.paths.mnesia,
      this.paths.logs,
      `${this.paths.config}.conf`,
      this.paths.advancedConfig,
      this.paths.confEnv,
      this.paths.plugins,
      this.paths.cookie,
    ]) {
      await chown(path, this.user.uid, this.user.gid);
    }
  }

  async start(): Promise<void> {
    if (this.destroying) throw new Error(`private RabbitMQ ${this.nodeName} was destroyed`);
    if ((await this.findServerPid()) !== undefined) return; // already running
    // A second VM with the same node name would fail, and on exit delete the live node's pid file.
    for (const port of [this.port, this.distPort]) {
      if (!(await canBind(port))) {
        throw new Error(
          `cannot start ${this.nodeName}: port ${port} is in use by another process\n${await this.diagnostics()}`,
        );
      }
    }
    await rm(this.paths.pidFile, { force: true });

    // Foreground script (not -detached) with output to a file: startup errors that happen before
    // logging is set up land in console.log, and we notice immediately if the script exits.
    const server = await spawnServer(join(RABBITMQ_BIN, 'rabbitmq-server'), [], {
      cwd: this.dir,
      env: this.env(SERVER_MARKER),
      user: this.user,
      logFile: this.paths.console,
    });

    await pollUntil(
      `${this.nodeName} to accept AMQP connections on 127.0.0.1:${this.port}`,
      START_TIMEOUT_MS,
      async () => {
        if (server.exitReason !== undefined) {
          throw new Error(
            `rabbitmq-server for ${this.nodeName} ${server.exitReason} during startup\n${await this.diagnostics()}`,
          );
        }
        return isPortOpen(this.port);
      },
      () => this.diagnostics(),
      POLL_MS,
    );
    // The listener opens late in boot; await_startup also covers the remaining boot steps.
    await this.ctl(['await_startup', '--timeout', String(START_TIMEOUT_MS / 1000)], START_TIMEOUT_MS + 10_000);
  }

  /** Makes this running node a member of `seed`'s cluster; its own data is reset. */
  async joinCluster(seed: string): Promise<void> {
    await this.ctl(['stop_app'], STOP_TIMEOUT_MS);
    await this.ctl(['join_cluster', seed], START_TIMEOUT_MS);
    await this.ctl(['start_app'], START_TIMEOUT_MS);
    await this.ctl(['await_startup', '--timeout', String(START_TIMEOUT_MS / 1000)], START_TIMEOUT_MS + 10_000);
  }

  async isRunning(): Promise<boolean> {
    return (await this.findServerPid()) !== undefined && (await isPortOpen(this.port));
  }

  async stop(): Promise<void> {
    const pid = await this.findServerPid();
    if (pid === undefined) return;
    await this.ctl(['stop'], STOP_TIMEOUT_MS);
    await this.waitUntilDown(pid, 'graceful stop');
  }

  async kill(): Promise<void> {
    const pid = await this.findServerPid();
    if (pid === undefined) return;
    signal(pid, 'SIGKILL');
    await this.waitUntilDown(pid, 'kill -9');
  }

  destroy(): Promise<void> {
    this.destroying ??= this.doDestroy();
    return this.destroying;
  }

  private async doDestroy(): Promise<void> {
    // The data is thrown away, so kill -9 is enough and cannot hang. The scan also catches
    // Erlang helper processes and any rabbitmqctl still running. The wrapper shell is spared at
    // first: it reaps the beam and then exits by itself (PID 1 here reaps orphans late, so killing
    // both at once leaves a zombie beam behind).
    const isOurs = async (pid: number) => {
      const env = await readEnviron(pid);
      return env.includes(`${SERVER_MARKER}=${this.dir}`) || env.includes(`${CLI_MARKER}=${this.dir}`);
    };
    const graceUntil = Date.now() + 3000;
    await pollUntil(
      `all processes of ${this.nodeName} to exit`,
      STOP_TIMEOUT_MS,
      async () => {
        let remaining = 0;
        for (const pid of await listPids()) {
          if ((await processState(pid)) !== 'alive' || !(await isOurs(pid))) continue;
          remaining += 1;
          const isWrapper = (await readFile(`/proc/${pid}/comm`, 'utf8').catch(() => '')).trim() === 'rabbitmq-server';
          if (!isWrapper || Date.now() > graceUntil) signal(pid, 'SIGKILL');
        }
        return remaining === 0;
      },
      () => this.diagnostics(),
      POLL_MS,
    );
    await rm(this.dir, { recursive: true, force: true, maxRetries: 3 });
  }

  /** OS pid of the node's beam.smp: from the pid file, else by scanning /proc for our marker. */
  private async findServerPid(): Promise<number | undefined> {
    const fromFile = Number.parseInt(await readFile(this.paths.pidFile, 'utf8').catch(() => ''), 10);
    if (Number.isInteger(fromFile) && (await this.isServerBeam(fromFile))) return fromFile;
    for (const pid of await listPids()) {
      if (await this.isServerBeam(pid)) return pid;
    }
    return undefined;
  }

  private async isServerBeam(pid: number): Promise<boolean> {
    if ((await processState(pid)) !== 'alive') return false;
    const comm = await readFile(`/proc/${pid}/comm`, 'utf8').catch(() => '');
    return comm.trim() === 'beam.smp' && (await readEnviron(pid)).includes(`${SERVER_MARKER}=${this.dir}`);
  }

  /** Down means: VM exited, AMQP port closed and the name released in epmd (else a restart fails). */
  private async waitUntilDown(pid: number, how: string): Promise<void> {
    const shortName = this.nodeName.split('@')[0] ?? this.nodeName;
    await pollUntil(
      `${this.nodeName} (pid ${pid}) to go down after ${how}`,
      STOP_TIMEOUT_MS,
      async () =>
        (await processState(pid)) !== 'alive' &&
        !(await isPortOpen(this.port)) &&
        !(await epmdNames()).includes(shortName),
      () => this.diagnostics(),
      POLL_MS,
    );
  }

  async setMemoryHighWatermark(fraction: number): Promise<void> {
    await this.ctl(['set_vm_memory_high_watermark', String(fraction)], 30_000);
  }

  async ctl(
    args: string[],
    timeoutMs = 30_000,
    tool: 'rabbitmqctl' | 'rabbitmq-diagnostics' | 'rabbitmq-queues' = 'rabbitmqctl',
  ): Promise<string> {
    try {
      const { stdout } = await execFileAsync(join(RABBITMQ_BIN, tool), ['-n', this.nodeName, ...args], {
        cwd: this.dir,
        env: this.env(CLI_MARKER),
        uid: this.user.uid,
        gid: this.user.gid,
        timeout: timeoutMs,
        killSignal: 'SIGKILL',
      });
      return stdout;
    } catch (error) {
      const e = error as Error & { stdout?: string; stderr?: string };
      throw new Error(
        `${tool} -n ${this.nodeName} ${args.join(' ')} failed: ${e.message}\n${e.stdout ?? ''}${e.stderr ?? ''}\n${await this.diagnostics()}`,
      );
    }
  }

  /** A minimal environment: nothing from the test runner (NODE_OPTIONS, RABBITMQ_*) leaks in. */
  private env(marker: string): NodeJS.ProcessEnv {
    return {
      PATH: SYSTEM_PATH,
      LANG: 'C.UTF-8',
      LC_ALL: 'C.UTF-8',
      HOME: this.dir, // => $HOME/.erlang.cookie is the private cookie, for server and CLI alike
      [marker]: this.dir,
      ERL_FLAGS: '-kernel inet_dist_use_interface {127,0,0,1}',
      ERL_EPMD_ADDRESS: '127.0.0.1',
      RABBITMQ_CONF_ENV_FILE: this.paths.confEnv,
      RABBITMQ_NODENAME: this.nodeName,
      RABBITMQ_NODE_IP_ADDRESS: '127.0.0.1',
      RABBITMQ_NODE_PORT: String(this.port),
      RABBITMQ_DIST_PORT: String(this.distPort),
      RABBITMQ_CONFIG_FILE: this.paths.config,
      RABBITMQ_CONFIG_FILES: join(this.dir, 'conf.d'), // nonexistent: keeps /etc/rabbitmq/conf.d out
      RABBITMQ_ADVANCED_CONFIG_FILE: this.paths.advancedConfig,
      RABBITMQ_MNESIA_BASE: this.paths.mnesia,
      RABBITMQ_LOG_BASE: this.paths.logs,
      RABBITMQ_ENABLED_PLUGINS_FILE: this.paths.plugins,
      RABBITMQ_PID_FILE: this.paths.pidFile,
    };
  }

  private async diagnostics(): Promise<string> {
    return [
      `--- tail of ${join(this.paths.logs, `${this.nodeName}.log`)} ---`,
      await tail(join(this.paths.logs, `${this.nodeName}.log`)),
      // Configuration errors are printed at the top of the console output, before a long crash report.
      `--- tail of ${this.paths.console} ---`,
      await tail(this.paths.console, 150),
    ].join('\n');
  }
}

// ---------------------------------------------------------------------------------------------
// RabbitMQ-specific host helpers; the generic ones are in host.ts.

/** Node names registered in the (shared) epmd, via its NAMES_REQ request. No epmd: no names. */
function epmdNames(): Promise<string[]> {
  return new Promise((resolve) => {
    const chunks: Buffer[] = [];
    const socket = connect({ port: 4369, host: '127.0.0.1' }, () => socket.write(Buffer.from([0, 1, 110])));
    socket.setTimeout(2000, () => socket.destroy(new Error('epmd did not answer')));
    socket.on('data', (chunk) => chunks.push(chunk));
    socket.once('error', () => chunks.splice(0));
    socket.once('close', () => {
      // 4 bytes of epmd port, then lines "name <name> at port <port>"
      const text = Buffer.concat(chunks).subarray(4).toString('utf8');
      resolve([...text.matchAll(/^name (\S+) at port/gm)].map((m) => m[1] ?? ''));
    });
  });
}

/** Our processes are recognised by the marker variable we put in their environment. */
async function readEnviron(pid: number): Promise<string[]> {
  return (await readFile(`/proc/${pid}/environ`, 'utf8').catch(() => '')).split('\0');
}
