/**
 * An observer publishing as fast as it can: its service's memory stays bounded (what the broker
 * cannot take waits in a bounded queue, then is dropped and counted), and the service's other
 * observers keep publishing at their pace.
 */
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { setTimeout as delay } from 'node:timers/promises';
import { createRunningTickers, World } from '@vigil/testkit';

describe('a chatty observer', { timeout: 120_000 }, () => {
  let world: World;

  before(async () => {
    // The flood is not watched: only the tickers' observations reach the test.
    world = await World.create({ watchKeys: ['ticker.#'] });
    await world.startManager();
  });
  after(() => world.close());

  it("its service's memory stays bounded and the other observers keep publishing", async (t) => {
    const service = await world.startService('chatty-host', { HEARTBEAT_INTERVAL_MS: '500' });
    const { ids } = await createRunningTickers(world, 'neighbour', 5);
    const chatty = await world.api('POST', '/observers', { name: 'chatty', kind: 'chatty', params: { bytes: 4096 } });
    assert.equal(chatty.status, 201);
    await world.waitForStatus(String(chatty.body.id), 'Processing', service.id);

    const seqAtStart = ids.map((id) => world.watch.runsOf(id).at(-1)?.lastSeq ?? 0);
    const floodMs = 8_000;
    const heaps: number[] = [];
    for (let waited = 0; waited < floodMs; waited += 1_000) {
      await delay(1_000);
      const memory = (
        await world.api<{ memory: { heapUsedBytes: number; rssBytes: number } | null }>(
          'GET',
          `/services/${service.id}`,
        )
      ).body.memory;
      if (memory) heaps.push(memory.heapUsedBytes);
    }
    const maxHeapMb = Math.max(...heaps) / 2 ** 20;
    const ticks = ids.map((id, i) => (world.watch.runsOf(id).at(-1)?.lastSeq ?? 0) - seqAtStart[i]!);
    t.diagnostic(`heap during the flood, max ${maxHeapMb.toFixed(1)} MB; ticks in ${floodMs} ms: ${ticks.join(', ')}`);
    assert.ok(maxHeapMb < 150, `heap stayed under 150 MB (max ${maxHeapMb.toFixed(1)} MB)`);
    // A ticker publishes every 100 ms: 80 in the flood; at least half of them got through.
    for (const count of ticks) assert.ok(count >= 40, `a neighbour published ${count} times in ${floodMs} ms`);
    for (const id of ids) assert.deepEqual(world.watch.runningOn(id, 1_000), [service.id]);
    assert.ok(service.process.running);

    await world.api('DELETE', `/observers/${String(chatty.body.id)}`);
    await world.waitForStatus(String(chatty.body.id), 'Deleted');
  });
});
