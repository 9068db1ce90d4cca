/**
 * Vigil's fault-injection suite: `npm run chaos -- [--cluster] [--seed n] [--faults k]
 * [--services n] [--observers n] [--kinds a,b] [--out dir]`. Starts a private world, injects `k`
 * faults drawn from the seed, checks the invariants of docs/design.md from outside after each,
 * and writes `<out>/<seed>.json`.
 * Exits 1 if an invariant did not hold again in time.
 */
import { mkdir, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { faultKinds, type FaultKind } from './faults';
import { runChaos, type ChaosOptions, type ChaosReport } from './run';
import { summarize, table } from './summary';
import { CLUSTER_SIZE } from './world';

const DEFAULT_OUT = path.resolve(__dirname, '..', 'results');

class UsageError extends Error {}

const USAGE = `usage: node chaos/dist/main.js [--cluster] [--seed n] [--faults k] [--services n] [--observers n] [--kinds a,b] [--out dir]

  --cluster       a cluster of ${CLUSTER_SIZE} private RabbitMQ nodes, jobs on quorum queues (default: one node)
  --seed n        the schedule's seed (default: random, printed); the same seed replays the same faults
  --faults k      faults to inject (default 20)
  --services n    observer services in the fleet (default 3)
  --observers n   observers the workload keeps alive, about (default 30)
  --kinds a,b     only these fault kinds (default all of the mode's;
                  one node: ${faultKinds(false).join(', ')};
                  cluster: ${faultKinds(true).join(', ')})
  --out dir       where <seed>.json goes (default ${path.relative(process.cwd(), DEFAULT_OUT) || '.'})`;

function parseArgs(argv: string[]): ChaosOptions & { out: string } {
  const options: ChaosOptions & { out: string } = {
    seed: Math.floor(Math.random() * 2 ** 31),
    cluster: false,
    faults: 20,
    services: 3,
    observers: 30,
    kinds: [],
    convergeTimeoutMs: 60_000,
    out: DEFAULT_OUT,
    log: (message) => process.stderr.write(`[chaos ${new Date().toISOString().slice(11, 19)}] ${message}\n`),
  };
  const count = (flag: string, value: string | undefined, min: number) => {
    const n = Number(value);
    if (value === undefined || !Number.isInteger(n) || n < min)
      throw new UsageError(`${flag} needs an integer ≥ ${min}`);
    return n;
  };
  let kinds: string[] | undefined;
  for (let i = 0; i < argv.length; i++) {
    const flag = argv[i]!;
    const value = () => argv[++i];
    switch (flag) {
      case '--cluster':
        options.cluster = true;
        break;
      case '--seed':
        options.seed = count(flag, value(), 0);
        break;
      case '--faults':
        options.faults = count(flag, value(), 0);
        break;
      case '--services':
        options.services = count(flag, value(), 2);
        break;
      case '--observers':
        options.observers = count(flag, value(), 1);
        break;
      case '--kinds':
        kinds = (value() ?? '').split(',').filter(Boolean);
        if (kinds.length === 0) throw new UsageError('--kinds needs at least one fault kind');
        break;
      case '--out':
        options.out = path.resolve(value() ?? '');
        break;
      case '--help':
      case '-h':
        process.stdout.write(`${USAGE}\n`);
        process.exit(0);
        break;
      default:
        throw new UsageError(`unknown argument ${flag}`);
    }
  }
  // Checked once the mode is known: whole-broker faults are for one node, node faults for a cluster.
  const allowed: readonly string[] = faultKinds(options.cluster);
  const unknown = (kinds ?? []).filter((k) => !allowed.includes(k));
  if (unknown.length > 0)
    throw new UsageError(
      `fault kinds not available ${options.cluster ? 'on a cluster' : 'on one node'}: ${unknown.join(', ')}`,
    );
  options.kinds = (kinds as FaultKind[] | undefined) ?? faultKinds(options.cluster);
  return options;
}

function printFailure(report: ChaosReport): void {
  const { failure } = report;
  if (!failure) return;
  process.stderr.write(`\nFAILED (seed ${report.seed}) after fault ${failure.fault}\n`);
  for (const v of failure.violations.slice(0, 10)) {
    process.stderr.write(
      `  ${v.rule}${v.name ? ` ${v.name}` : ''}${v.observerId ? ` (${v.observerId})` : ''}: ${v.detail}\n`,
    );
  }
  process.stderr.write(`\ntimeline of the first:\n${JSON.stringify(failure.timelines[0], null, 2)}\n`);
}

async function main(): Promise<number> {
  const options = parseArgs(process.argv.slice(2));
  options.log(
    `seed ${options.seed}${options.cluster ? ', cluster' : ''}, ${options.faults} faults, ${options.services} services, ~${options.observers} observers`,
  );
  let cleanup: (() => Promise<void>) | undefined;
  for (const signal of ['SIGINT', 'SIGTERM'] as const) {
    process.once(signal, () => {
      options.log(`${signal}: stopping the private world`);
      void (cleanup?.() ?? Promise.resolve()).finally(() => process.exit(130));
    });
  }
  const report = await runChaos({ ...options, onWorld: (chaos) => (cleanup = () => chaos.close()) });
  await mkdir(options.out, { recursive: true });
  const file = path.join(options.out, `${report.seed}.json`);
  await writeFile(file, `${JSON.stringify({ ...report, summary: summarize(report) }, null, 2)}\n`);
  process.stdout.write(`${table(report)}\n`);
  printFailure(report);
  options.log(`${report.passed ? 'passed' : 'FAILED'}; wrote ${file} (rerun: --seed ${report.seed})`);
  return report.passed ? 0 : 1;
}

main().then(
  (code) => process.exit(code),
  (error: unknown) => {
    if (error instanceof UsageError) {
      process.stderr.write(`${error.message}\n\n${USAGE}\n`);
      process.exit(2);
    }
    process.stderr.write(`${error instanceof Error ? (error.stack ?? error.message) : String(error)}\n`);
    process.exit(1);
  },
);
