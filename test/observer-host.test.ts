/**
 * The observer service's core, in-process and without a broker: the races between a job
 * delivered again, cancels, releases, newer generations and shutdown, driven through a fake
 * transport whose "connections" the test loses at will.
 */
import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import { describe, it } from 'node:test';
import { setTimeout as delay } from 'node:timers/promises';
import { encodeMessage, type JobMessage } from '@vigil/contracts';
import { createLogger, type Logger } from '@vigil/logging';
import pino from 'pino';
import { defineKind, untilAborted, z, type ObserverKind } from '@vigil/observer-sdk';
import { waitFor } from '@vigil/testkit';
import { KindRegistry } from '../apps/observer-service/src/kind-registry';
import { START_REPORT_SPACING_MS } from '../apps/observer-service/src/state-reporter';
import {
  ObserverHost,
  type HostReports,
  type JobTransport,
  type Settlement,
} from '../apps/observer-service/src/observer-host';

/** A connection of the fake transport; `alive = false` is what a lost connection looks like. */
interface Connection {
  alive: boolean;
}

interface Delivery {
  connection: Connection;
  tag: number;
}

class FakeTransport implements JobTransport<Delivery> {
  readonly settled: { tag: number; how: Settlement }[] = [];
  private nextTag = 1;

  deliver(connection: Connection): Delivery {
    return { connection, tag: this.nextTag++ };
  }

  isLive(delivery: Delivery): boolean {
    return delivery.connection.alive;
  }

  wasRedelivered(): boolean {
    return false;
  }

  settle(delivery: Delivery, how: Settlement): void {
    if (delivery.connection.alive) this.settled.push({ tag: delivery.tag, how });
  }

  heldChanged(): void {}

  how(delivery: Delivery): Settlement | undefined {
    return this.settled.find((s) => s.tag === delivery.tag)?.how;
  }
}

class Reports implements HostReports {
  readonly starts: { observerId: string; generation: number }[] = [];
  readonly stops: Parameters<HostReports['stopped']>[0][] = [];
  readonly failures: string[] = [];

  started(job: JobMessage): void {
    this.starts.push({ observerId: job.observerId, generation: job.generation });
  }

  stopped(stop: Parameters<HostReports['stopped']>[0]): void {
    this.stops.push(stop);
  }

  failed(job: JobMessage): void {
    this.failures.push(job.observerId);
  }

  readonly staleness: { observerId: string; stale: boolean }[] = [];

  stale(job: JobMessage, stale: boolean): void {
    this.staleness.push({ observerId: job.observerId, stale });
  }
}

/** Runs until aborted, then takes `stopMs` to end; counts how many of its runs are alive at once. */
function lingeringKind(stopMs: number) {
  const live = { now: 0, most: 0, runs: 0 };
  const kind = defineKind({
    name: 'lingering',
    params: z.object({}),
    async run({ signal }) {
      live.runs++;
      live.most = Math.max(live.most, ++live.now);
      await untilAborted(signal);
      await delay(stopMs);
      live.now--;
    },
  });
  return { kind, live };
}

/** A host with the lingering kind, and `extra` kinds beside it, logging to `log` (nowhere by default). */
function setUp(stopMs = 100, extra: ObserverKind[] = [], log: Logger = createLogger({ level: 'silent', base: {} })) {
  const { kind, live } = lingeringKind(stopMs);
  const transport = new FakeTransport();
  const reports = new Reports();
  const host = new ObserverHost<Delivery>({
    kinds: new KindRegistry([kind, ...extra]),
    restartPolicy: { maxRestarts: 0, initialDelayMs: 10, maxDelayMs: 10, resetAfterMs: 1_000 },
    stopTimeoutMs: 2_000,
    noteMemoryMs: 60_000,
    fullAt: undefined,
    parkBackoff: { initialDelayMs: 50, maxDelayMs: 50 },
    transport,
    reports,
    publish: () => true,
    ended: () => undefined,
    log,
  });
  const observerId = randomUUID();
  const job = (generation = 1, kindName = 'lingering', params: Record<string, unknown> = {}): Buffer =>
    encodeMessage({ observerId, name: 'x', kind: kindName, pool: 'default', params, generation });
  return { host, transport, reports, live, observerId, job };
}

