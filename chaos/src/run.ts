import { WORLD_LOST_AFTER_MS, type Run } from '@vigil/testkit';
import { inject, type FaultKind, type FaultOutcome } from './faults';
import { checkInvariants, managerObservers, windows, type Violation } from './invariants';
import { Rng } from './rng';
import { Workload, type ManagerObserver } from './workload';
import { CLUSTER_SIZE, ChaosWorld, DRAIN_TIMEOUT_MS } from './world';

export interface ChaosOptions {
  seed: number;
  /** A cluster of private RabbitMQ nodes (jobs on quorum queues) instead of a single node. */
  cluster: boolean;
  faults: number;
  /** Services in the fleet. */
  services: number;
  /** Observers the workload keeps alive, about. */
  observers: number;
  /** Fault kinds to draw from (default: all). */
  kinds: readonly FaultKind[];
  /** Longest wait for the invariants to hold again after a fault. */
  convergeTimeoutMs: number;
  log: (message: string) => void;
  /** Called once the private world is up, e.g. to tear it down on Ctrl-C. */
  onWorld?: (chaos: ChaosWorld) => void;
}

export interface FaultRecord {
  index: number;
  kind: FaultKind;
  description: string;
  startedAt: string;
  /** From the fault's start until the invariants held again. */
  convergedMs: number | null;
  /**
   * Longest time an observer ran on two services at once, from the fault's start to convergence,
   * outside the overlap of a planned move.
   */
  doubleMs: number;
  /** Longest time an observer ran on both the source and the destination of a planned move, in the same span. */
  plannedOverlapMs: number;
  /** How long the fault kept the manager from acting (down, its lease not yet lapsed, its database down). */
  managerStallMs: number;
  /** Longest time an observer that should run ran nowhere, in the same span. */
  nowhereMs: number;
  /** How long the fault itself kept observers from running or being seen (see FaultOutcome). */
  outageMs: number;
  /** The observer that ran twice longest, and its runs as the observations stream saw them. */
  doubled?: { observerId: string; runs: readonly Run[] };
  /** The observer whose planned move overlapped longest, and its runs. */
  overlapped?: { observerId: string; runs: readonly Run[] };
  violations: Violation[];
}

export interface ChaosReport {
  seed: number;
  options: Omit<ChaosOptions, 'log' | 'onWorld'>;
  startedAt: string;
  finishedAt: string;
  passed: boolean;
  faults: FaultRecord[];
  /**
   * On failure: the first broken observers' stories, from the workload, the manager and the watch,
   * and the last log lines of every app.
   */
  failure?: { fault: string; violations: Violation[]; timelines: unknown[]; logs?: Record<string, string> };
}

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

/** How far before a fault the runs of an observer that ran twice are kept in the report. */
const DOUBLE_CONTEXT_MS = 2_000;
/** The longest an observer may run on two services at once after any fault, outside a planned move. */
export const MAX_DOUBLE_RUN_MS = 1_000;
/**
 * The longest the two copies of a planned move may both run, beyond the time the fault kept the
 * manager from acting or the broker from carrying messages: a draining service waits at most
 * DRAIN_TIMEOUT_MS for its copies to be released, and the release, once decided, reaches the
 * source within the bound of any other double run. A rebalance or operator drain waits as long,
 * then leaves its copies to the release that the new copy's start brings.
 */
export const MAX_PLANNED_OVERLAP_MS = DRAIN_TIMEOUT_MS + MAX_DOUBLE_RUN_MS;
/** Beyond the fault's own outage (the broker down, say), the longest an observer may run nowhere. */
export const NOWHERE_ALLOWANCE_MS = WORLD_LOST_AFTER_MS + 2_000;

/**
 * Waits until every invariant holds (the manager must answer, its list settles what the workload
 * is unsure of); returns the violations still seen at the deadline, or none.
 */
async function converge(chaos: ChaosWorld, workload: Workload, timeoutMs: number): Promise<Violation[]> {
  const deadline = Date.now() + timeoutMs;
  let violations: Violation[] = [];
  for (;;) {
    let observers: ManagerObserver[] | undefined;
    try {
      observers = await managerObservers(chaos);
    } catch (err) {
      violations = [{ rule: 'manager-disagrees', detail: `the manager does not answer: ${(err as Error).message}` }];
    }
    if (observers) {
      await workload.settle(observers);
      violations = await checkInvariants(chaos, workload, observers);
      if (violations.length === 0) return [];
    }
    if (Date.now() > deadline) return violations;
    await sleep(250);
  }
}

/** The story of an observer that broke an invariant: what the workload did, the manager recorded, the watch saw. */
async function timelineOf(chaos: ChaosWorld, workload: Workload, violation: Violation): Promise<unknown> {
  const entry = [...workload.entries.values()].find((e) => e.id === violation.observerId);
  const manager = violation.observerId
    ? await chaos.world.api('GET', `/observers/${violation.observerId}`).then(
        (r) => r.body,
        (err: Error) => `unavailable: ${err.message}`,
      )
    : undefined;
  return {
    violation,
    workload: entry ? { name: entry.name, kind: entry.kind, state: entry.state, history: entry.history } : undefined,
    manager,
    observations: violation.observerId ? chaos.world.watch.runsOf(violation.observerId) : undefined,
  };
}

