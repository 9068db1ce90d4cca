/**
 * The benchmark's charts (bench/src/plot.ts) on synthetic reports. The failover timeline: the SVG
 * is well-formed XML, draws one path per scenario present (the run with the median final time),
 * names each in the legend, leaves out scenarios the report lacks, thins long timelines, and says
 * "no data" when there is nothing to draw. The curves: a point per size of the scenario's flags at
 * the median of its figure, on a log or linear axis. No broker needed.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { createCurveFigure, failoverCurveFigure } from '../bench/src/curves';
import { CURVE_CHARTS, MAX_POINTS, niceStep, renderCurve, renderPlot, thinSteps } from '../bench/src/plot';
import type { FigureResult, Report, RunRecord, ScenarioResult } from '../bench/src/report';
import { oneTwoFive, type TimelinePoint } from '../bench/src/scenario';

/**
 * Throws unless `xml` is one well-formed element: tags nest and close, attributes are quoted and
 * unique, and text holds no `<` and no `&` that does not start an entity.
 */
function assertWellFormed(xml: string): void {
  const token =
    /<!--[\s\S]*?-->|<\?[\s\S]*?\?>|<(\/?)([A-Za-z_][\w:.-]*)((?:\s+[A-Za-z_][\w:.-]*\s*=\s*"[^"<]*")*)\s*(\/?)>/g;
  const entity = /&(?:[A-Za-z]+|#\d+|#x[0-9a-fA-F]+);/g;
  const checkText = (text: string, where: string) => {
    const stripped = text.replace(entity, '');
    if (/[<&]/.test(stripped)) throw new Error(`stray < or & ${where}: ${JSON.stringify(text.slice(0, 80))}`);
  };
  const stack: string[] = [];
  let roots = 0;
  let at = 0;
  for (const match of xml.matchAll(token)) {
    const between = xml.slice(at, match.index);
    checkText(between, `before offset ${match.index}`);
    if (stack.length === 0 && between.trim() !== '') throw new Error(`text outside the root: ${between.trim()}`);
    at = match.index + match[0].length;
    const [, closing, name, attributes, selfClosing] = match;
    if (!name) continue; // a comment or a processing instruction
    if (closing) {
      if (attributes || selfClosing) throw new Error(`malformed closing tag ${match[0]}`);
      const open = stack.pop();
      if (open !== name) throw new Error(`</${name}> closes <${open ?? 'nothing'}>`);
      continue;
    }
    const names = [...(attributes ?? '').matchAll(/([A-Za-z_][\w:.-]*)\s*=\s*"([^"]*)"/g)].map(([, n, value]) => {
      checkText(value ?? '', `in attribute ${n} of <${name}>`);
      return n;
    });
    if (new Set(names).size !== names.length) throw new Error(`repeated attribute in <${name}>`);
    if (stack.length === 0) roots += 1;
    if (!selfClosing) stack.push(name);
  }
  const rest = xml.slice(at);
  if (rest.trim() !== '') throw new Error(`not a tag: ${JSON.stringify(rest.trim().slice(0, 80))}`);
  if (stack.length > 0) throw new Error(`unclosed <${stack.join('>, <')}>`);
  if (roots !== 1) throw new Error(`${roots} root elements`);
}

/** The `data-scenario` of every `<path>`, in document order; fails on a path without one. */
function paths(svg: string): string[] {
  return [...svg.matchAll(/<path\b[^>]*>/g)].map(([tag]) => {
    const scenario = /data-scenario="([^"]+)"/.exec(tag)?.[1];
    assert.ok(scenario, `a path without data-scenario: ${tag}`);
    return scenario;
  });
}

/** Points from 0 up to `n`, all there at `finalMs`. */
function rising(n: number, finalMs: number, firstMs = finalMs / 3): TimelinePoint[] {
  return Array.from({ length: n }, (_, i): TimelinePoint => [
    Math.round((firstMs + ((finalMs - firstMs) * i) / Math.max(1, n - 1)) * 10) / 10,
    i + 1,
  ]);
}

function run(number: number, timelines: Record<string, TimelinePoint[]>, error?: string): RunRecord {
  return {
    run: number,
    startedAt: '2025-01-01T00:00:00.000Z',
    durationMs: 1,
    values: {},
    timelines,
    resources: [],
    ...(error ? { error } : {}),
  };
}

function scenario(
  name: string,
  params: Record<string, number>,
  runs: RunRecord[],
  figures: FigureResult[] = [],
): ScenarioResult {
  return { name, title: name, needs: [], params, figures, runs };
}