describe('observer service core: start logs', () => {
  it('a burst of starts is one summary line; a lone start after a quiet spell is its own line', async () => {
    type Line = { msg: string; started?: number; observerId?: string };
    const lines: Line[] = [];
    const log = pino({ level: 'info' }, { write: (line: string) => lines.push(JSON.parse(line) as Line) });
    const { host, transport } = setUp(0, [], log);
    const connection: Connection = { alive: true };
    const jobOf = (name: string) =>
      encodeMessage({ observerId: randomUUID(), name, kind: 'lingering', pool: 'default', params: {}, generation: 1 });
    for (let i = 0; i < 5; i++) host.deliver(transport.deliver(connection), jobOf(`burst-${i}`));
    // Lines are paced as the start reports are: a start after a quiet spacing has its line at once.
    await delay(START_REPORT_SPACING_MS + 20);
    const lone = JSON.parse(jobOf('lone').toString()) as JobMessage;
    host.deliver(transport.deliver(connection), encodeMessage(lone));
    await delay(20);
    assert.deepEqual(
      lines.map((l) => [l.msg, l.started ?? l.observerId]),
      [
        ['observers started', 5],
        ['observer started', lone.observerId],
      ],
    );
    await host.stop();
  });
});

describe('observer service core: staleness', () => {
  it('a run silent past its staleAfterMs is reported stale once, and not before', async () => {
    const { host, transport, reports, observerId } = setUp();
    const job = { observerId, name: 'x', kind: 'lingering', pool: 'default', params: {}, generation: 1 };
    host.deliver(transport.deliver({ alive: true }), encodeMessage({ ...job, staleAfterMs: 300 }));
    await delay(200);
    assert.deepEqual(reports.staleness, [], 'not stale before its time');
    await waitFor('the stale report', () => reports.staleness.length > 0);
    await delay(600);
    assert.deepEqual(reports.staleness, [{ observerId, stale: true }], 'reported once per silence');
    await host.stop();
  });
});