export async function runChaos(options: ChaosOptions): Promise<ChaosReport> {
  const { log } = options;
  const faultRng = new Rng(options.seed);
  // The workload draws as its requests return, so it has a stream of its own: the fault
  // schedule stays the same on a replay whatever the timing.
  const workloadRng = new Rng(options.seed ^ 0x9e3779b9);
  const report: ChaosReport = {
    seed: options.seed,
    options: {
      seed: options.seed,
      cluster: options.cluster,
      faults: options.faults,
      services: options.services,
      observers: options.observers,
      kinds: options.kinds,
      convergeTimeoutMs: options.convergeTimeoutMs,
    },
    startedAt: new Date().toISOString(),
    finishedAt: '',
    passed: false,
    faults: [],
  };
  log(
    `starting a private RabbitMQ ${options.cluster ? `cluster of ${CLUSTER_SIZE} nodes` : 'node'}, Postgres, the manager and the fleet`,
  );
  const chaos = await ChaosWorld.start({ cluster: options.cluster });
  options.onWorld?.(chaos);
  try {
    for (let i = 0; i < options.services; i++) await chaos.startService();
    const workload = new Workload(chaos.world, workloadRng, options.observers);
    workload.start();
    await sleep(3_000);

    for (let index = 1; index <= options.faults; index++) {
      await sleep(faultRng.int(500, 3_000));
      const kind = faultRng.pick(options.kinds);
      const started = Date.now();
      let outcome: FaultOutcome;
      try {
        outcome = await inject(kind, { chaos, workload, rng: faultRng, fleetSize: options.services, log });
      } catch (err) {
        outcome = { description: `injection failed: ${(err as Error).message}` };
      }
      const { description } = outcome;
      await workload.pause();
      const violations = description.startsWith('injection failed')
        ? [{ rule: 'process-crashed' as const, detail: description }]
        : await converge(chaos, workload, options.convergeTimeoutMs);
      const convergedAt = Date.now();
      const live = workload.live().flatMap((e) => (e.id ? [e.id] : []));
      const { doubleMs, plannedMs, nowhereMs, worstDouble, worstPlanned, worstNowhere } = await windows(
        chaos,
        live,
        started,
        convergedAt,
      );
      if (violations.length === 0 && outcome.verify) violations.push(...(await outcome.verify()));
      // Strict: converging is not enough, it must not take a double run or a gap past the bounds.
      const nowhereLimitMs = (outcome.outageMs ?? 0) + NOWHERE_ALLOWANCE_MS;
      if (violations.length === 0 && doubleMs > MAX_DOUBLE_RUN_MS) {
        violations.push({
          rule: 'ran-twice-too-long',
          ...(worstDouble && { observerId: worstDouble }),
          detail: `ran on two services at once for ${doubleMs} ms (at most ${MAX_DOUBLE_RUN_MS} ms)`,
        });
      }
      const plannedLimitMs = MAX_PLANNED_OVERLAP_MS + (outcome.outageMs ?? 0) + (outcome.managerStallMs ?? 0);
      if (violations.length === 0 && plannedMs > plannedLimitMs) {
        violations.push({
          rule: 'moved-overlap-too-long',
          ...(worstPlanned && { observerId: worstPlanned }),
          detail:
            `a planned move ran both copies for ${plannedMs} ms (at most ${plannedLimitMs} ms: ` +
            `${MAX_PLANNED_OVERLAP_MS} ms + the fault's outage and manager stall)`,
        });
      }
      if (violations.length === 0 && nowhereMs > nowhereLimitMs) {
        violations.push({
          rule: 'nowhere-too-long',
          ...(worstNowhere && { observerId: worstNowhere }),
          detail: `ran nowhere for ${nowhereMs} ms (at most ${nowhereLimitMs} ms: the fault's outage + ${NOWHERE_ALLOWANCE_MS} ms)`,
        });
      }
      const runsSince = (id: string) =>
        chaos.world.watch.runsOf(id).filter((run) => run.end >= started - DOUBLE_CONTEXT_MS);
      const record: FaultRecord = {
        index,
        kind,
        description,
        startedAt: new Date(started).toISOString(),
        convergedMs: violations.length === 0 ? convergedAt - started : null,
        outageMs: outcome.outageMs ?? 0,
        managerStallMs: outcome.managerStallMs ?? 0,
        doubleMs,
        plannedOverlapMs: plannedMs,
        nowhereMs,
        violations,
        ...(worstDouble && { doubled: { observerId: worstDouble, runs: runsSince(worstDouble) } }),
        ...(worstPlanned && { overlapped: { observerId: worstPlanned, runs: runsSince(worstPlanned) } }),
      };
      report.faults.push(record);
      log(
        `fault ${index}/${options.faults} ${kind}: ${description}; ` +
          (violations.length === 0
            ? `converged in ${record.convergedMs} ms (ran twice ≤ ${doubleMs} ms${worstDouble ? ` by ${worstDouble}` : ''}, ` +
              `planned overlap ≤ ${plannedMs} ms, nowhere ≤ ${nowhereMs} ms)`
            : `FAILED (${[...new Set(violations.map((v) => v.rule))].join(', ')}): ${violations[0]!.detail}`),
      );
      if (violations.length > 0) {
        report.failure = {
          fault: `${index} ${kind}: ${description}`,
          violations,
          timelines: await Promise.all(violations.slice(0, 3).map((v) => timelineOf(chaos, workload, v))),
          logs: chaos.logTails(200),
        };
        return report;
      }
      if (outcome.heal) {
        try {
          await outcome.heal();
        } catch (err) {
          report.failure = {
            fault: `${index} ${kind}: ${description}`,
            violations: [{ rule: 'process-crashed', detail: `the heal failed: ${(err as Error).message}` }],
            timelines: [],
          };
          return report;
        }
      }
      workload.start();
    }
    await workload.pause();
    report.passed = true;
    return report;
  } finally {
    report.finishedAt = new Date().toISOString();
    await chaos.close();
  }
}
