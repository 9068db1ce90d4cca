/**
 * A private, throw-away PostgreSQL cluster for integration tests that need to stop, kill or
 * restart "the database" without touching the shared one on 127.0.0.1:5432.
 *
 * Own data directory, own port, own Unix socket directory, trust authentication for the
 * `postgres` role. Postgres refuses to run as root, so initdb and the server run as the
 * `postgres` user (uid/gid on spawn) and the temp directory is owned by that user.
 *
 * The postmaster is spawned directly (not through `pg_ctl start`) so that this Node process is
 * its parent and reaps it: PID 1 on this machine reaps orphans only after a long delay, and the
 * pid of a zombie postmaster in postmaster.pid makes the next start fail ("lock file already
 * exists"). Spawning it ourselves also lets start() fail fast when the server exits early.
 *
 * Processes are identified by their working directory (every postgres process chdirs into its
 * data directory), and we only ever signal processes whose cwd is our own data directory.
 */
import { constants } from 'node:fs';
import { access, appendFile, chown, mkdir, mkdtemp, readFile, readdir, readlink, realpath, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { setTimeout as delay } from 'node:timers/promises';
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

/** Starts in well under a second; the deadline only matters when something is wrong. */
const START_TIMEOUT_MS = 30_000;
const STOP_TIMEOUT_MS = 30_000;
/** Start and stop take well under a second, so poll often. */
const POLL_MS = 50;

export interface PrivatePostgres {
  /** postgres://postgres@127.0.0.1:<port>/postgres (trust auth, no password) */
  readonly url: string;
  readonly port: number;
  /** `pg_ctl stop -m fast`; resolves once every server process has exited and the port is closed. */
  stop(): Promise<void>;
  /** SIGKILL of the postmaster (and its children, see kill()); the next start does crash recovery. */
  kill(): Promise<void>;
  /** (Re)starts on the same data directory and port; resolves when it accepts connections. */
  start(): Promise<void>;
  /** Kills whatever is left and removes the directory; safe to call twice. */
  destroy(): Promise<void>;
  /** What the server logged so far (its log file). */
  log(): Promise<string>;
}

export async function startPrivatePostgres(): Promise<PrivatePostgres> {
  const [user, binDir, port] = await Promise.all([lookupUser('postgres'), findPostgresBinDir(), pickFreePort()]);
  // realpath: we later compare against /proc/<pid>/cwd, which is always resolved.
  const dir = await realpath(await mkdtemp(join(tmpdir(), 'vigil-pg-')));
  const server = new PrivatePostgresServer(dir, port, binDir, user);
  try {
    await server.prepare();
    await server.start();
    return server;
  } catch (error) {
    // Never leak a half-started server when the factory fails.
    await server.destroy().catch(() => undefined);
    throw error;
  }
}

class PrivatePostgresServer implements PrivatePostgres {
  readonly url: string;
  private readonly dataDir: string;
  private readonly socketDir: string;
  private readonly logFile: string;
  private destroying: Promise<void> | undefined;

  constructor(
    private readonly dir: string,
    readonly port: number,
    private readonly binDir: string,
    private readonly user: SystemUser,
  ) {
    this.url = `postgres://postgres@127.0.0.1:${port}/postgres`;
    this.dataDir = join(dir, 'data');
    this.socketDir = join(dir, 'sock');
    this.logFile = join(dir, 'postgres.log');
  }

  /** initdb plus our settings appended to postgresql.conf (so restarts reuse them). */
  async prepare(): Promise<void> {
    await mkdir(this.socketDir, { mode: 0o700 });
    await chown(this.dir, this.user.uid, this.user.gid);
    await chown(this.socketDir, this.user.uid, this.user.gid);
    await this.run('initdb', [
      '-D',
      this.dataDir,
      '-U',
      'postgres',
      '-A',
      'trust',
      '-E',
      'UTF8',
      '--no-locale',
      '--no-sync',
    ]);
    await appendFile(
      join(this.dataDir, 'postgresql.conf'),
      [
        '',
        '# private test instance (test/support/private-postgres.ts)',
        "listen_addresses = '127.0.0.1'",
        `port = ${this.port}`,
        `unix_socket_directories = '${this.socketDir}'`,
        // Speed only: kill -9 of the server does not lose what the kernel already has. Keep
        // synchronous_commit on, or a committed row could still be lost by kill -9.
        'fsync = off',
        'shared_buffers = 32MB',
        '',
      ].join('\n'),
    );
  }

  log(): Promise<string> {
    return readFile(this.logFile, 'utf8');
  }

  async start(): Promise<void> {
    if (this.destroying) throw new Error(`private Postgres on port ${this.port} was destroyed`);
    if ((await this.findPostmasterPid()) !== undefined) return; // already running
    if (!(await canBind(this.port))) {
      throw new Error(
        `cannot start private Postgres: port ${this.port} is in use by another process\n${await this.diagnostics()}`,
      );
    }
    // None of our processes is alive, so a leftover lock file is stale. Postgres would trust
    // it if its pid now belongs to an unrelated process or an unreaped zombie.
    await rm(join(this.dataDir, 'postmaster.pid'), { force: true });

    const server = await spawnServer(join(this.binDir, 'postgres'), ['-D', this.dataDir], {
      cwd: this.dir,
      env: postgresEnv(),
      user: this.user,
      logFile: this.logFile,
    });

    await pollUntil(
      `private Postgres to accept connections on 127.0.0.1:${this.port}`,
      START_TIMEOUT_MS,
      async () => {
        if (server.exitReason !== undefined) {
          throw new Error(
            `postgres on port ${this.port} ${server.exitReason} during startup\n${await this.diagnostics()}`,
          );
        }
        // The socket is open during crash recovery too; the lock file's status line says "ready"
        // only once connections are accepted (that is what pg_ctl -w checks).
        const lockFile = await readFile(join(this.dataDir, 'postmaster.pid'), 'utf8').catch(() => '');
        return lockFile.split('\n')[7]?.trim() === 'ready' && (await isPortOpen(this.port));
      },
      () => this.diagnostics(),
      POLL_MS,
    );
  }

  async stop(): Promise<void> {
    const pid = await this.findPostmasterPid();
    if (pid === undefined) return;
    await this.run('pg_ctl', ['stop', '-D', this.dataDir, '-m', 'fast', '-w', '-t', String(STOP_TIMEOUT_MS / 1000)]);
    await this.waitUntilDown('pg_ctl stop -m fast', false);
  }

  /**
   * SIGKILL of the postmaster, then of its children. Killing only the postmaster would leave
   * backends attached to the shared memory for a moment, and a quick restart then fails with
   * "pre-existing shared memory block is still in use"; killing them all is a clean crash.
   * The orphaned children linger as zombies until PID 1 gets round to reaping them (it is slow
   * here): harmless, the same as a manual kill -9 would leave.
   */
  async kill(): Promise<void> {
    const pid = await this.findPostmasterPid();
    if (pid === undefined) return;
    signal(pid, 'SIGKILL');
    await this.waitUntilDown('kill -9', true);
  }

  destroy(): Promise<void> {
    this.destroying ??= (async () => {
      // The data is thrown away, so no checkpoint: SIGQUIT is "immediate shutdown", in which the
      // postmaster still reaps its children (after a plain kill -9 they linger as zombies until
      // the slow PID 1 reaps them). Anything still alive after a short grace period gets SIGKILL.
      const pid = await this.findPostmasterPid();
      if (pid !== undefined) {
        signal(pid, 'SIGQUIT');
        const graceUntil = Date.now() + 3000;
        while ((await processState(pid)) === 'alive' && Date.now() < graceUntil) await delay(20);
      }
      await this.waitUntilDown('destroy', true);
      await rm(this.dir, { recursive: true, force: true, maxRetries: 3 });
    })();
    return this.destroying;
  }

  /** Live processes of this cluster: every postgres process has the data dir as its cwd. */
  private async serverPids(): Promise<number[]> {
    const pids: number[] = [];
    for (const pid of await listPids()) {
      if (
        (await readlink(`/proc/${pid}/cwd`).catch(() => '')) === this.dataDir &&
        (await processState(pid)) === 'alive'
      ) {
        pids.push(pid);
      }
    }
    return pids;
  }

  /** The postmaster keeps its original argv; children retitle themselves "postgres: ...". */
  private async findPostmasterPid(): Promise<number | undefined> {
    for (const pid of await this.serverPids()) {
      const argv0 = (await readFile(`/proc/${pid}/cmdline`, 'utf8').catch(() => '')).split('\0')[0];
      if (argv0 === join(this.binDir, 'postgres')) return pid;
    }
    return undefined;
  }

  private async waitUntilDown(how: string, killStragglers: boolean): Promise<void> {
    await pollUntil(
      `private Postgres on port ${this.port} to go down after ${how}`,
      STOP_TIMEOUT_MS,
      async () => {
        const pids = await this.serverPids();
        if (killStragglers) for (const pid of pids) signal(pid, 'SIGKILL');
        return pids.length === 0 && !(await isPortOpen(this.port));
      },
      () => this.diagnostics(),
      POLL_MS,
    );
  }

  /** Runs one of the cluster's binaries as the postgres user; errors carry stderr and the log tail. */
  private async run(tool: string, args: string[]): Promise<void> {
    try {
      await execFileAsync(join(this.binDir, tool), args, {
        cwd: this.dir, // must be readable by postgres, unlike e.g. /root
        env: postgresEnv(),
        uid: this.user.uid,
        gid: this.user.gid,
        timeout: STOP_TIMEOUT_MS + 10_000,
        killSignal: 'SIGKILL',
      });
    } catch (error) {
      const e = error as Error & { stdout?: string; stderr?: string };
      throw new Error(
        `${tool} ${args.join(' ')} failed: ${e.message}\n${e.stdout ?? ''}${e.stderr ?? ''}\n${await this.diagnostics()}`,
      );
    }
  }

  private async diagnostics(): Promise<string> {
    return `--- tail of ${this.logFile} ---\n${await tail(this.logFile)}`;
  }
}

/** Minimal environment: nothing from the test runner (PGPORT, PGDATA, NODE_OPTIONS) leaks in. */
function postgresEnv(): NodeJS.ProcessEnv {
  return { PATH: SYSTEM_PATH, LANG: 'C', LC_ALL: 'C' };
}

/** Debian keeps the server binaries in /usr/lib/postgresql/<major>/bin; take the newest. */
async function findPostgresBinDir(): Promise<string> {
  const root = '/usr/lib/postgresql';
  const versions = (await readdir(root).catch(() => [] as string[]))
    .filter((name) => /^\d+(\.\d+)?$/.test(name))
    .sort((a, b) => Number(b) - Number(a));
  for (const version of versions) {
    const binDir = join(root, version, 'bin');
    const usable = await access(join(binDir, 'pg_ctl'), constants.X_OK).then(
      () => true,
      () => false,
    );
    if (usable) return binDir;
  }
  throw new Error(`no PostgreSQL server binaries found under ${root}/<version>/bin`);
}
