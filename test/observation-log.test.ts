import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import { describe, it } from 'node:test';
import { ObservationLog } from '../apps/manager/src/observation-log';

const serviceId = randomUUID();

function body(observerId: string, data: unknown): Buffer {
  const observation = {
    observerId,
    name: 'o',
    kind: 'ticker',
    serviceId,
    serviceName: 's',
    at: new Date().toISOString(),
    data,
  };
  return Buffer.from(JSON.stringify(observation));
}

describe('manager: the observations kept for watchers', () => {
  it('keeps the latest per observer, filed by routing key, and reads them back decoded', () => {
    const log = new ObservationLog({ perObserver: 3, observers: 10, maxBytes: 2048 });
    const id = randomUUID();
    for (let seq = 0; seq < 5; seq += 1) log.record(`ticker.${id}`, body(id, { seq }));
    assert.deepEqual(
      log.latest(id, 10).map((o) => o.data),
      [{ seq: 2 }, { seq: 3 }, { seq: 4 }],
    );
    assert.deepEqual(
      log.latest(id.toUpperCase(), 1).map((o) => o.data),
      [{ seq: 4 }],
    );
  });

  it('reads nothing that is no observation, or one of another observer than its routing key names', () => {
    const log = new ObservationLog({ perObserver: 5, observers: 10, maxBytes: 2048 });
    const [id, other] = [randomUUID(), randomUUID()];
    log.record(`ticker.${id}`, Buffer.from('not json'));
    log.record(`ticker.${id}`, Buffer.from(JSON.stringify({ observerId: id })));
    log.record(`ticker.${id}`, body(other, { seq: 1 }));
    log.record(`ticker.${id}`, body(id, { seq: 2 }));
    assert.deepEqual(
      log.latest(id, 10).map((o) => o.data),
      [{ seq: 2 }],
    );
  });

  it('keeps one above maxBytes as a note of its size', () => {
    const log = new ObservationLog({ perObserver: 5, observers: 10, maxBytes: 200 });
    const id = randomUUID();
    const large = body(id, { blob: 'x'.repeat(500) });
    log.record(`ticker.${id}`, large);
    assert.deepEqual(log.latest(id, 1)[0]?.data, { omitted: `${large.length} bytes, above the 200 kept` });
  });

  it('forgets the observer heard from least recently beyond its limit, and tells listeners of new ones', () => {
    const log = new ObservationLog({ perObserver: 5, observers: 2, maxBytes: 2048 });
    const [a, b, c] = [randomUUID(), randomUUID(), randomUUID()];
    const heard: unknown[] = [];
    const stop = log.listen(c, (o) => heard.push(o.data));
    for (const id of [a, b, c]) log.record(`ticker.${id}`, body(id, { id }));
    assert.deepEqual(log.latest(a, 5), []);
    assert.equal(log.latest(b, 5).length, 1);
    assert.deepEqual(heard, [{ id: c }]);
    stop();
    log.record(`ticker.${c}`, body(c, { again: true }));
    assert.deepEqual(heard, [{ id: c }]);
  });
});
