/**
 * Prometheus metrics: an observer service's own on METRICS_PORT (observers running, restarts,
 * observations, moves), and the manager's gauges of the fleet.
 */
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { httpRequest, waitFor, World, type ServiceHandle } from '@vigil/testkit';

/** The value of the sample named `name` (with its labels, as written), or undefined. */
function sample(text: string, name: string): number | undefined {
  const line = text.split('\n').find((l) => l.startsWith(`${name} `));
  return line === undefined ? undefined : Number(line.slice(name.length + 1));
}

describe('metrics', { timeout: 120_000 }, () => {
  let world: World;
  let service: ServiceHandle;
  let serviceMetrics: string;

  before(async () => {
    world = await World.create();
    await world.startManager();
    service = await world.startService('metrics-a', { METRICS_PORT: '0' });
    const served = await waitFor('the metrics address', () => service.process.logged('metrics served').at(-1));
    serviceMetrics = String(served.metrics);
  });
  after(() => world.close());

  it('a service counts what runs, what it published, and restarts; only on this machine by default', async () => {
    assert.match(serviceMetrics, /^http:\/\/127\.0\.0\.1:\d+\/metrics$/);
    const ids = [await world.createTicker('m-1', 50), await world.createTicker('m-2', 50)];
    await world.api('POST', '/observers', { name: 'm-crash', kind: 'crasher', params: { crashAfterMs: 10 } });
    for (const id of ids) await world.waitForStatus(id, 'Processing', service.id);
    const text = await waitFor('restarts counted', async () => {
      const body = (await httpRequest('GET', serviceMetrics)).text;
      return (sample(body, 'vigil_service_observer_restarts_total') ?? 0) >= 1 && body;
    });
    assert.ok((sample(text, 'vigil_service_observations_total{result="sent"}') ?? 0) > 0);
    assert.equal(sample(text, 'vigil_service_capacity'), 10);
    assert.equal(sample(text, 'vigil_service_draining'), 0);
    assert.ok(sample(text, 'vigil_service_observers_running')! >= 2);
    assert.equal((await httpRequest('GET', serviceMetrics.replace('/metrics', '/other'))).status, 404);
  });

  it('the manager has gauges of the fleet: observers by status, live services, free slots, the oldest job', async () => {
    await world.waitForStatus(
      (await world.api<{ items: { id: string }[] }>('GET', '/observers?name=m-crash')).body.items[0]!.id,
      'Failed',
    );
    const text = await waitFor(
      'the gauges',
      async () => {
        const body = await world.metrics();
        return sample(body, 'vigil_observers{status="Failed"}') === 1 && body;
      },
      { timeoutMs: 15_000 },
    );
    assert.equal(sample(text, 'vigil_observers{status="Processing"}'), 2);
    assert.equal(sample(text, 'vigil_services_live'), 1);
    assert.ok(sample(text, 'vigil_pool_free_slots{pool="default"}')! <= 8);
    assert.ok(sample(text, 'vigil_oldest_held_job_age_seconds')! > 0);
  });
});