describe('observer service core: races, without a broker', () => {
  it('a cancel that arrives while a job waits for its lost copy to end: the job is acked, nothing starts', async () => {
    const { host, transport, reports, live, observerId, job } = setUp();
    const first: Connection = { alive: true };
    host.deliver(transport.deliver(first), job());
    assert.equal(live.runs, 1);

    first.alive = false;
    host.connectionLost();
    const second: Connection = { alive: true };
    const redelivered = transport.deliver(second);
    host.deliver(redelivered, job());
    host.cancel(observerId, { deadLetter: false });

    await waitFor('the lost copy to end', () => live.now === 0);
    await delay(50);
    assert.equal(live.runs, 1, 'the waiting job never started');
    assert.equal(transport.how(redelivered), 'ack');
    assert.deepEqual(
      reports.stops.map((s) => s.reason),
      ['cancelled'],
    );
  });

  it('a shutdown while a job waits for its lost copy: the job is requeued and nothing starts after', async () => {
    const { host, transport, live, job } = setUp();
    const first: Connection = { alive: true };
    host.deliver(transport.deliver(first), job());
    first.alive = false;
    host.connectionLost();
    const redelivered = transport.deliver({ alive: true });
    host.deliver(redelivered, job());

    await host.stop();
    await delay(50);
    assert.equal(live.runs, 1, 'no run started after the shutdown');
    assert.equal(live.now, 0);
    assert.equal(transport.how(redelivered), 'requeue');
  });

  it('a newer generation with other params supersedes the copy here: the old one ends and is acked, then the new one starts', async () => {
    const { host, transport, reports, live, job } = setUp();
    const connection: Connection = { alive: true };
    const older = transport.deliver(connection);
    host.deliver(older, job(1));
    const newer = transport.deliver(connection);
    host.deliver(newer, job(2, 'lingering', { changed: true }));

    await waitFor('the newer generation to start', () => reports.starts.length === 2);
    assert.equal(live.most, 1, 'never two generations running at once');
    assert.equal(transport.how(older), 'ack');
    assert.deepEqual(host.running().generations, [2]);
    assert.equal(transport.how(newer), undefined, 'the newer job stays held');
  });

  it('a newer generation of the same run is adopted in place: no restart, the older job acked, the start reported', async () => {
    const seen: { generation: number; fencingToken: string }[] = [];
    let runs = 0;
    const kind = defineKind({
      name: 'fenced',
      params: z.object({ every: z.number(), label: z.string() }),
      async run(ctx) {
        runs++;
        // Read at each side effect, never kept from the start: a rotation moves it up mid-run.
        while (!ctx.signal.aborted) {
          seen.push({ generation: ctx.generation, fencingToken: ctx.fencingToken });
          await delay(10);
        }
      },
    });
    const { host, transport, reports, observerId } = setUp(100, [kind]);
    const job = (generation: number, params: Record<string, unknown>) =>
      encodeMessage({ observerId, name: 'x', kind: 'fenced', pool: 'default', params, generation });
    const connection: Connection = { alive: true };
    const older = transport.deliver(connection);
    host.deliver(older, job(1, { every: 10, label: 'a' }));
    await waitFor('the first generation to run', () => seen.length > 0);

    const newer = transport.deliver(connection);
    // Same params, keys in another order: a republished job's params come back from jsonb.
    host.deliver(newer, job(2, { label: 'a', every: 10 }));
    await waitFor('the run to go on as generation 2', () => seen.at(-1)?.generation === 2);

    assert.equal(runs, 1, 'the run was not restarted');
    assert.equal(transport.how(older), 'ack');
    assert.equal(transport.how(newer), undefined, 'the newer job stays held');
    assert.equal(host.held, 1);
    assert.deepEqual(host.running().generations, [2]);
    assert.deepEqual(
      reports.starts.map((s) => s.generation),
      [1, 2],
    );
    assert.ok(seen.at(-1)!.fencingToken > seen[0]!.fencingToken, 'the fencing token moved up with it');

    host.release(observerId, 1, 'stale-generation');
    await delay(30);
    assert.equal(host.running().ids.length, 1, 'a release of the older generation leaves the run alone');
    await host.stop();
    assert.equal(transport.how(newer), 'requeue');
  });

  it('an older generation than the one running is acked and dropped', () => {
    const { host, transport, live, job } = setUp();
    const connection: Connection = { alive: true };
    host.deliver(transport.deliver(connection), job(2));
    const stale = transport.deliver(connection);
    host.deliver(stale, job(1));
    assert.equal(transport.how(stale), 'ack');
    assert.equal(live.runs, 1);
  });

  it('a duplicate of the running generation is acked and dropped', () => {
    const { host, transport, live, job } = setUp();
    const connection: Connection = { alive: true };
    host.deliver(transport.deliver(connection), job(1));
    const duplicate = transport.deliver(connection);
    host.deliver(duplicate, job(1));
    assert.equal(transport.how(duplicate), 'ack');
    assert.equal(live.runs, 1);
  });

  it('a release stops the copy, acks its job, reports it; a later job of that generation is dropped', async () => {
    const { host, transport, reports, live, observerId, job } = setUp();
    const connection: Connection = { alive: true };
    const held = transport.deliver(connection);
    host.deliver(held, job(1));
    host.release(observerId, 1, 'duplicate');
    await waitFor('the released copy to end', () => reports.stops.length === 1);
    assert.equal(transport.how(held), 'ack');
    assert.deepEqual(
      reports.stops.map((s) => [s.reason, s.generation]),
      [['released', 1]],
    );
    const again = transport.deliver(connection);
    host.deliver(again, job(1));
    assert.equal(transport.how(again), 'ack');
    assert.equal(live.runs, 1);
  });

  it('a release of an older generation leaves a newer copy running', () => {
    const { host, transport, live, observerId, job } = setUp();
    host.deliver(transport.deliver({ alive: true }), job(3));
    host.release(observerId, 2, 'stale-generation');
    assert.equal(live.now, 1);
    assert.deepEqual(host.running().generations, [3]);
  });

  it('a job of a kind the service lacks is parked, said to wait, and handed back after a pause', async () => {
    const { host, transport, observerId, job } = setUp();
    const delivery = transport.deliver({ alive: true });
    host.deliver(delivery, job(1, 'unknown-kind'));
    assert.equal(transport.how(delivery), undefined, 'held during the pause');
    assert.deepEqual(
      host.parked().map((p) => p.observerId),
      [observerId],
    );
    assert.match(host.parked()[0]!.reason, /no kind "unknown-kind"/);
    await waitFor('the parked job to go back', () => transport.how(delivery) === 'requeue');
    assert.deepEqual(host.parked(), []);
    assert.equal(host.held, 0);
  });

  it('a lost connection stops every copy at once and holds nothing', async () => {
    const { host, transport, live, job } = setUp();
    const connection: Connection = { alive: true };
    host.deliver(transport.deliver(connection), job(1));
    connection.alive = false;
    assert.equal(host.connectionLost(), 1);
    assert.equal(host.held, 0);
    assert.deepEqual(host.running().ids, []);
    await waitFor('the run to end', () => live.now === 0);
  });

  it('an invalid job message is dead-lettered', () => {
    const { host, transport } = setUp();
    const delivery = transport.deliver({ alive: true });
    host.deliver(delivery, Buffer.from('{"observerId": 42}'));
    assert.equal(transport.how(delivery), 'dead-letter');
  });
});
