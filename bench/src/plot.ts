/**
 * The failover timeline as a hand-written SVG: a process holding N jobs is killed with SIGKILL at
 * t = 0; each line is the share of the N running again elsewhere over time — Vigil, the bare-amqplib
 * floor and BullMQ — on a logarithmic time axis (Vigil takes a fraction of a second, BullMQ's
 * defaults about a minute). main.ts writes it as latest.svg; run as a script it re-renders a report:
 *
 *   node bench/dist/plot.js bench/results/latest.json [out.svg]   (default: the report's name, .svg)
 */
import { readFile, writeFile } from 'node:fs/promises';
import path from 'node:path';
import type { Report } from './report';
import { median, type TimelinePoint } from './scenario';

export interface SeriesSpec {
  /** The scenario whose runs hold the timeline. */
  scenario: string;
  /** The timeline's name in `runs[i].timelines`. */
  timeline: string;
  label: string;
  /** The size flag that says how many jobs the timeline counts up to. */
  sizeFlag: string;
  colour: string;
  dash?: string;
}

/** What is drawn, in legend order; a scenario missing from the report is left out. */
export const PLOT_SERIES: readonly SeriesSpec[] = [
  {
    scenario: 'failover-kill',
    timeline: 'observers running on the survivor',
    label: 'Vigil, kill -9',
    sizeFlag: 'failover-n',
    colour: '#0072b2',
  },
  {
    scenario: 'floor',
    timeline: 'messages held by the second consumer',
    label: 'Floor: bare amqplib requeue',
    sizeFlag: 'floor-n',
    colour: '#666666',
    dash: '6 4',
  },
  {
    scenario: 'bullmq-tuned',
    timeline: 'jobs running on worker 2',
    label: 'BullMQ, tuned locks',
    sizeFlag: 'bullmq-n',
    colour: '#e69f00',
  },
  {
    scenario: 'bullmq-defaults',
    timeline: 'jobs running on worker 2',
    label: 'BullMQ, defaults',
    sizeFlag: 'bullmq-n',
    colour: '#cc3311',
  },
];

/** Most points drawn per series; longer timelines are thinned (see `thinSteps`). */
export const MAX_POINTS = 300;

export interface PlotSeries {
  spec: SeriesSpec;
  /** The run drawn: the one whose final time is the median (the lower one of an even count). */
  run: number;
  /** Runs of the scenario, and how many of them left a timeline. */
  runs: number;
  measured: number;
  /** Median over the measured runs of the time until all N ran again. */
  medianMs: number;
  /** Jobs the count goes up to (100 %). */
  n: number;
  /** The drawn run's timeline, sorted by time. */
  points: TimelinePoint[];
}

/** For every scenario of PLOT_SERIES in the report that has a timeline, the run to draw. */
export function plotSeries(report: Report): PlotSeries[] {
  const series: PlotSeries[] = [];
  for (const spec of PLOT_SERIES) {
    const scenario = report.scenarios.find((s) => s.name === spec.scenario);
    if (!scenario) continue;
    const measured = scenario.runs
      .filter((run) => !run.error)
      .map((run) => ({
        run: run.run,
        points: (run.timelines[spec.timeline] ?? [])
          .filter(([t, v]) => Number.isFinite(t) && Number.isFinite(v))
          .sort((a, b) => a[0] - b[0]),
      }))
      .filter((r) => r.points.length > 0)
      .map((r) => ({ ...r, final: r.points[r.points.length - 1]![0] }))
      .sort((a, b) => a.final - b.final);
    const shown = measured[Math.floor((measured.length - 1) / 2)];
    if (!shown) continue;
    const most = Math.max(...shown.points.map(([, v]) => v));
    series.push({
      spec,
      run: shown.run,
      runs: scenario.runs.length,
      measured: measured.length,
      medianMs: median(measured.map((r) => r.final)),
      n: scenario.params[spec.sizeFlag] ?? most,
      points: shown.points,
    });
  }
  return series;
}

