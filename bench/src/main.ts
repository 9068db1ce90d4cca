/**
 * Vigil's benchmark harness: `npm run bench -- [--quick] [--only a,b] [--runs n] [--out dir] [--<size-flag> n]`.
 * Runs every selected scenario `--runs` times (run 1 of all, then run 2 of all, …, so a scenario can
 * read what the scenarios it `needs` measured in the same run), then writes latest.json, latest.md,
 * latest.svg (the failover timeline, see plot.ts) and a chart per curve scenario run (<name>.svg).
 */
import { randomBytes } from 'node:crypto';
import { mkdir, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { performance } from 'node:perf_hooks';
import { killAllChildren } from './child';
import { describeMachine } from './machine';
import { CURVE_CHARTS, renderCurve, renderPlot } from './plot';
import type { FigureResult, Report, RunRecord, ScenarioResult } from './report';
import { figuresOf, max, median, min, type BenchEnv, type Param, type Scenario } from './scenario';
import { scenarios as allScenarios } from './scenarios';

interface Args {
  only: string[] | undefined;
  quick: boolean;
  runs: number;
  out: string;
  params: Record<string, number>;
}

export type { Report } from './report';

const DEFAULT_OUT = path.resolve(__dirname, '..', 'results');

function allParams(): Param[] {
  const byFlag = new Map<string, Param>();
  for (const scenario of allScenarios) for (const param of scenario.params ?? []) byFlag.set(param.flag, param);
  return [...byFlag.values()];
}

function usage(): string {
  const params = allParams();
  const flagWidth = Math.max(...params.map((p) => p.flag.length)) + 8;
  const nameWidth = Math.max(...allScenarios.map((s) => s.name.length)) + 1;
  const lines = [
    'usage: node bench/dist/main.js [--quick] [--only <scenario>[,<scenario>]] [--runs <n>] [--out <dir>] [--<size-flag> <n>]',
    '',
    '  --quick        small sizes and only the fast scenarios (a minute or two)',
    '  --only a,b     these scenarios (a name, or a prefix before "-": "bullmq" = bullmq-*); needs are added',
    '  --runs n       runs per scenario, default 3; each figure is the median of the runs',
    `  --out dir      where latest.json, latest.md, latest.svg and the curves' <scenario>.svg go, default ${path.relative(process.cwd(), DEFAULT_OUT) || '.'}`,
    '',
    'size flags:',
    ...params.map(
      (p) => `  --${p.flag} n`.padEnd(flagWidth) + `${p.description} (default ${p.default}, quick ${p.quick})`,
    ),
    '',
    'scenarios:',
    ...allScenarios.map(
      (s) =>
        `  ${s.name.padEnd(nameWidth)} ${s.title}${s.quick === false ? ' (not in --quick)' : ''}${s.needs ? ` needs ${s.needs.join(', ')}` : ''}`,
    ),
  ];
  return lines.join('\n');
}

class UsageError extends Error {}

function parseArgs(argv: string[]): Args {
  const params = allParams();
  const given: Record<string, number> = {};
  let only: string[] | undefined;
  let quick = false;
  let runs = 3;
  let out = DEFAULT_OUT;
  const positiveInt = (flag: string, value: string | undefined) => {
    const n = Number(value);
    if (value === undefined || !Number.isInteger(n) || n < 1) throw new UsageError(`${flag} needs a positive integer`);
    return n;
  };
  for (let i = 0; i < argv.length; i += 1) {
    const arg = argv[i]!;
    const [flag, inline] = arg.startsWith('--') && arg.includes('=') ? arg.split('=', 2) : [arg, undefined];
    const value = () => inline ?? argv[++i];
    switch (flag) {
      case '--quick':
        quick = true;
        break;
      case '--only':
        only = (value() ?? '')
          .split(',')
          .map((s) => s.trim())
          .filter(Boolean);
        if (only.length === 0) throw new UsageError('--only needs scenario names');
        break;
      case '--runs':
        runs = positiveInt('--runs', value());
        break;
      case '--out':
        out = path.resolve(value() ?? '');
        break;
      case '--help':
      case '-h':
        process.stdout.write(`${usage()}\n`);
        process.exit(0);
        break;
      default: {
        const param = params.find((p) => `--${p.flag}` === flag);
        if (!param) throw new UsageError(`unknown argument ${arg}`);
        given[param.flag] = positiveInt(flag, value());
      }
    }
  }
  const values: Record<string, number> = {};
  for (const param of params) values[param.flag] = given[param.flag] ?? (quick ? param.quick : param.default);
  return { only, quick, runs, out, params: values };
}

/** The selected scenarios plus what they need, dependencies first, otherwise in list order. */
function select(args: Args): Scenario[] {
  const byName = new Map(allScenarios.map((s) => [s.name, s]));
  let chosen: Scenario[];
  if (args.only) {
    chosen = args.only.flatMap((name) => {
      const matches = byName.has(name)
        ? [byName.get(name)!]
        : allScenarios.filter((s) => s.name.startsWith(`${name}-`));
      if (matches.length === 0)
        throw new UsageError(`unknown scenario "${name}"; known: ${[...byName.keys()].join(', ')}`);
      return matches;
    });
  } else {
    chosen = allScenarios.filter((s) => !args.quick || s.quick !== false);
  }
  const ordered: Scenario[] = [];
  const visiting = new Set<string>();
  const visit = (scenario: Scenario) => {
    if (ordered.includes(scenario)) return;
    if (visiting.has(scenario.name)) throw new UsageError(`scenario ${scenario.name} needs itself`);
    visiting.add(scenario.name);
    for (const need of scenario.needs ?? []) {
      const dependency = byName.get(need);
      if (!dependency) throw new UsageError(`scenario ${scenario.name} needs unknown scenario ${need}`);
      visit(dependency);
    }
    ordered.push(scenario);
  };
  for (const scenario of allScenarios) if (chosen.includes(scenario)) visit(scenario);
  return ordered;
}

const log = (message: string) => process.stderr.write(`[bench ${new Date().toISOString().slice(11, 19)}] ${message}\n`);

function formatValue(value: number | null, unit: string): string {
  if (value === null || !Number.isFinite(value)) return '—';
  if (unit === 'ratio') return value.toFixed(2);
  if (Math.abs(value) >= 100) return String(Math.round(value));
  return value.toFixed(1);
}

function summarize(scenario: Scenario, runs: RunRecord[], params: Record<string, number>): ScenarioResult {
  const figures = figuresOf(scenario, params).map((figure): FigureResult => {
    const values = runs.map((r) => r.values[figure.name]).filter((v): v is number => v !== undefined);
    const m = values.length > 0 ? median(values) : null;
    const met =
      m === null || !figure.target
        ? null
        : figure.target.op === '<='
          ? m <= figure.target.value
          : m >= figure.target.value;
    return {
      ...figure,
      runs: values,
      median: m,
      min: values.length > 0 ? min(values) : null,
      max: values.length > 0 ? max(values) : null,
      met,
    };
  });
  return {
    name: scenario.name,
    title: scenario.title,
    ...(scenario.description ? { description: scenario.description } : {}),
    needs: scenario.needs ?? [],
    params: Object.fromEntries((scenario.params ?? []).map((p) => [p.flag, params[p.flag]!])),
    figures,
    runs,
  };
}

/** The curve charts of the scenarios in the report. */
function curvesIn(report: Report) {
  return CURVE_CHARTS.filter((chart) => report.scenarios.some((s) => s.name === chart.scenario));
}

function markdown(report: Report): string {
  const { machine: m } = report;
  const gib = (m.memoryBytes / 1024 ** 3).toFixed(1);
  const lines = [
    '# Vigil benchmark',
    '',
    `${report.startedAt.slice(0, 16).replace('T', ' ')} UTC, commit ${m.commit}` +
      `${report.args.quick ? ', **--quick**' : ''}; each figure is the median of its runs.`,
    '',
    `Machine: ${m.cores} cores (${m.cpu}), ${gib} GiB, ${m.os}; Node ${m.node}; ${m.rabbitmq}; ${m.postgres}; ${m.redis}.`,
    '',
    `Sizes: ${[...new Set(report.scenarios.flatMap((s) => Object.entries(s.params).map(([f, n]) => `--${f} ${n}`)))].join(', ') || 'none'}.`,
    '',
    '| scenario | figure | median | min | max | runs | target | met? |',
    '| --- | --- | ---: | ---: | ---: | ---: | --- | --- |',
  ];
  for (const scenario of report.scenarios) {
    for (const f of scenario.figures) {
      const failed = scenario.runs.filter((r) => r.error).length;
      lines.push(
        `| ${scenario.title} | ${f.name} | ${formatValue(f.median, f.unit)} | ${formatValue(f.min, f.unit)} | ` +
          `${formatValue(f.max, f.unit)} | ${f.runs.length}${failed > 0 ? ` (${failed} failed)` : ''} | ` +
          `${f.target?.text ?? '—'} | ${f.met === null ? '—' : f.met ? 'yes' : '**no**'} |`,
      );
    }
  }
  lines.push('', '![failover timeline](latest.svg)');
  for (const chart of curvesIn(report)) lines.push('', `![${chart.title}](${chart.scenario}.svg)`);
  lines.push('', '## How', '');
  for (const scenario of report.scenarios) {
    lines.push(`- **${scenario.title}** (\`${scenario.name}\`): ${scenario.description ?? ''}`);
    for (const run of scenario.runs)
      if (run.error) lines.push(`  - run ${run.run} failed: ${run.error.split('\n')[0]}`);
  }
  return `${lines.join('\n')}\n`;
}

async function main(): Promise<number> {
  const args = parseArgs(process.argv.slice(2));
  const selected = select(args);
  const env: BenchEnv = {
    amqpUrl: process.env.AMQP_URL ?? 'amqp://guest:guest@127.0.0.1:5672',
    redisUrl: process.env.REDIS_URL ?? 'redis://127.0.0.1:6379',
    databaseUrl: process.env.DATABASE_URL ?? 'postgres://postgres@127.0.0.1:5432/postgres',
  };
  const startedAt = new Date().toISOString();
  log(`scenarios: ${selected.map((s) => s.name).join(', ')}; ${args.runs} runs each${args.quick ? ' (quick)' : ''}`);
  if (args.runs < 3) log(`warning: --runs ${args.runs}: figures are not medians of at least 3 runs`);
  const machine = await describeMachine(env);
  log(
    `machine: ${machine.cores} cores, ${(machine.memoryBytes / 1024 ** 3).toFixed(1)} GiB, Node ${machine.node}, ` +
      `${machine.rabbitmq}, ${machine.postgres}, ${machine.redis}`,
  );

  const records = new Map<string, RunRecord[]>(selected.map((s) => [s.name, []]));
  const tag = randomBytes(3).toString('hex');
  for (let run = 1; run <= args.runs; run += 1) {
    for (const scenario of selected) {
      const prefix = `${scenario.name} run ${run}/${args.runs}`;
      const record: RunRecord = {
        run,
        startedAt: new Date().toISOString(),
        durationMs: 0,
        values: {},
        timelines: {},
        resources: [],
      };
      records.get(scenario.name)!.push(record);
      const needs: Record<string, Record<string, number>> = {};
      const missing = (scenario.needs ?? []).filter((need) => {
        const theirs = records.get(need)?.find((r) => r.run === run);
        if (!theirs || theirs.error) return true;
        needs[need] = theirs.values;
        return false;
      });
      if (missing.length > 0) {
        record.error = `skipped: ${missing.join(', ')} failed in this run`;
        log(`${prefix}: ${record.error}`);
        continue;
      }
      log(`${prefix}: starting`);
      const started = performance.now();
      let counter = 0;
      try {
        const values = await scenario.run({
          run,
          quick: args.quick,
          params: args.params,
          needs,
          env,
          progress: (message) => log(`${prefix}: ${message}`),
          timeline: (name, points) => {
            record.timelines[name] = points.map(([t, v]) => [t, v]);
          },
          resource: (kind, name) => {
            record.resources.push({ kind, name });
          },
          uniqueName: (label) => `vigil-bench.${label}.${process.pid}-${tag}-r${run}-${(counter += 1)}`,
        });
        const figures = figuresOf(scenario, args.params);
        for (const figure of figures) {
          const value = values[figure.name];
          if (typeof value !== 'number' || !Number.isFinite(value)) {
            throw new Error(`the run returned no number for "${figure.name}"`);
          }
          record.values[figure.name] = value;
        }
        log(
          `${prefix}: ${figures.map((f) => `${f.name} = ${formatValue(record.values[f.name] ?? null, f.unit)}`).join(', ')}`,
        );
      } catch (error) {
        record.values = {};
        record.error = error instanceof Error ? (error.stack ?? error.message) : String(error);
        log(`${prefix}: FAILED: ${record.error}`);
      } finally {
        record.durationMs = Math.round(performance.now() - started);
      }
    }
  }

  const report: Report = {
    startedAt,
    finishedAt: new Date().toISOString(),
    machine,
    args: {
      argv: process.argv.slice(2),
      quick: args.quick,
      only: args.only ?? null,
      runs: args.runs,
      params: args.params,
    },
    env,
    scenarios: selected.map((s) => summarize(s, records.get(s.name)!, args.params)),
  };
  await mkdir(args.out, { recursive: true });
  const md = markdown(report);
  await writeFile(path.join(args.out, 'latest.json'), `${JSON.stringify(report, null, 2)}\n`);
  await writeFile(path.join(args.out, 'latest.md'), md);
  const svg = path.join(args.out, 'latest.svg');
  await writeFile(svg, renderPlot(report));
  const curves = curvesIn(report);
  for (const chart of curves) await writeFile(path.join(args.out, `${chart.scenario}.svg`), renderCurve(report, chart));
  process.stdout.write(md);
  log(
    `wrote ${path.join(args.out, 'latest.json')}, latest.md${curves.map((c) => `, ${c.scenario}.svg`).join('')} and ${svg}`,
  );
  const failures = report.scenarios.flatMap((s) => s.runs.filter((r) => r.error)).length;
  if (failures > 0) log(`${failures} run(s) failed`);
  return failures > 0 ? 1 : 0;
}

process.on('exit', killAllChildren);
for (const signal of ['SIGINT', 'SIGTERM'] as const) {
  process.once(signal, () => {
    log(`${signal}: stopping (queues or Redis keys of the current run may be left behind)`);
    process.exit(130);
  });
}

main().then(
  (code) => process.exit(code),
  (error: unknown) => {
    if (error instanceof UsageError) {
      process.stderr.write(`${error.message}\n\n${usage()}\n`);
      process.exit(2);
    }
    process.stderr.write(`${error instanceof Error ? (error.stack ?? error.message) : String(error)}\n`);
    process.exit(1);
  },
);
