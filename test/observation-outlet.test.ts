import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { ObservationOutlet } from '../apps/observer-service/src/observation-outlet';

/** A channel whose buffer holds `room` messages until the test drains it. */
function channel(room: number) {
  const sent: string[] = [];
  let left = room;
  let open = true;
  return {
    sent,
    send: (routingKey: string) => {
      if (!open) return 'closed' as const;
      sent.push(routingKey);
      left--;
      return left > 0 ? ('sent' as const) : ('full' as const);
    },
    makeRoom(n: number) {
      left = n;
    },
    setOpen(value: boolean) {
      open = value;
    },
  };
}

const body = Buffer.from('{"seq":1}');

describe('observer service: observations under backpressure', () => {
  it('go straight out while the channel has room', () => {
    const ch = channel(100);
    const outlet = new ObservationOutlet(ch.send);
    for (let i = 0; i < 10; i++) assert.equal(outlet.publish('a', 'a', body), true);
    assert.equal(ch.sent.length, 10);
    assert.equal(outlet.dropped, 0);
  });

  it('a chatty observer gets its share and no more: the others keep publishing, the excess is dropped', () => {
    const ch = channel(1);
    const outlet = new ObservationOutlet(ch.send, { perObserver: 4, totalBytes: 1 << 20 });
    outlet.publish('chatty', 'chatty', body); // fills the channel
    for (let i = 0; i < 1_000; i++) outlet.publish('chatty', 'chatty', body);
    assert.equal(outlet.publish('quiet', 'quiet', body), true, 'a quiet observer still has room');
    assert.equal(outlet.dropped, 1_000 - 4);

    ch.makeRoom(1_000);
    outlet.drain();
    assert.deepEqual(ch.sent.slice(1, 3).sort(), ['chatty', 'quiet'], 'taken in turn, one observer at a time');
    assert.equal(ch.sent.filter((k) => k === 'chatty').length, 1 + 4);
    assert.equal(ch.sent.filter((k) => k === 'quiet').length, 1);
  });

  it('bounds the bytes waiting whatever the number of observers', () => {
    const ch = channel(1);
    const outlet = new ObservationOutlet(ch.send, { perObserver: 1_000, totalBytes: 10 * body.length });
    outlet.publish('x', 'x', body);
    for (let i = 0; i < 100; i++) outlet.publish(`o${i}`, 'k', body);
    assert.equal(outlet.dropped, 90);
  });

  it('holds observations while no channel takes them and sends them once one does', () => {
    const ch = channel(100);
    ch.setOpen(false);
    const outlet = new ObservationOutlet(ch.send, { perObserver: 2, totalBytes: 1 << 20 });
    for (let i = 0; i < 5; i++) outlet.publish('a', 'a', body);
    assert.equal(ch.sent.length, 0);
    assert.equal(outlet.dropped, 3);
    ch.setOpen(true);
    outlet.drain();
    assert.equal(ch.sent.length, 2);
  });

  it('sends nothing of an observer that stopped before the channel had room', () => {
    const ch = channel(1);
    const outlet = new ObservationOutlet(ch.send);
    outlet.publish('a', 'a', body);
    outlet.publish('a', 'a', body);
    outlet.publish('b', 'b', body);
    outlet.forget('a');
    ch.makeRoom(10);
    outlet.drain();
    assert.deepEqual(ch.sent, ['a', 'b']);
  });

  it('counts drops per observer for the log, and starts over after each report', () => {
    const ch = channel(1);
    const outlet = new ObservationOutlet(ch.send, { perObserver: 0, totalBytes: 1 << 20 });
    outlet.publish('a', 'a', body);
    outlet.publish('a', 'a', body);
    outlet.publish('b', 'b', body);
    assert.deepEqual(
      [...outlet.takeDrops()],
      [
        ['a', 1],
        ['b', 1],
      ],
    );
    assert.equal(outlet.takeDrops().size, 0);
  });
});