/** A figure whose median is `median` (null: every run failed). */
function figure(name: string, median: number | null): FigureResult {
  const runs = median === null ? [] : [median];
  return { name, unit: 'ms', runs, median, min: median, max: median, met: null };
}

/** Each curve line's label and the points drawn on it, `[x, y]` in SVG coordinates. */
function curveLines(svg: string): Map<string, [number, number][]> {
  const lines = new Map<string, [number, number][]>();
  for (const [tag] of svg.matchAll(/<path\b[^>]*>/g)) {
    const label = /data-line="([^"]+)"/.exec(tag)?.[1];
    const d = /\bd="([^"]+)"/.exec(tag)?.[1];
    assert.ok(label && d, `a curve path without data-line or d: ${tag}`);
    lines.set(
      label,
      [...d.matchAll(/[ML]([\d.]+) ([\d.]+)/g)].map(([, x, y]): [number, number] => [Number(x), Number(y)]),
    );
  }
  return lines;
}

const curveChart = (name: string) => CURVE_CHARTS.find((c) => c.scenario === name)!;

function report(scenarios: ScenarioResult[]): Report {
  return {
    startedAt: '2025-01-01T12:34:56.000Z',
    finishedAt: '2025-01-01T12:40:00.000Z',
    machine: {
      host: 'test',
      os: 'Linux',
      cpu: 'Fake CPU <R&D> "9000"',
      cores: 8,
      memoryBytes: 2 ** 34,
      node: 'v20.0.0',
      rabbitmq: 'RabbitMQ 4.2.0',
      postgres: 'PostgreSQL 16',
      redis: 'Redis 7.2',
      commit: 'abc1234-dirty',
    },
    args: { argv: [], quick: false, only: null, runs: 3, params: {} },
    env: { amqpUrl: 'amqp://x', redisUrl: 'redis://x', databaseUrl: 'postgres://x' },
    scenarios,
  };
}

const SURVIVOR = 'observers running on the survivor';
const WORKER_2 = 'jobs running on worker 2';

