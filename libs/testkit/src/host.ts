/**
 * Small process / port / file helpers shared by the private-service fixtures
 * (private-postgres.ts, private-rabbitmq.ts). They read /proc and the local network directly,
 * deliberately without dependencies, because they run as root next to the shared services and
 * must never act on a process or port the fixture cannot prove is its own.
 */
import { execFile, spawn } from 'node:child_process';
import { open, readFile, readdir } from 'node:fs/promises';
import { connect, createServer } from 'node:net';
import { setTimeout as delay } from 'node:timers/promises';
import { promisify } from 'node:util';

export const execFileAsync = promisify(execFile);

/** Servers get this instead of the runner's PATH, so nothing from the test environment leaks in. */
export const SYSTEM_PATH = '/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin';

export interface SystemUser {
  uid: number;
  gid: number;
}

/** Servers run as their packaged system user (Postgres refuses root): spawn with its uid/gid. */
export async function lookupUser(name: string): Promise<SystemUser> {
  const [{ stdout: uid }, { stdout: gid }] = await Promise.all([
    execFileAsync('id', ['-u', name]),
    execFileAsync('id', ['-g', name]),
  ]);
  return { uid: Number(uid.trim()), gid: Number(gid.trim()) };
}

/**
 * A random port below the kernel's ephemeral range (32768+): a server keeps its ports across
 * restarts, and an ephemeral port could be taken by some outgoing connection in between.
 * `avoid` keeps a second port from the same pick being handed out twice (it is still unbound).
 */
export async function pickFreePort(avoid: readonly number[] = []): Promise<number> {
  for (let attempt = 0; attempt < 200; attempt += 1) {
    const port = 20_000 + Math.floor(Math.random() * 12_000);
    if (!avoid.includes(port) && (await canBind(port))) return port;
  }
  throw new Error('could not find a free TCP port in 20000-32000');
}

/** Checked before every (re)start: a foreign listener would otherwise be mistaken for our server. */
export function canBind(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const server = createServer();
    server.once('error', () => resolve(false));
    server.listen({ port, host: '127.0.0.1', exclusive: true }, () => server.close(() => resolve(true)));
  });
}

/** "Up" and "down" are judged from the client's side: what the code under test would see. */
export function isPortOpen(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const socket = connect({ port, host: '127.0.0.1' });
    socket.setTimeout(1000);
    const done = (open: boolean) => {
      socket.destroy();
      resolve(open);
    };
    socket.once('connect', () => done(true));
    socket.once('timeout', () => done(false));
    socket.once('error', () => done(false));
  });
}

/**
 * Polls `condition` until true. Unlike wait.ts's `waitFor`, an error thrown by `condition` is not
 * retried but fails at once (a server that died during startup will not come back), and a
 * timeout carries `diagnostics()` (the server's log tail), which is what explains a hang.
 */
export async function pollUntil(
  what: string,
  timeoutMs: number,
  condition: () => Promise<boolean>,
  diagnostics: () => Promise<string>,
  intervalMs: number,
): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await condition())) {
    if (Date.now() > deadline)
      throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}\n${await diagnostics()}`);
    await delay(intervalMs);
  }
}

/** Every pid on the host; callers filter by what proves a process is theirs (cwd, environment). */
export async function listPids(): Promise<number[]> {
  return (await readdir('/proc')).filter((name) => /^\d+$/.test(name)).map(Number);
}

/** Zombies count as dead: PID 1 on this machine reaps orphans only after a long delay. */
export async function processState(pid: number): Promise<'alive' | 'dead'> {
  const stat = await readFile(`/proc/${pid}/stat`, 'utf8').catch(() => '');
  const state = stat.slice(stat.lastIndexOf(')') + 2, stat.lastIndexOf(')') + 3);
  return state === '' || state === 'Z' || state === 'X' ? 'dead' : 'alive';
}

/** A process may exit between being found and being signalled; that race is not an error. */
export function signal(pid: number, sig: NodeJS.Signals): void {
  try {
    process.kill(pid, sig);
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code !== 'ESRCH') throw error;
  }
}

/** For error messages: a missing log must not hide the error being reported. */
export async function tail(file: string, lines = 40): Promise<string> {
  const text = await readFile(file, 'utf8').catch((error: Error) => `(cannot read: ${error.message})`);
  return text.split('\n').slice(-lines).join('\n');
}

/**
 * Starts a server as `user`, its output appended to `logFile`, in its own process group (so
 * Ctrl-C of the test runner is not forwarded to it). `exitReason` is set if it exits or fails
 * to spawn: a server that dies during startup is noticed at once, not at the deadline.
 */
export async function spawnServer(
  command: string,
  args: readonly string[],
  options: { cwd: string; env: NodeJS.ProcessEnv; user: SystemUser; logFile: string },
): Promise<{ readonly exitReason: string | undefined }> {
  const state: { exitReason: string | undefined } = { exitReason: undefined };
  const log = await open(options.logFile, 'a');
  await log.chown(options.user.uid, options.user.gid);
  try {
    const child = spawn(command, args, {
      cwd: options.cwd,
      env: options.env,
      uid: options.user.uid,
      gid: options.user.gid,
      detached: true,
      stdio: ['ignore', log.fd, log.fd],
    });
    child.once('error', (error) => {
      state.exitReason ??= `spawn failed: ${error.message}`;
    });
    child.once('exit', (code, signal) => {
      state.exitReason ??= `exited with ${signal ?? `code ${code}`}`;
    });
    child.unref();
  } finally {
    await log.close();
  }
  return state;
}
