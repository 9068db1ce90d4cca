import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import {
  assertNoDuplicates,
  createRunningTickers,
  startPrivateRabbit,
  type PrivateRabbit,
  waitFor,
  World,
} from '@vigil/testkit';

describe('broker delivery-acknowledgement timeout', { timeout: 180_000 }, () => {
  let rabbit: PrivateRabbit;
  let world: World;

  before(async () => {
    // A broker set to time deliveries out, as a misconfigured production broker would be
    // after 30 minutes.
    rabbit = await startPrivateRabbit({ consumerTimeoutMs: 3_000 });
    world = await World.create({ amqpUrl: rabbit.url });
    await world.startManager();
  });
  after(async () => {
    await world?.close();
    await rabbit?.destroy();
  });

  it('a timed-out delivery is handled like a lost channel: observers aborted, consumed again, never twice', async (t) => {
    const a = await world.startService('timeout-a');
    const b = await world.startService('timeout-b');
    const { ids } = await createRunningTickers(world, 'timeout', 6);

    const logged = await waitFor(
      'a service to log the delivery timeout',
      () => [a, b].flatMap((s) => s.process.logged('timed out an unacked job delivery')).at(0),
      { timeoutMs: 30_000 },
    );
    assert.match(String(logged.msg), /consumer_timeout/, 'the log names the broker setting to change');
    assert.equal(logged.level, 50);

    // The broker keeps timing them out every few seconds. It requeues a job the moment it
    // closes the channel, before the holder hears of it: a tick of the old holder may land
    // after the new one started. That overlap must stay within a message's flight time.
    const longest = await assertNoDuplicates(world, ids, 6_000, { toleranceMs: 100 });
    t.diagnostic(`longest double run while the broker timed deliveries out: ${longest} ms`);
    await waitFor('every observer to be running', () =>
      ids.every((id) => world.watch.runningOn(id, 1_000).length === 1),
    );
    assert.ok(a.process.running && b.process.running, 'no service crashed');
  });
});
