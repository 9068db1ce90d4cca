/**
 * Short seeded runs of the fault-injection suite (chaos/): about 20 faults of every kind on a
 * private RabbitMQ and Postgres, a few that cut planned moves short, and a few on a 3-node cluster
 * (quorum queues, a node killed or stopped), the invariants of docs/design.md checked from outside
 * after each. Fails with the seed, the fault and the broken observer's timeline.
 */
import assert from 'node:assert/strict';
import { existsSync } from 'node:fs';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { after, before, describe, it, type TestContext } from 'node:test';
import { ROOT, runScript } from '@vigil/testkit';

const SEED = 20261125;
const FAULTS = 20;
/** Cluster mode starts three broker nodes and keeps one down per node fault: fewer faults. */
const CLUSTER_SEED = 20261202;
const CLUSTER_FAULTS = 8;
/** Faults on moves only, which the mixed run above draws few of. */
const MOVES_SEED = 1;
const MOVES_FAULTS = 5;
const MOVE_KINDS = [
  'kill-new-holder',
  'kill-manager-mid-move',
  'term-two-services',
  'join-under-load',
  'drain-undrain',
];

interface ChaosJson {
  seed: number;
  passed: boolean;
  faults: { kind: string; convergedMs: number | null; doubleMs: number; plannedOverlapMs: number }[];
  summary: { kind: string; faults: number }[];
}

describe('fault injection (short seeded run)', { timeout: 600_000 }, () => {
  let out: string;

  before(async () => {
    assert.ok(
      existsSync(path.join(ROOT, 'chaos/dist/main.js')),
      'chaos/dist/main.js is missing: run npm run build first',
    );
    out = await mkdtemp(path.join(os.tmpdir(), 'vigil-chaos-'));
  });
  after(() => rm(out, { recursive: true, force: true }));

  /** Runs the suite with `args`; returns the report it wrote for `seed`, once it exited 0. */
  async function chaos(t: TestContext, seed: number, args: string[]): Promise<ChaosJson> {
    const result = await runScript('chaos/dist/main.js', ['--seed', String(seed), ...args, '--out', out]);
    t.diagnostic(result.stdout);
    assert.equal(result.code, 0, `chaos exited ${result.code}:\n${result.stderr.slice(-6000)}`);
    const report = JSON.parse(await readFile(path.join(out, `${seed}.json`), 'utf8')) as ChaosJson;
    assert.equal(report.seed, seed);
    assert.equal(report.passed, true);
    return report;
  }

  it(`${FAULTS} faults from seed ${SEED}: every one converges, nothing lost, nothing run twice`, async (t) => {
    const report = await chaos(t, SEED, ['--faults', String(FAULTS)]);
    assert.equal(report.faults.length, FAULTS);
    assert.ok(report.faults.every((f) => typeof f.convergedMs === 'number'));
    assert.ok(report.summary.length >= 5, `faults of several kinds: ${report.summary.map((s) => s.kind).join(', ')}`);
  });

  it(`${MOVES_FAULTS} faults on moves from seed ${MOVES_SEED}: a move cut short still ends with one copy`, async (t) => {
    const report = await chaos(t, MOVES_SEED, ['--faults', String(MOVES_FAULTS), '--kinds', MOVE_KINDS.join(',')]);
    assert.equal(report.faults.length, MOVES_FAULTS);
    assert.ok(report.faults.every((f) => typeof f.convergedMs === 'number'));
    assert.ok(report.faults.every((f) => f.doubleMs <= 1_000 && typeof f.plannedOverlapMs === 'number'));
    assert.ok(new Set(report.faults.map((f) => f.kind)).size >= 3, 'faults of several kinds');
  });

  it(`${CLUSTER_FAULTS} faults from seed ${CLUSTER_SEED} on a cluster: a node down at a time changes nothing`, async (t) => {
    const report = await chaos(t, CLUSTER_SEED, [
      '--cluster',
      '--faults',
      String(CLUSTER_FAULTS),
      '--kinds',
      'kill-broker-node,restart-broker-node,kill-service,freeze-service,kill-manager',
    ]);
    assert.equal(report.faults.length, CLUSTER_FAULTS);
    const kinds = new Set(report.faults.map((f) => f.kind));
    assert.ok(
      kinds.has('kill-broker-node') || kinds.has('restart-broker-node'),
      `a broker node fault among ${[...kinds].join(', ')}`,
    );
  });
});