describe('bench plot', () => {
  it('the well-formedness check itself rejects broken XML', () => {
    assertWellFormed('<svg a="1"><g><text>a &amp; b</text></g><line/></svg>');
    for (const broken of [
      '<svg><g></svg>',
      '<svg><text>a & b</text></svg>',
      '<svg><text>1 < 2</text></svg>',
      '<svg a="1" a="2"></svg>',
      '<svg></svg><svg></svg>',
      '<svg><line x=1/></svg>',
    ]) {
      assert.throws(() => assertWellFormed(broken), Error, broken);
    }
  });

  it('draws one path per scenario present, the median run of each, with the legend naming them', () => {
    const svg = renderPlot(
      report([
        scenario('floor', { 'floor-n': 1000 }, [run(1, { 'messages held by the second consumer': rising(1000, 45) })]),
        scenario('failover-kill', { 'failover-n': 1000 }, [
          run(1, { [SURVIVOR]: rising(1000, 100) }),
          run(2, { [SURVIVOR]: rising(1000, 300) }),
          run(3, { [SURVIVOR]: rising(1000, 200) }),
          run(4, {}, 'Error: the service never started'),
        ]),
        scenario('bullmq-tuned', { 'bullmq-n': 1000 }, [
          run(1, {}, 'Error: Redis went away'),
          run(2, { [WORKER_2]: [[0, 0], ...rising(1000, 2100, 2050)] }),
        ]),
        scenario('cancel', { 'cancel-n': 1000 }, [run(1, {})]),
      ]),
    );
    assertWellFormed(svg);
    assert.ok(svg.startsWith('<svg xmlns="http://www.w3.org/2000/svg"'), svg.slice(0, 100));
    assert.deepEqual(paths(svg), ['failover-kill', 'floor', 'bullmq-tuned']);
    assert.match(svg, /Vigil, kill -9: all 1,000 in 200 ms/);
    assert.match(svg, /median of 3 runs, run 3 drawn/);
    assert.match(svg, /Floor: bare amqplib requeue: all 1,000 in 45 ms/);
    assert.match(svg, /BullMQ, tuned locks: all 1,000 in 2\.1 s/);
    assert.match(svg, /run 2 \(the only one of 2 with a timeline\)/);
    assert.doesNotMatch(svg, /BullMQ, defaults/);
    assert.doesNotMatch(svg, /no data/);
    for (const tick of ['1 ms', '10 ms', '100 ms', '1 s', '10 s', '100 s'])
      assert.match(svg, new RegExp(`>${tick}</text>`), `tick ${tick}`);
    assert.match(svg, /8 cores \(Fake CPU &lt;R&amp;D&gt; &quot;9000&quot;\) · RabbitMQ 4\.2\.0/);
    assert.match(svg, /commit abc1234-dirty/);
  });

  it('draws BullMQ defaults, and widens the time axis past 100 s when a run took longer', () => {
    const svg = renderPlot(
      report([scenario('bullmq-defaults', { 'bullmq-n': 10 }, [run(1, { [WORKER_2]: rising(10, 150_000, 149_000) })])]),
    );
    assertWellFormed(svg);
    assert.deepEqual(paths(svg), ['bullmq-defaults']);
    assert.match(svg, /BullMQ, defaults: all 10 in 150 s/);
    assert.match(svg, />1000 s<\/text>/);
    assert.doesNotMatch(svg, /Vigil target/, 'the Vigil target line only comes with the Vigil series');
  });

  it('thins a long timeline to at most MAX_POINTS points, keeping its steps', () => {
    const long = rising(5000, 900, 100);
    const svg = renderPlot(report([scenario('failover-kill', { 'failover-n': 5000 }, [run(1, { [SURVIVOR]: long })])]));
    assertWellFormed(svg);
    const d = /<path\b[^>]* d="([^"]+)"/.exec(svg)?.[1] ?? '';
    const steps = d.match(/ H/g)?.length ?? 0;
    assert.ok(steps > 50 && steps <= MAX_POINTS, `${steps} steps drawn`);
    assert.match(d, /V64$/, 'the line ends at 100 %');

    const position = (t: number) => Math.log10(t);
    const thinned = thinSteps(long, MAX_POINTS, position);
    assert.ok(thinned.length <= MAX_POINTS, `${thinned.length} points`);
    assert.deepEqual(thinned[0], long[0]);
    assert.deepEqual(thinned[thinned.length - 1], long[long.length - 1]);
    for (const point of thinned) assert.ok(long.includes(point), 'only original points are kept');
    const span = position(900) - position(100);
    for (let i = 1; i < thinned.length; i += 1) {
      const gap = position(thinned[i]![0]) - position(thinned[i - 1]![0]);
      assert.ok(
        gap <= (2 * span) / Math.floor(MAX_POINTS / 2),
        `a gap of ${gap} between kept points ${i - 1} and ${i}`,
      );
    }
    assert.deepEqual(thinSteps(long.slice(0, 10), MAX_POINTS, position), long.slice(0, 10), 'short ones are kept');
  });

  it('says "no data" and draws no path when the report has none of the failover scenarios', () => {
    const svg = renderPlot(
      report([
        scenario('cancel', { 'cancel-n': 100 }, [run(1, {})]),
        scenario('failover-kill', { 'failover-n': 100 }, [run(1, {}, 'Error: failed')]),
      ]),
    );
    assertWellFormed(svg);
    assert.deepEqual(paths(svg), []);
    assert.match(svg, />no data: [^<]*<\/text>/);
    assert.doesNotMatch(svg, /Vigil, kill -9/);
  });

  it('draws the observed floor beside the bare one, and gives a third legend row room', () => {
    const svg = renderPlot(
      report([
        scenario('floor', { 'floor-n': 1000 }, [run(1, { 'messages held by the second consumer': rising(1000, 45) })]),
        scenario('floor-observed', { 'floor-n': 1000 }, [
          run(1, { 'observations published by the survivor': rising(1000, 60) }),
        ]),
        scenario('failover-kill', { 'failover-n': 1000 }, [run(1, { [SURVIVOR]: rising(1000, 100) })]),
        scenario('bullmq-tuned', { 'bullmq-n': 1000 }, [run(1, { [WORKER_2]: rising(1000, 2100, 2050) })]),
        scenario('bullmq-defaults', { 'bullmq-n': 1000 }, [run(1, { [WORKER_2]: rising(1000, 60_000, 59_000) })]),
      ]),
    );
    assertWellFormed(svg);
    assert.deepEqual(paths(svg), ['failover-kill', 'floor', 'floor-observed', 'bullmq-tuned', 'bullmq-defaults']);
    assert.match(svg, /Floor: amqplib requeue, observed: all 1,000 in 60 ms/);
    assert.match(svg, /<svg [^>]*height="454"/);
    assert.match(svg, /<text x="64" y="446"[^>]*>8 cores/, 'the footer moves down with the legend');
  });

  it('the 1-2-5 sizes and the tick steps', () => {
    assert.deepEqual(oneTwoFive(1000, 20_000), [1000, 2000, 5000, 10_000, 20_000]);
    assert.deepEqual(oneTwoFive(50, 200), [50, 100, 200]);
    assert.deepEqual(oneTwoFive(10_000, 100_000), [10_000, 20_000, 50_000, 100_000]);
    assert.deepEqual(oneTwoFive(300, 1500), [500, 1000]);
    assert.deepEqual(oneTwoFive(300, 400), []);
    assert.deepEqual([0.3, 1, 1.5, 3, 7, 20_000, 21_000].map(niceStep), [0.5, 1, 2, 5, 10, 20_000, 50_000]);
  });

  it('draws the failover curve: µs per observer of Vigil and of the observed floor, on a log axis of N', () => {
    const sizes = { 'failover-curve-from': 1000, 'failover-curve-to': 5000 };
    const svg = renderCurve(
      report([
        scenario(
          'failover-curve',
          sizes,
          [run(1, {}), run(2, {}), run(3, {}, 'Error: the service never started')],
          [
            figure(failoverCurveFigure.perObserver(1000), 140),
            figure(failoverCurveFigure.perObserver(2000), 150),
            figure(failoverCurveFigure.perObserver(5000), null),
            figure(failoverCurveFigure.observedFloor(1000), 20),
            figure(failoverCurveFigure.observedFloor(2000), 44),
            figure(failoverCurveFigure.observedFloor(5000), 120),
          ],
        ),
      ]),
      curveChart('failover-curve'),
    );
    assertWellFormed(svg);
    const lines = curveLines(svg);
    assert.deepEqual([...lines.keys()], ['Vigil, kill -9', 'Observed floor: amqplib requeue, one observation per job']);
    const vigil = lines.get('Vigil, kill -9')!;
    const floor = lines.get('Observed floor: amqplib requeue, one observation per job')!;
    assert.equal(vigil.length, 2, 'the size whose runs all failed is left out');
    assert.equal(floor.length, 3);
    assert.deepEqual(
      vigil.map(([x]) => x),
      floor.slice(0, 2).map(([x]) => x),
      'one x per size',
    );
    // Log axis: 1,000 → 2,000 is as wide as 2,000 → 4,000, and 2,000 → 5,000 is log(2.5)/log(2) of it.
    const step = floor[1]![0] - floor[0]![0];
    assert.ok(Math.abs(floor[2]![0] - floor[1]![0] - step * (Math.log(2.5) / Math.log(2))) < 0.2);
    // 20 ms for 1,000 is 20 µs each; 120 ms for 5,000 is 24.
    for (const label of ['140', '150', '20', '22', '24']) assert.match(svg, new RegExp(`>${label}</text>`), label);
    for (const tick of ['1,000', '2,000', '5,000']) assert.match(svg, new RegExp(`>${tick}</text>`), tick);
    assert.match(svg, /medians of 2 runs/);
    assert.match(svg, />µs per observer</);
  });

  it('draws the create curve on a linear axis from 0, and says "no data" without the scenario', () => {
    const chart = curveChart('create-curve');
    const sizes = { 'create-curve-n': 200, 'create-curve-from': 200, 'create-curve-to': 500 };
    const svg = renderCurve(
      report([
        scenario(
          'create-curve',
          sizes,
          [run(1, {})],
          [
            figure(createCurveFigure.perSecond(0), 1400),
            figure(createCurveFigure.perSecond(200), 1300),
            figure(createCurveFigure.perSecond(500), 1000),
          ],
        ),
      ]),
      chart,
    );
    assertWellFormed(svg);
    const points = curveLines(svg).get('Vigil, POST /observers')!;
    assert.equal(points.length, 3);
    const [zero, twoHundred, fiveHundred] = points.map(([x]) => x) as [number, number, number];
    assert.ok(Math.abs((fiveHundred - zero) / (twoHundred - zero) - 2.5) < 0.01, 'a linear axis');
    assert.ok(points[0]![1] < points[1]![1] && points[1]![1] < points[2]![1], 'fewer creates per s, lower');
    for (const tick of ['0', '100', '500', '1,400', '1,000']) assert.match(svg, new RegExp(`>${tick}</text>`), tick);
    assert.match(svg, /1 run</);

    const empty = renderCurve(report([scenario('cancel', {}, [run(1, {})])]), chart);
    assertWellFormed(empty);
    assert.deepEqual([...curveLines(empty).keys()], []);
    assert.match(empty, />no data: the report has no figures of create-curve<\/text>/);
  });
});
