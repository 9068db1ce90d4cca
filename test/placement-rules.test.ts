import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import { describe, it } from 'node:test';
import { decidePlacement, type PlacementRow, type Report } from '../apps/manager/src/state/placement-rules';

const [a, b, c] = [randomUUID(), randomUUID(), randomUUID()];
const at = '2026-12-02T12:00:00.000Z';

function row(overrides: Partial<PlacementRow> = {}): PlacementRow {
  return {
    id: randomUUID(),
    status: 'Processing',
    generation: 1,
    serviceId: a,
    runningGeneration: 1,
    contenderServiceId: null,
    contenderSince: null,
    quarantinePending: false,
    movedFrom: null,
    holderAlive: true,
    contenderAlive: false,
    ...overrides,
  };
}

function report(serviceId: string, generation: number, source: Report['source'] = 'start'): Report {
  return { serviceId, observerId: randomUUID(), generation, source, at };
}

describe('manager: which copy of an observer is kept', () => {
  it('a copy of an observer the manager does not know, or deleted, is cancelled', () => {
    assert.deepEqual(decidePlacement(undefined, report(a, 1)), { cancel: true, notes: [] });
    assert.equal(decidePlacement(row({ status: 'Deleted' }), report(a, 1)).cancel, true);
  });

  it('a copy of a paused observer is released on its service, up to its generation only', () => {
    const decision = decidePlacement(row({ status: 'Paused', serviceId: null, runningGeneration: null }), report(b, 1));
    assert.equal(decision.cancel, undefined, 'not a cancel: that would refuse the generation a resume runs');
    assert.deepEqual(
      decision.release && { serviceId: decision.release.serviceId, generation: decision.release.generation },
      { serviceId: b, generation: 1 },
    );
    assert.equal(decision.release?.reason, 'paused');
  });

  it('a crash loop still running somewhere is quarantined again', () => {
    assert.equal(decidePlacement(row({ quarantinePending: true, status: 'Failed' }), report(b, 1)).quarantine, true);
  });

  it('a waiting observer is claimed by the service that reports it', () => {
    const decision = decidePlacement(
      row({ status: 'Created', serviceId: null, runningGeneration: null }),
      report(b, 1),
    );
    assert.equal(decision.next?.status, 'Processing');
    assert.equal(decision.next?.serviceId, b);
    assert.equal(decision.release, undefined);
    assert.equal(decision.notes[0]?.event, 'started');
  });

  it('a copy on a dead service moves to the one that reports it', () => {
    const decision = decidePlacement(row({ holderAlive: false }), report(b, 1));
    assert.equal(decision.next?.serviceId, b);
    assert.equal(decision.notes[0]?.event, 'moved');
  });

  it('a newer generation elsewhere wins: the older copy on its live service is released', () => {
    const decision = decidePlacement(row({ generation: 2 }), report(b, 2));
    assert.equal(decision.next?.serviceId, b);
    assert.equal(decision.next?.runningGeneration, 2);
    assert.deepEqual(
      decision.release && { service: decision.release.serviceId, generation: decision.release.generation },
      { service: a, generation: 1 },
    );
    assert.equal(decision.release?.reason, 'stale-generation');
  });

  it('an older generation surfacing beside a live newer one is released, and nothing else changes', () => {
    const decision = decidePlacement(row({ generation: 2, runningGeneration: 2 }), report(b, 1, 'holding'));
    assert.equal(decision.next, undefined);
    assert.equal(decision.release?.serviceId, b);
    assert.equal(decision.release?.generation, 1);
  });

  it('a planned move: the copy left on the source is released as moved, also when its source lists it late', () => {
    const arrived = decidePlacement(row({ generation: 2, movedFrom: a }), report(b, 2));
    assert.equal(arrived.next?.serviceId, b);
    assert.equal(arrived.release?.serviceId, a);
    assert.equal(arrived.release?.reason, 'moved');
    assert.match(String(arrived.notes[0]?.reason), /^planned move from/);

    const late = decidePlacement(
      row({ generation: 2, serviceId: b, runningGeneration: 2, movedFrom: a }),
      report(a, 1, 'holding'),
    );
    assert.equal(late.release?.reason, 'moved');
    const other = decidePlacement(
      row({ generation: 2, serviceId: b, runningGeneration: 2, movedFrom: a }),
      report(c, 1, 'holding'),
    );
    assert.equal(other.release?.reason, 'stale-generation', 'a copy elsewhere is no part of the move');
  });

  it('the same generation on a second live service: no release until the first proves its copy again', () => {
    const first = decidePlacement(row(), report(b, 1));
    assert.equal(first.release, undefined, 'the first holder may be on a connection the broker already closed');
    assert.equal(first.next?.contenderServiceId, b);
    assert.equal(first.next?.serviceId, a);
    assert.deepEqual(first.askListings, [a], "the holder's listing is asked for at once");

    const contended = row({ contenderServiceId: b, contenderSince: at, contenderAlive: true });
    assert.equal(decidePlacement(contended, report(b, 1, 'holding')).release, undefined, 'the contender again');
    const proven = decidePlacement(contended, report(a, 1, 'holding'));
    assert.equal(proven.release?.serviceId, b, 'the later copy goes');
    assert.equal(proven.release?.reason, 'duplicate');
    assert.equal(proven.next?.contenderServiceId, null);
    assert.equal(proven.next?.serviceId, a);
  });

  it('a third copy while a contention is open waits its turn', () => {
    const contended = row({ contenderServiceId: b, contenderSince: at, contenderAlive: true });
    assert.deepEqual(decidePlacement(contended, report(c, 1)), { notes: [] });
  });

  it('a report from the holder that changes nothing changes nothing', () => {
    assert.deepEqual(decidePlacement(row(), report(a, 1, 'holding')), { notes: [] });
  });

  it('being deleted: wherever it runs, it is cancelled there', () => {
    const decision = decidePlacement(
      row({ status: 'OnDeleting', serviceId: null, runningGeneration: null }),
      report(b, 1),
    );
    assert.equal(decision.cancel, true);
    assert.equal(decision.next?.status, 'OnDeleting');
    assert.equal(decision.next?.serviceId, b);
  });
});
