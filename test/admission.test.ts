import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { admit, type AdmissionInput } from '../apps/observer-service/src/admission';

function input(overrides: Partial<AdmissionInput> = {}): AdmissionInput {
  return {
    generation: 1,
    stopping: false,
    note: undefined,
    held: undefined,
    full: false,
    kindKnown: true,
    paramsError: undefined,
    ...overrides,
  };
}

describe('observer service: what becomes of a delivered job', () => {
  it('starts a job it holds nothing of', () => {
    assert.deepEqual(admit(input()), { action: 'start' });
  });

  it('hands jobs straight back while shutting down, before anything else', () => {
    assert.deepEqual(admit(input({ stopping: true, note: { cancel: { deadLetter: false } } })), {
      action: 'requeue',
      why: 'stopping',
    });
  });

  it('settles the job of a cancelled observer as the cancel said', () => {
    assert.deepEqual(admit(input({ note: { cancel: { deadLetter: true } } })), {
      action: 'cancelled',
      deadLetter: true,
    });
  });

  it('a pause cancels only the generations up to its own: a later one, once resumed, runs', () => {
    const note = { cancel: { deadLetter: false, upTo: 2 } };
    assert.deepEqual(admit(input({ generation: 2, note })), { action: 'cancelled', deadLetter: false });
    assert.deepEqual(admit(input({ generation: 3, note })), { action: 'start' });
  });

  it('drops a generation it was told to release, and older ones', () => {
    assert.deepEqual(admit(input({ generation: 2, note: { floor: 3 } })), { action: 'drop', why: 'stale' });
    assert.deepEqual(admit(input({ generation: 3, note: { floor: 3 } })), { action: 'start' });
  });

  it('never runs two generations: older than held is dropped, newer supersedes, equal is a duplicate', () => {
    const held = { generation: 2, live: true, state: 'running', sameRun: false } as const;
    assert.deepEqual(admit(input({ generation: 1, held })), { action: 'drop', why: 'stale' });
    assert.deepEqual(admit(input({ generation: 2, held })), { action: 'drop', why: 'duplicate' });
    assert.deepEqual(admit(input({ generation: 3, held })), { action: 'supersede' });
  });

  it('adopts a newer generation of the same run in place, only while that run is running', () => {
    const running = { generation: 2, live: true, state: 'running', sameRun: true } as const;
    assert.deepEqual(admit(input({ generation: 3, held: running })), { action: 'adopt' });
    assert.deepEqual(admit(input({ generation: 3, held: { ...running, state: 'parked' } })), { action: 'supersede' });
    assert.deepEqual(admit(input({ generation: 3, held: { ...running, state: 'stopping' } })), { action: 'wait' });
    assert.deepEqual(admit(input({ generation: 3, held: { ...running, live: false } })), { action: 'wait' });
  });

  it('waits for a copy still ending after a lost connection, even of the same generation', () => {
    assert.deepEqual(admit(input({ held: { generation: 1, live: false, state: 'stopping', sameRun: true } })), {
      action: 'wait',
    });
    assert.deepEqual(
      admit(input({ generation: 2, held: { generation: 1, live: true, state: 'stopping', sameRun: true } })),
      {
        action: 'wait',
      },
    );
  });

  it('parks a job of a kind it lacks, and rejects params that can never run', () => {
    assert.deepEqual(admit(input({ kindKnown: false })), { action: 'park' });
    assert.deepEqual(admit(input({ paramsError: 'intervalMs: too small' })), {
      action: 'reject',
      error: 'intervalMs: too small',
    });
  });

  it('a full service (several pools) hands the job back', () => {
    assert.deepEqual(admit(input({ full: true })), { action: 'requeue', why: 'full' });
  });
});
