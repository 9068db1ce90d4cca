/**
 * Bad input at volume (fault-injection suite, chaos/): 10,000 generated HTTP requests against the
 * manager and 10,200 malformed AMQP messages on every queue the apps consume, each seeded so a
 * failure can be replayed (`FUZZ_SEED=<n>`). What must hold: no 5xx but the designed 503 for an
 * unserved pool, every error an application/problem+json with title and status, every app still
 * running with its consumers attached, the garbage dead-lettered (state, jobs) or dropped
 * (control) with a log line each, and running observers untouched.
 */
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { World } from '@vigil/testkit';
import { floodAmqp } from '../chaos/src/flood-amqp';
import { fuzzRest } from '../chaos/src/fuzz-rest';

const SEED = Number(process.env.FUZZ_SEED ?? 20261125);
const REQUESTS = 10_000;
const PER_QUEUE = 3_400;

describe('bad input at volume', () => {
  let world: World;

  before(async () => {
    world = await World.create();
    await world.startManager();
    await Promise.all([world.startService('volume-1'), world.startService('volume-2')]);
  });
  after(() => world.close());

  it(`${REQUESTS} generated requests: no 5xx but the designed one, every error a problem, the manager up`, async (t) => {
    t.diagnostic(`seed ${SEED} (replay with FUZZ_SEED=${SEED})`);
    const report = await fuzzRest(world, { runs: REQUESTS, seed: SEED });
    t.diagnostic(`${report.requests} requests in ${report.durationMs} ms`);
    t.diagnostic(`by status: ${JSON.stringify(report.byStatus)}`);
    t.diagnostic(`by shape: ${JSON.stringify(report.byShape)}`);
    t.diagnostic(`created ${report.created} observers, deleted ${report.cleanedUp} again`);
    if (report.failureCount > 0) {
      t.diagnostic(`${report.failureCount} failures: ${JSON.stringify(report.failureKinds, null, 1)}`);
      t.diagnostic(`the manager logged: ${JSON.stringify(report.managerErrors, null, 1)}`);
      for (const failure of report.failures) t.diagnostic(`counterexample: ${JSON.stringify(failure)}`);
    }

    assert.equal(report.requests, REQUESTS);
    assert.ok(report.managerRunning, 'the manager exited');
    assert.equal(report.healthzAfter, 200);
    assert.equal(report.byStatus.error, undefined, 'every request got an answer');
    assert.ok((report.byStatus['400'] ?? 0) > 0 && (report.byStatus['404'] ?? 0) > 0, 'the generator reaches errors');
    assert.ok((report.byStatus['200'] ?? 0) > 0, 'the generator reaches successes');
    assert.deepEqual(report.failures, [], `${report.failureCount} answers broke a property`);
  });

  it(`${3 * PER_QUEUE} malformed messages on the state, jobs and control queues: dead-lettered or dropped, nobody harmed`, async (t) => {
    const report = await floodAmqp(world, { perQueue: PER_QUEUE, seed: SEED });
    t.diagnostic(`seed ${SEED}`);
    for (const target of report.targets) {
      t.diagnostic(
        `${target.target} (${target.destination}): ${target.published} messages, ${target.huge} of ~1 MB, ` +
          `${(target.bytes / 1024 / 1024).toFixed(1)} MB, shapes ${JSON.stringify(target.byShape)}`,
      );
    }
    t.diagnostic(`published ${report.published} in ${report.publishMs} ms; worked through in ${report.drainMs} ms`);
    t.diagnostic(
      `dead-lettered ${report.deadLettered} (purged ${report.purged}); logged ${JSON.stringify(report.logged)}`,
    );
    t.diagnostic(`consumers ${JSON.stringify(report.consumers)}; queues ${JSON.stringify(report.queues)}`);
    t.diagnostic(`observers unchanged: ${report.observers.length}; cancels obeyed after: ${report.cancelsObeyed}`);

    assert.ok(report.published >= 10_000);
    assert.deepEqual(report.violations, []);
    assert.ok(report.running.manager);
    assert.deepEqual(Object.values(report.running.services), [true, true]);
    assert.equal(report.deadLettered, report.expectedDeadLettered);
    assert.equal(report.purged, report.deadLettered);
    assert.equal(report.consumers.state.after, report.consumers.state.before);
    assert.equal(report.consumers.jobs.after, 2);
    assert.equal(report.queues.stateReadyAfter, 0);
    assert.equal(report.queues.jobsReadyAfter, report.queues.jobsReadyBefore);
    assert.equal(report.observers.length, 10);
    for (const observer of report.observers) {
      assert.deepEqual(observer.runningOnAfter, [observer.serviceBefore], observer.id);
      assert.equal(observer.managerStatus, 'Processing');
      assert.equal(observer.managerServiceId, observer.serviceBefore);
    }
    assert.equal(report.cancelsObeyed, 10);
  });
});