/**
 * At most `maxPoints` of a step series, keeping its shape: the points are binned by their drawn x
 * (`position`), and each bin keeps its first and its last point, so a step moves by less than a bin.
 * The first and the last point are always kept.
 */
export function thinSteps(
  points: readonly TimelinePoint[],
  maxPoints: number,
  position: (t: number) => number,
): TimelinePoint[] {
  if (points.length <= maxPoints) return [...points];
  const bins = Math.max(1, Math.floor(maxPoints / 2));
  const from = position(points[0]![0]);
  const span = position(points[points.length - 1]![0]) - from || 1;
  const kept: TimelinePoint[] = [];
  let bin = -1;
  let lastInBin: TimelinePoint | undefined;
  for (const point of points) {
    const b = Math.min(bins - 1, Math.floor(((position(point[0]) - from) / span) * bins));
    if (b !== bin) {
      if (lastInBin && lastInBin !== kept[kept.length - 1]) kept.push(lastInBin);
      kept.push(point);
      bin = b;
    }
    lastInBin = point;
  }
  if (lastInBin && lastInBin !== kept[kept.length - 1]) kept.push(lastInBin);
  return kept;
}

/** "4.2 ms", "121 ms", "2.1 s", "60 s". */
export function formatMs(ms: number): string {
  if (!Number.isFinite(ms)) return '—';
  if (ms < 10) return `${ms.toFixed(1)} ms`;
  if (ms < 1000) return `${Math.round(ms)} ms`;
  if (ms < 10_000) return `${(ms / 1000).toFixed(1)} s`;
  return `${Math.round(ms / 1000)} s`;
}

const escape = (text: string) =>
  text.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;').replace(/"/g, '&quot;');

const n1 = (value: number) => (Math.round(value * 10) / 10).toString();

const WIDTH = 800;
const HEIGHT = 420;
const LEFT = 64;
const RIGHT = 780;
const TOP = 64;
const BOTTOM = 286;
const MIN_MS = 1;
const FONT = 'system-ui, -apple-system, "Segoe UI", Helvetica, Arial, sans-serif';

function decadeLabel(ms: number): string {
  return ms < 1000 ? `${ms} ms` : `${ms / 1000} s`;
}

