/**
 * The state consumer, in-process: a heartbeat followed by a later one of the same service is acked
 * without being applied (each lists everything its service holds), but never across a barrier,
 * which promises that what came before it is applied.
 */
import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import { describe, it } from 'node:test';
import type { ConsumeMessage } from '@vigil/broker';
import { encodeMessage, type StateEvent } from '@vigil/contracts';
import { createLogger } from '@vigil/logging';
import type { StateDelivery } from '../apps/manager/src/broker';
import { createMetrics } from '../apps/manager/src/metrics';
import { noEffects } from '../apps/manager/src/state/placement';
import type { StateProjector } from '../apps/manager/src/state/projector';
import { StateConsumer } from '../apps/manager/src/state/consumer';

const at = new Date().toISOString();

function heartbeat(serviceId: string, label: string): StateEvent {
  return {
    type: 'service.heartbeat',
    serviceId,
    at,
    name: label,
    capacity: 10,
    heartbeatIntervalMs: 1_000,
    running: [],
    generations: [],
    freeSlots: 10,
  };
}

describe('state consumer', () => {
  it('applies only the latest heartbeat of each service between barriers, and acks them all', async () => {
    const [a, b] = [randomUUID(), randomUUID()];
    const events: StateEvent[] = [
      heartbeat(a, 'a1'),
      heartbeat(b, 'b1'),
      heartbeat(a, 'a2'),
      { type: 'manager.barrier', barrierId: randomUUID(), at },
      heartbeat(a, 'a3'),
      heartbeat(a, 'a4'),
    ];
    const applied: string[] = [];
    const projector = {
      apply: (batch: StateEvent[]) => {
        for (const e of batch) applied.push(e.type === 'service.heartbeat' ? e.name : e.type);
        return Promise.resolve(noEffects());
      },
    } as unknown as StateProjector;
    const metrics = createMetrics();
    const consumer = new StateConsumer({
      projector,
      onEffects: () => Promise.resolve(),
      metrics,
      log: createLogger({ level: 'silent', base: {} }),
      onBarrier: () => undefined,
    });
    let acked = 0;
    for (const event of events) {
      const delivery: StateDelivery = {
        message: { content: encodeMessage(event) } as ConsumeMessage,
        ack: () => acked++,
        reject: () => assert.fail('nothing is rejected'),
      };
      consumer.push(delivery);
    }
    await consumer.whenIdle();
    assert.deepEqual(applied, ['b1', 'a2', 'manager.barrier', 'a4']);
    assert.equal(acked, events.length);
    const counted = (await metrics.registry.getSingleMetricAsString('vigil_state_messages_total')).match(/ (\d+)$/m);
    assert.equal(Number(counted?.[1]), events.length, 'every message counts as handled');
  });
});
