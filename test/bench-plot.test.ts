/**
 * The benchmark's failover timeline (bench/src/plot.ts) on synthetic reports: the SVG is well-formed
 * XML, draws one path per scenario present (the run with the median final time), names each in the
 * legend, leaves out scenarios the report lacks, thins long timelines, and says "no data" when there
 * is nothing to draw. No broker needed.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { MAX_POINTS, renderPlot, thinSteps } from '../bench/src/plot';
import type { Report, RunRecord, ScenarioResult } from '../bench/src/report';
import type { TimelinePoint } from '../bench/src/scenario';

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

function scenario(name: string, params: Record<string, number>, runs: RunRecord[]): ScenarioResult {
  return { name, title: name, needs: [], params, figures: [], runs };
}

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
});