/** The failover timeline of a report as a standalone SVG document (800 × 420). */
export function renderPlot(report: Report): string {
  const series = plotSeries(report);
  const latest = Math.max(0, ...series.map((s) => s.points[s.points.length - 1]![0]));
  const maxMs = 10 ** Math.max(5, Math.ceil(Math.log10(Math.max(latest, MIN_MS))));
  const decades = Math.log10(maxMs / MIN_MS);
  const x = (ms: number) =>
    LEFT + (Math.log10(Math.min(Math.max(ms, MIN_MS), maxMs) / MIN_MS) / decades) * (RIGHT - LEFT);
  const y = (fraction: number) => BOTTOM - Math.min(Math.max(fraction, 0), 1) * (BOTTOM - TOP);

  const out: string[] = [];
  const text = (at: [number, number], content: string, attributes: Record<string, string | number> = {}): string =>
    `<text x="${n1(at[0])}" y="${n1(at[1])}"${Object.entries(attributes)
      .map(([k, v]) => ` ${k}="${escape(String(v))}"`)
      .join('')}>${escape(content)}</text>`;
  const line = (x1: number, y1: number, x2: number, y2: number, style: string) =>
    `<line x1="${n1(x1)}" y1="${n1(y1)}" x2="${n1(x2)}" y2="${n1(y2)}" ${style}/>`;

  const title = 'Failover timeline: observers running over time, Vigil vs BullMQ';
  out.push(
    `<svg xmlns="http://www.w3.org/2000/svg" width="${WIDTH}" height="${HEIGHT}" viewBox="0 0 ${WIDTH} ${HEIGHT}" ` +
      `font-family="${escape(FONT)}" role="img" aria-labelledby="plot-title">`,
    `<title id="plot-title">${escape(title)}</title>`,
    `<rect width="${WIDTH}" height="${HEIGHT}" fill="#ffffff"/>`,
    text([LEFT, 26], title, { 'font-size': 16, 'font-weight': 600, fill: '#111111' }),
    text(
      [LEFT, 44],
      'kill -9 at t = 0; the share of its N jobs running again elsewhere, in the median run; ● all N running',
      { 'font-size': 11, fill: '#555555' },
    ),
  );

  // Grid: decades and their 2…9 multiples; every 25 %.
  out.push('<g stroke-width="1">');
  for (let decade = MIN_MS; decade < maxMs; decade *= 10)
    for (let k = 2; k <= 9; k += 1) out.push(line(x(decade * k), TOP, x(decade * k), BOTTOM, 'stroke="#f0f0f0"'));
  for (let decade = MIN_MS; decade <= maxMs; decade *= 10)
    out.push(line(x(decade), TOP, x(decade), BOTTOM, 'stroke="#dddddd"'));
  for (const fraction of [0.25, 0.5, 0.75, 1])
    out.push(line(LEFT, y(fraction), RIGHT, y(fraction), 'stroke="#dddddd"'));
  out.push('</g>');

  // Axes, ticks and their labels.
  out.push(line(LEFT, BOTTOM, RIGHT, BOTTOM, 'stroke="#333333"'), line(LEFT, TOP, LEFT, BOTTOM, 'stroke="#333333"'));
  for (let decade = MIN_MS; decade <= maxMs; decade *= 10) {
    out.push(
      line(x(decade), BOTTOM, x(decade), BOTTOM + 5, 'stroke="#333333"'),
      text([x(decade), BOTTOM + 19], decadeLabel(decade), {
        'font-size': 11,
        'text-anchor': 'middle',
        fill: '#333333',
      }),
    );
  }
  for (const fraction of [0, 0.25, 0.5, 0.75, 1]) {
    out.push(
      line(LEFT - 5, y(fraction), LEFT, y(fraction), 'stroke="#333333"'),
      text([LEFT - 8, y(fraction) + 4], `${fraction * 100}%`, {
        'font-size': 11,
        'text-anchor': 'end',
        fill: '#333333',
      }),
    );
  }
  out.push(
    text([(LEFT + RIGHT) / 2, BOTTOM + 36], 'time since the kill (log scale)', {
      'font-size': 12,
      'text-anchor': 'middle',
      fill: '#333333',
    }),
    text([0, 0], 'jobs running again', {
      'font-size': 12,
      'text-anchor': 'middle',
      fill: '#333333',
      transform: `translate(18 ${n1((TOP + BOTTOM) / 2)}) rotate(-90)`,
    }),
  );

  if (series.some((s) => s.spec.scenario === 'failover-kill')) {
    out.push(
      line(x(1000), TOP, x(1000), BOTTOM, 'stroke="#0072b2" stroke-opacity="0.5" stroke-dasharray="2 3"'),
      text([x(1000), TOP - 5], 'Vigil target ≤ 1 s', { 'font-size': 10, 'text-anchor': 'middle', fill: '#0072b2' }),
    );
  }

  if (series.length === 0) {
    out.push(
      text(
        [(LEFT + RIGHT) / 2, (TOP + BOTTOM) / 2],
        `no data: the report has no timeline of ${PLOT_SERIES.map((s) => s.scenario).join(', ')}`,
        { 'font-size': 13, 'text-anchor': 'middle', fill: '#888888' },
      ),
    );
  }

  // The series: step lines, each ending in a dot when all N run.
  out.push(
    `<clipPath id="plot-area"><rect x="${LEFT}" y="${TOP - 4}" width="${RIGHT - LEFT + 4}" height="${BOTTOM - TOP + 8}"/></clipPath>`,
    '<g clip-path="url(#plot-area)" fill="none" stroke-width="2" stroke-linejoin="round">',
  );
  for (const s of series) {
    const points = thinSteps(s.points, MAX_POINTS, x);
    const n = s.n > 0 ? s.n : 1;
    // From the first rise: flat 0 % lines from the left edge would lie on top of each other and the axis.
    const rising = points.filter(([, v]) => v > 0);
    let d = `M${n1(x(rising[0]?.[0] ?? points[0]![0]))} ${n1(y(0))}`;
    for (const [t, v] of rising) d += ` H${n1(x(t))} V${n1(y(v / n))}`;
    const [lastT, lastV] = points[points.length - 1]!;
    out.push(
      `<path class="series" data-scenario="${escape(s.spec.scenario)}" d="${d}" stroke="${s.spec.colour}"` +
        `${s.spec.dash ? ` stroke-dasharray="${s.spec.dash}"` : ''}/>`,
      `<circle cx="${n1(x(lastT))}" cy="${n1(y(lastV / n))}" r="4" fill="${s.spec.colour}" stroke="#ffffff" stroke-width="1"/>`,
    );
  }
  out.push('</g>');

  // Legend below the plot, two columns.
  series.forEach((s, i) => {
    const left = i % 2 === 0 ? LEFT : 430;
    const top = BOTTOM + 60 + Math.floor(i / 2) * 34;
    const runs =
      s.measured > 1
        ? `median of ${s.measured} runs, run ${s.run} drawn`
        : `run ${s.run}${s.runs > 1 ? ` (the only one of ${s.runs} with a timeline)` : ''}`;
    out.push(
      line(
        left,
        top - 4,
        left + 24,
        top - 4,
        `stroke="${s.spec.colour}" stroke-width="2"${s.spec.dash ? ` stroke-dasharray="${s.spec.dash}"` : ''}`,
      ),
      `<circle cx="${left + 24}" cy="${top - 4}" r="3.5" fill="${s.spec.colour}"/>`,
      text([left + 34, top], `${s.spec.label}: all ${s.n.toLocaleString('en-US')} in ${formatMs(s.medianMs)}`, {
        'font-size': 12,
        'font-weight': 600,
        fill: '#111111',
      }),
      text([left + 34, top + 13], `${s.spec.timeline}; ${runs}`, { 'font-size': 10, fill: '#666666' }),
    );
  });

  const m = report.machine;
  out.push(
    text(
      [LEFT, HEIGHT - 8],
      `${m.cores} cores (${m.cpu}) · ${m.rabbitmq} · ${m.redis} · Node ${m.node} · commit ${m.commit} · ` +
        `${report.startedAt.slice(0, 16).replace('T', ' ')} UTC${report.args.quick ? ' · --quick' : ''}`,
      { 'font-size': 10, fill: '#888888' },
    ),
    '</svg>',
  );
  return `${out.join('\n')}\n`;
}

async function cli(argv: string[]): Promise<number> {
  const [input, output, ...rest] = argv;
  if (!input || input.startsWith('-') || rest.length > 0) {
    process.stderr.write(
      'usage: node bench/dist/plot.js <report.json> [out.svg]\n' +
        '  re-renders the failover timeline of a benchmark report (default out: the report with .svg)\n',
    );
    return input === '--help' || input === '-h' ? 0 : 2;
  }
  const report = JSON.parse(await readFile(input, 'utf8')) as Report;
  if (!Array.isArray(report.scenarios) || typeof report.machine !== 'object') {
    throw new Error(`${input} is not a benchmark report (no scenarios or machine)`);
  }
  const target = output ?? path.join(path.dirname(input), `${path.basename(input, path.extname(input))}.svg`);
  await writeFile(target, renderPlot(report));
  process.stderr.write(`wrote ${target}\n`);
  return 0;
}

if (require.main === module) {
  cli(process.argv.slice(2)).then(
    (code) => process.exit(code),
    (error: unknown) => {
      process.stderr.write(`${error instanceof Error ? error.message : String(error)}\n`);
      process.exit(1);
    },
  );
}
