import { spawn, type ChildProcess } from 'node:child_process';
import path from 'node:path';

/** The repository: this file runs from libs/testkit/dist. */
export const ROOT = path.resolve(__dirname, '..', '..', '..');
export const MANAGER_MAIN = path.join(ROOT, 'apps/manager/dist/main.js');
export const SERVICE_MAIN = path.join(ROOT, 'apps/observer-service/dist/main.js');

/** A running app: its output is kept (JSON log lines) so tests can wait on what it logged. */
export class AppProcess {
  readonly lines: string[] = [];
  readonly exited: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
  private readonly child: ChildProcess;

  constructor(
    readonly label: string,
    main: string,
    env: Record<string, string>,
    /** Options for node itself, e.g. `--cpu-prof` (which NODE_OPTIONS refuses). */
    nodeArgs: readonly string[] = [],
  ) {
    this.child = spawn(process.execPath, [...nodeArgs, main], {
      cwd: ROOT,
      env: { PATH: process.env.PATH ?? '', ...env },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let partial = '';
    const collect = (chunk: Buffer) => {
      partial += chunk.toString('utf8');
      const parts = partial.split('\n');
      partial = parts.pop() ?? '';
      this.lines.push(...parts.filter((line) => line.length > 0));
    };
    this.child.stdout?.on('data', collect);
    this.child.stderr?.on('data', collect);
    this.exited = new Promise((resolve) => this.child.once('exit', (code, signal) => resolve({ code, signal })));
  }

  get pid(): number {
    if (this.child.pid === undefined) throw new Error(`${this.label} has no pid`);
    return this.child.pid;
  }

  get running(): boolean {
    return this.child.exitCode === null && this.child.signalCode === null;
  }

  signal(signal: NodeJS.Signals): void {
    this.child.kill(signal);
  }

  /** Parsed log lines whose `msg` contains `text`. */
  logged(text: string): Record<string, unknown>[] {
    return this.lines
      .map((line) => {
        try {
          return JSON.parse(line) as Record<string, unknown>;
        } catch {
          return { msg: line };
        }
      })
      .filter((entry) => typeof entry.msg === 'string' && entry.msg.includes(text));
  }

  tail(count = 30): string {
    return this.lines.slice(-count).join('\n');
  }

  async kill(): Promise<void> {
    if (this.running) this.child.kill('SIGKILL');
    await this.exited;
  }
}

/** Runs a Node script of this repository to its end, collecting what it printed. */
export function runScript(
  script: string,
  args: readonly string[],
): Promise<{ code: number | null; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    const child = spawn(process.execPath, [path.join(ROOT, script), ...args], {
      cwd: ROOT,
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let stdout = '';
    let stderr = '';
    child.stdout?.on('data', (chunk: Buffer) => (stdout += chunk.toString('utf8')));
    child.stderr?.on('data', (chunk: Buffer) => (stderr += chunk.toString('utf8')));
    child.once('exit', (code) => resolve({ code, stdout, stderr }));
  });
}
