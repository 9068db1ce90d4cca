import { spawn, type ChildProcess } from 'node:child_process';
import path from 'node:path';

/** Compiled scripts under bench/dist/processes, run with plain node. */
export const PROCESSES_DIR = path.join(__dirname, 'processes');

const live = new Set<ChildProcess>();

/** SIGKILLs every child still running: the harness never leaves a consumer or worker behind. */
export function killAllChildren(): void {
  for (const child of live) child.kill('SIGKILL');
}

type LineListener = (line: string) => void;

/** A helper process that talks in stdout lines; stderr is kept for error messages. */
export class Child {
  readonly exited: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
  private readonly child: ChildProcess;
  private readonly listeners = new Set<LineListener>();
  private readonly stderr: string[] = [];

  constructor(
    readonly label: string,
    script: string,
    args: string[],
    env: Record<string, string> = {},
  ) {
    this.child = spawn(process.execPath, [path.join(PROCESSES_DIR, script), ...args], {
      env: { ...process.env, ...env },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    live.add(this.child);
    this.exited = new Promise((resolve) =>
      this.child.once('exit', (code, signal) => {
        live.delete(this.child);
        resolve({ code, signal });
      }),
    );
    let partial = '';
    this.child.stdout?.on('data', (chunk: Buffer) => {
      partial += chunk.toString('utf8');
      const lines = partial.split('\n');
      partial = lines.pop() ?? '';
      for (const line of lines) for (const listener of this.listeners) listener(line);
    });
    let errPartial = '';
    this.child.stderr?.on('data', (chunk: Buffer) => {
      errPartial += chunk.toString('utf8');
      const lines = errPartial.split('\n');
      errPartial = lines.pop() ?? '';
      this.stderr.push(...lines);
      if (this.stderr.length > 50) this.stderr.splice(0, this.stderr.length - 50);
    });
  }

  get running(): boolean {
    return this.child.exitCode === null && this.child.signalCode === null;
  }

  /** Calls `listener` for every stdout line from now on; returns a function that stops it. */
  onLine(listener: LineListener): () => void {
    this.listeners.add(listener);
    return () => this.listeners.delete(listener);
  }

  /** Resolves with the first stdout line `match` accepts; rejects on timeout or exit. */
  waitForLine(match: (line: string) => boolean, timeoutMs: number, what: string): Promise<string> {
    return new Promise((resolve, reject) => {
      const done = () => {
        clearTimeout(timer);
        stop();
      };
      const timer = setTimeout(() => {
        done();
        reject(new Error(`${this.label}: no ${what} within ${timeoutMs} ms${this.stderrTail()}`));
      }, timeoutMs);
      const stop = this.onLine((line) => {
        if (!match(line)) return;
        done();
        resolve(line);
      });
      void this.exited.then(({ code, signal }) => {
        done();
        reject(new Error(`${this.label} exited (${signal ?? code}) before ${what}${this.stderrTail()}`));
      });
    });
  }

  signal(signal: NodeJS.Signals): void {
    this.child.kill(signal);
  }

  async kill(): Promise<void> {
    if (this.running) this.child.kill('SIGKILL');
    await this.exited;
  }

  private stderrTail(): string {
    return this.stderr.length > 0 ? `; its stderr:\n${this.stderr.slice(-20).join('\n')}` : '';
  }
}

/** Rejects after `ms` with a message naming what was awaited. */
export function withTimeout<T>(promise: Promise<T>, ms: number, what: string): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`timed out after ${ms} ms waiting for ${what}`)), ms);
  });
  return Promise.race([promise, timeout]).finally(() => clearTimeout(timer));
}
