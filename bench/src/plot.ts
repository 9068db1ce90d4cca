/**
 * The failover timeline as a hand-written SVG: a process holding N jobs is killed with SIGKILL at
 * t = 0; each line is the share of the N running again elsewhere over time — Vigil, the two
 * amqplib floors and BullMQ — on a logarithmic time axis (Vigil takes a fraction of a second,
 * BullMQ's defaults about a minute). main.ts writes it as latest.svg, and each curve scenario's
 * x/y chart (CURVE_CHARTS) as <scenario>.svg; run as a script it re-renders them from a report:
 *
 *   node bench/dist/plot.js bench/results/latest.json [out.svg]   (default: the report's name, .svg)
 *   node bench/dist/plot.js --chart failover-curve bench/results/latest.json [out.svg]
 *                                                                  (default: failover-curve.svg beside it)
 */
import { readFile, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { createCurveFigure, createCurveSizes, failoverCurveFigure, failoverCurveSizes } from './curves';
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
    scenario: 'floor-observed',
    timeline: 'observations published by the survivor',
    label: 'Floor: amqplib requeue, observed',
    sizeFlag: 'floor-n',
    colour: '#009e73',
    dash: '2 3',
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

function svgText(at: [number, number], content: string, attributes: Record<string, string | number> = {}): string {
  return `<text x="${n1(at[0])}" y="${n1(at[1])}"${Object.entries(attributes)
    .map(([k, v]) => ` ${k}="${escape(String(v))}"`)
    .join('')}>${escape(content)}</text>`;
}

function svgLine(x1: number, y1: number, x2: number, y2: number, style: string): string {
  return `<line x1="${n1(x1)}" y1="${n1(y1)}" x2="${n1(x2)}" y2="${n1(y2)}" ${style}/>`;
}

const WIDTH = 800;
const HEIGHT = 420;
const LEGEND_ROW = 34;
const LEFT = 64;
const RIGHT = 780;
const TOP = 64;
const BOTTOM = 286;
const MIN_MS = 1;
const FONT = 'system-ui, -apple-system, "Segoe UI", Helvetica, Arial, sans-serif';

function decadeLabel(ms: number): string {
  return ms < 1000 ? `${ms} ms` : `${ms / 1000} s`;
}

/** The failover timeline of a report as a standalone SVG document (800 wide, 420 high for up to 4 series). */
export function renderPlot(report: Report): string {
  const series = plotSeries(report);
  // The legend has two columns of 34 px rows; a third row makes room for itself.
  const height = HEIGHT + Math.max(0, Math.ceil(series.length / 2) - 2) * LEGEND_ROW;
  const latest = Math.max(0, ...series.map((s) => s.points[s.points.length - 1]![0]));
  const maxMs = 10 ** Math.max(5, Math.ceil(Math.log10(Math.max(latest, MIN_MS))));
  const decades = Math.log10(maxMs / MIN_MS);
  const x = (ms: number) =>
    LEFT + (Math.log10(Math.min(Math.max(ms, MIN_MS), maxMs) / MIN_MS) / decades) * (RIGHT - LEFT);
  const y = (fraction: number) => BOTTOM - Math.min(Math.max(fraction, 0), 1) * (BOTTOM - TOP);

  const out: string[] = [];

  const title = 'Failover timeline: observers running over time, Vigil vs BullMQ';
  out.push(
    `<svg xmlns="http://www.w3.org/2000/svg" width="${WIDTH}" height="${height}" viewBox="0 0 ${WIDTH} ${height}" ` +
      `font-family="${escape(FONT)}" role="img" aria-labelledby="plot-title">`,
    `<title id="plot-title">${escape(title)}</title>`,
    `<rect width="${WIDTH}" height="${height}" fill="#ffffff"/>`,
    svgText([LEFT, 26], title, { 'font-size': 16, 'font-weight': 600, fill: '#111111' }),
    svgText(
      [LEFT, 44],
      'kill -9 at t = 0; the share of its N jobs running again elsewhere, in the median run; ● all N running',
      { 'font-size': 11, fill: '#555555' },
    ),
  );

  // Grid: decades and their 2…9 multiples; every 25 %.
  out.push('<g stroke-width="1">');
  for (let decade = MIN_MS; decade < maxMs; decade *= 10)
    for (let k = 2; k <= 9; k += 1) out.push(svgLine(x(decade * k), TOP, x(decade * k), BOTTOM, 'stroke="#f0f0f0"'));
  for (let decade = MIN_MS; decade <= maxMs; decade *= 10)
    out.push(svgLine(x(decade), TOP, x(decade), BOTTOM, 'stroke="#dddddd"'));
  for (const fraction of [0.25, 0.5, 0.75, 1])
    out.push(svgLine(LEFT, y(fraction), RIGHT, y(fraction), 'stroke="#dddddd"'));
  out.push('</g>');

  // Axes, ticks and their labels.
  out.push(
    svgLine(LEFT, BOTTOM, RIGHT, BOTTOM, 'stroke="#333333"'),
    svgLine(LEFT, TOP, LEFT, BOTTOM, 'stroke="#333333"'),
  );
  for (let decade = MIN_MS; decade <= maxMs; decade *= 10) {
    out.push(
      svgLine(x(decade), BOTTOM, x(decade), BOTTOM + 5, 'stroke="#333333"'),
      svgText([x(decade), BOTTOM + 19], decadeLabel(decade), {
        'font-size': 11,
        'text-anchor': 'middle',
        fill: '#333333',
      }),
    );
  }
  for (const fraction of [0, 0.25, 0.5, 0.75, 1]) {
    out.push(
      svgLine(LEFT - 5, y(fraction), LEFT, y(fraction), 'stroke="#333333"'),
      svgText([LEFT - 8, y(fraction) + 4], `${fraction * 100}%`, {
        'font-size': 11,
        'text-anchor': 'end',
        fill: '#333333',
      }),
    );
  }
  out.push(
    svgText([(LEFT + RIGHT) / 2, BOTTOM + 36], 'time since the kill (log scale)', {
      'font-size': 12,
      'text-anchor': 'middle',
      fill: '#333333',
    }),
    svgText([0, 0], 'jobs running again', {
      'font-size': 12,
      'text-anchor': 'middle',
      fill: '#333333',
      transform: `translate(18 ${n1((TOP + BOTTOM) / 2)}) rotate(-90)`,
    }),
  );

  if (series.some((s) => s.spec.scenario === 'failover-kill')) {
    out.push(
      svgLine(x(1000), TOP, x(1000), BOTTOM, 'stroke="#0072b2" stroke-opacity="0.5" stroke-dasharray="2 3"'),
      svgText([x(1000), TOP - 5], 'Vigil target ≤ 1 s', { 'font-size': 10, 'text-anchor': 'middle', fill: '#0072b2' }),
    );
  }

  if (series.length === 0) {
    out.push(
      svgText(
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
    const top = BOTTOM + 60 + Math.floor(i / 2) * LEGEND_ROW;
    const runs =
      s.measured > 1
        ? `median of ${s.measured} runs, run ${s.run} drawn`
        : `run ${s.run}${s.runs > 1 ? ` (the only one of ${s.runs} with a timeline)` : ''}`;
    out.push(
      svgLine(
        left,
        top - 4,
        left + 24,
        top - 4,
        `stroke="${s.spec.colour}" stroke-width="2"${s.spec.dash ? ` stroke-dasharray="${s.spec.dash}"` : ''}`,
      ),
      `<circle cx="${left + 24}" cy="${top - 4}" r="3.5" fill="${s.spec.colour}"/>`,
      svgText([left + 34, top], `${s.spec.label}: all ${s.n.toLocaleString('en-US')} in ${formatMs(s.medianMs)}`, {
        'font-size': 12,
        'font-weight': 600,
        fill: '#111111',
      }),
      svgText([left + 34, top + 13], `${s.spec.timeline}; ${runs}`, { 'font-size': 10, fill: '#666666' }),
    );
  });

  out.push(footer(report, height), '</svg>');
  return `${out.join('\n')}\n`;
}

/** The machine, versions, commit and date of the report, in small grey type at `height` - 8. */
function footer(report: Report, height: number): string {
  const m = report.machine;
  return svgText(
    [LEFT, height - 8],
    `${m.cores} cores (${m.cpu}) · ${m.rabbitmq} · ${m.redis} · Node ${m.node} · commit ${m.commit} · ` +
      `${report.startedAt.slice(0, 16).replace('T', ' ')} UTC${report.args.quick ? ' · --quick' : ''}`,
    { 'font-size': 10, fill: '#888888' },
  );
}

/** One line of a curve chart: its y at each size, from the medians of the scenario's figures. */
export interface CurveLine {
  label: string;
  colour: string;
  dash?: string;
  /** y at size x; undefined (no median: every run failed) leaves the point out. */
  value: (median: (figure: string) => number | undefined, x: number) => number | undefined;
}

/** An x/y line chart of a curve scenario: a point per size, a line per measured series. */
export interface CurveChart {
  /** The scenario whose figures are drawn; also the chart's name for `--chart` and its file, `<name>.svg`. */
  scenario: string;
  title: string;
  subtitle: string;
  xLabel: string;
  yLabel: string;
  /** A log x axis for sizes that span decades (a 1-2-5 series); otherwise linear from 0. */
  xLog: boolean;
  /** The x of every point, from the scenario's size flags. */
  sizes: (params: Readonly<Record<string, number>>) => number[];
  lines: CurveLine[];
}

export const CURVE_CHARTS: readonly CurveChart[] = [
  {
    scenario: 'failover-curve',
    title: 'Failover cost per observer as N grows',
    subtitle: 'kill -9 of a service running N observers until all ran again elsewhere, divided by N',
    xLabel: 'observers on the killed service (log scale)',
    yLabel: 'µs per observer',
    xLog: true,
    sizes: failoverCurveSizes,
    lines: [
      {
        label: 'Vigil, kill -9',
        colour: '#0072b2',
        value: (median, n) => median(failoverCurveFigure.perObserver(n)),
      },
      {
        label: 'Observed floor: amqplib requeue, one observation per job',
        colour: '#009e73',
        dash: '2 3',
        value: (median, n) => {
          const ms = median(failoverCurveFigure.observedFloor(n));
          return ms === undefined ? undefined : (ms * 1000) / n;
        },
      },
    ],
  },
  {
    scenario: 'create-curve',
    title: 'Create throughput vs. observers already in the system',
    subtitle: 'the same batch of POSTs from concurrent clients, after the database holds this many observers',
    xLabel: 'observers already in the database',
    yLabel: 'creates per s',
    xLog: false,
    sizes: createCurveSizes,
    lines: [
      {
        label: 'Vigil, POST /observers',
        colour: '#0072b2',
        value: (median, existing) => median(createCurveFigure.perSecond(existing)),
      },
    ],
  },
];

/** The smallest 1, 2 or 5 × 10^k at least `raw`: a tick step that reads well. */
export function niceStep(raw: number): number {
  if (!(raw > 0)) return 1;
  const decade = 10 ** Math.floor(Math.log10(raw));
  return [1, 2, 5, 10].map((k) => k * decade).find((step) => step >= raw * (1 - 1e-9)) ?? 10 * decade;
}

/** "0", "7.5", "145", "12,400". */
function formatNumber(value: number): string {
  if (Math.abs(value) >= 100) return Math.round(value).toLocaleString('en-US');
  return String(Math.round(value * 10) / 10);
}

const CURVE_LEFT = 84;
const LEGEND_LINE = 20;

/** A curve scenario's chart as a standalone SVG document (800 wide), from the medians in the report. */
export function renderCurve(report: Report, chart: CurveChart): string {
  const scenario = report.scenarios.find((s) => s.name === chart.scenario);
  const medians = new Map((scenario?.figures ?? []).map((f) => [f.name, f.median]));
  const median = (figure: string) => {
    const value = medians.get(figure);
    return value === null || value === undefined || !Number.isFinite(value) ? undefined : value;
  };
  const sizes = scenario ? chart.sizes(scenario.params) : [];
  const lines = chart.lines
    .map((line) => ({
      line,
      points: sizes.flatMap((x): [number, number][] => {
        const y = line.value(median, x);
        return y === undefined ? [] : [[x, y]];
      }),
    }))
    .filter((l) => l.points.length > 0);
  const height = BOTTOM + 64 + Math.max(1, lines.length) * LEGEND_LINE + 16;

  const xs = lines.length > 0 ? sizes : [1, 10];
  let x: (value: number) => number;
  let xTicks: number[];
  if (chart.xLog) {
    // A margin on both sides, so that the first and the last point are not drawn on the frame.
    const lo = Math.max(Math.min(...xs), 1) / 1.4;
    const hi = Math.max(...xs, 1) * 1.4;
    x = (value) => CURVE_LEFT + (Math.log(Math.max(value, lo) / lo) / Math.log(hi / lo)) * (RIGHT - CURVE_LEFT);
    xTicks = xs;
  } else {
    const step = niceStep(Math.max(...xs, 1) / 5);
    const hi = Math.ceil(Math.max(...xs, 1) / step) * step;
    x = (value) => CURVE_LEFT + (value / hi) * (RIGHT - CURVE_LEFT);
    xTicks = Array.from({ length: Math.round(hi / step) + 1 }, (_, i) => i * step);
  }
  // Headroom for the value written above the highest point.
  const yMax = Math.max(0, ...lines.flatMap((l) => l.points.map(([, v]) => v))) * 1.15;
  const yStep = niceStep(yMax / 5);
  const yTop = Math.max(yStep, Math.ceil(yMax / yStep) * yStep);
  const y = (value: number) => BOTTOM - (Math.max(value, 0) / yTop) * (BOTTOM - TOP);
  const yTicks = Array.from({ length: Math.round(yTop / yStep) + 1 }, (_, i) => i * yStep);

  const runs = scenario?.runs.filter((r) => !r.error).length ?? 0;
  const out: string[] = [
    `<svg xmlns="http://www.w3.org/2000/svg" width="${WIDTH}" height="${height}" viewBox="0 0 ${WIDTH} ${height}" ` +
      `font-family="${escape(FONT)}" role="img" aria-labelledby="curve-title">`,
    `<title id="curve-title">${escape(chart.title)}</title>`,
    `<rect width="${WIDTH}" height="${height}" fill="#ffffff"/>`,
    svgText([CURVE_LEFT, 26], chart.title, { 'font-size': 16, 'font-weight': 600, fill: '#111111' }),
    svgText(
      [CURVE_LEFT, 44],
      `${chart.subtitle}; ${runs > 1 ? `medians of ${runs} runs` : `${runs} run${runs === 1 ? '' : 's'}`}`,
      { 'font-size': 11, fill: '#555555' },
    ),
    '<g stroke-width="1">',
    ...xTicks.map((t) => svgLine(x(t), TOP, x(t), BOTTOM, 'stroke="#eeeeee"')),
    ...yTicks.map((t) => svgLine(CURVE_LEFT, y(t), RIGHT, y(t), 'stroke="#dddddd"')),
    '</g>',
    svgLine(CURVE_LEFT, BOTTOM, RIGHT, BOTTOM, 'stroke="#333333"'),
    svgLine(CURVE_LEFT, TOP, CURVE_LEFT, BOTTOM, 'stroke="#333333"'),
  ];
  for (const t of xTicks)
    out.push(
      svgLine(x(t), BOTTOM, x(t), BOTTOM + 5, 'stroke="#333333"'),
      svgText([x(t), BOTTOM + 19], formatNumber(t), { 'font-size': 11, 'text-anchor': 'middle', fill: '#333333' }),
    );
  for (const t of yTicks)
    out.push(
      svgLine(CURVE_LEFT - 5, y(t), CURVE_LEFT, y(t), 'stroke="#333333"'),
      svgText([CURVE_LEFT - 8, y(t) + 4], formatNumber(t), { 'font-size': 11, 'text-anchor': 'end', fill: '#333333' }),
    );
  out.push(
    svgText([(CURVE_LEFT + RIGHT) / 2, BOTTOM + 36], chart.xLabel, {
      'font-size': 12,
      'text-anchor': 'middle',
      fill: '#333333',
    }),
    svgText([0, 0], chart.yLabel, {
      'font-size': 12,
      'text-anchor': 'middle',
      fill: '#333333',
      transform: `translate(18 ${n1((TOP + BOTTOM) / 2)}) rotate(-90)`,
    }),
  );

  if (lines.length === 0) {
    out.push(
      svgText(
        [(CURVE_LEFT + RIGHT) / 2, (TOP + BOTTOM) / 2],
        `no data: the report has no figures of ${chart.scenario}`,
        {
          'font-size': 13,
          'text-anchor': 'middle',
          fill: '#888888',
        },
      ),
    );
  }

  lines.forEach(({ line, points }, i) => {
    const d = points.map(([px, py], j) => `${j === 0 ? 'M' : 'L'}${n1(x(px))} ${n1(y(py))}`).join(' ');
    out.push(
      `<path class="series" data-line="${escape(line.label)}" d="${d}" fill="none" stroke="${line.colour}" ` +
        `stroke-width="2" stroke-linejoin="round"${line.dash ? ` stroke-dasharray="${line.dash}"` : ''}/>`,
    );
    for (const [px, py] of points)
      out.push(
        `<circle cx="${n1(x(px))}" cy="${n1(y(py))}" r="3.5" fill="${line.colour}"/>`,
        svgText([x(px), y(py) - 8], formatNumber(py), { 'font-size': 10, 'text-anchor': 'middle', fill: line.colour }),
      );
    const top = BOTTOM + 64 + i * LEGEND_LINE;
    out.push(
      svgLine(
        CURVE_LEFT,
        top - 4,
        CURVE_LEFT + 24,
        top - 4,
        `stroke="${line.colour}" stroke-width="2"${line.dash ? ` stroke-dasharray="${line.dash}"` : ''}`,
      ),
      svgText([CURVE_LEFT + 34, top], line.label, { 'font-size': 12, 'font-weight': 600, fill: '#111111' }),
    );
  });

  out.push(footer(report, height), '</svg>');
  return `${out.join('\n')}\n`;
}

async function cli(argv: string[]): Promise<number> {
  const chartName = argv[0] === '--chart' ? argv[1] : undefined;
  const [input, output, ...rest] = chartName === undefined ? argv : argv.slice(2);
  const chart = CURVE_CHARTS.find((c) => c.scenario === chartName);
  if (!input || input.startsWith('-') || rest.length > 0 || (chartName !== undefined && !chart)) {
    process.stderr.write(
      'usage: node bench/dist/plot.js [--chart <curve>] <report.json> [out.svg]\n' +
        '  re-renders the failover timeline of a benchmark report (default out: the report with .svg),\n' +
        `  or with --chart one of its curves (${CURVE_CHARTS.map((c) => c.scenario).join(', ')}; ` +
        'default out: <curve>.svg beside the report)\n',
    );
    return input === '--help' || input === '-h' || argv[0] === '--help' || argv[0] === '-h' ? 0 : 2;
  }
  const report = JSON.parse(await readFile(input, 'utf8')) as Report;
  if (!Array.isArray(report.scenarios) || typeof report.machine !== 'object') {
    throw new Error(`${input} is not a benchmark report (no scenarios or machine)`);
  }
  const target =
    output ??
    path.join(
      path.dirname(input),
      chart ? `${chart.scenario}.svg` : `${path.basename(input, path.extname(input))}.svg`,
    );
  await writeFile(target, chart ? renderCurve(report, chart) : renderPlot(report));
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
