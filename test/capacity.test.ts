/**
 * CAPACITY=auto: observers by the memory left to the process (the host's free memory, or its
 * container's limit less what the process holds) and by cores, with readings given.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { availableMemory, readMachine, resolveCapacity } from '../apps/observer-service/src/capacity';

const MiB = 1024 * 1024;
const GiB = 1024 * MiB;

/** A roomy 16-core host with 8 GiB free, no limit, 100 MiB held. */
const host = { freeBytes: 8 * GiB, totalBytes: 32 * GiB, limitBytes: 0, usedBytes: 100 * MiB, cores: 16 };

describe('CAPACITY', () => {
  it('keeps a configured number as it is', () => {
    assert.equal(resolveCapacity(7, host), 7);
  });

  it('auto without a limit: the host free memory, 1 MiB an observer', () => {
    assert.equal(resolveCapacity('auto', { ...host, freeBytes: 300 * MiB }), 300);
  });

  it('auto under a container limit: the limit less what the process holds', () => {
    const machine = { ...host, limitBytes: 1 * GiB, usedBytes: 124 * MiB };
    assert.equal(availableMemory(machine), 900 * MiB);
    assert.equal(resolveCapacity('auto', machine), 900);
  });

  it('auto takes the host free memory when it is below the limit', () => {
    assert.equal(resolveCapacity('auto', { ...host, freeBytes: 200 * MiB, limitBytes: 1 * GiB }), 200);
  });

  it('reads "no limit" both ways: 0, and a number above the host memory (2^64, cgroup v1)', () => {
    for (const limitBytes of [0, 2 ** 64, 9_223_372_036_854_771_712]) {
      assert.equal(availableMemory({ ...host, limitBytes }), host.freeBytes, `limit ${limitBytes}`);
    }
  });

  it('auto is at least 1, even with the limit used up', () => {
    assert.equal(resolveCapacity('auto', { ...host, limitBytes: 256 * MiB, usedBytes: 300 * MiB }), 1);
  });

  it('auto is at most 1,000 per core and 65,535', () => {
    assert.equal(resolveCapacity('auto', { ...host, freeBytes: 64 * GiB, totalBytes: 128 * GiB, cores: 2 }), 2_000);
    assert.equal(
      resolveCapacity('auto', { ...host, freeBytes: 512 * GiB, totalBytes: 1024 * GiB, cores: 128 }),
      65_535,
    );
  });

  it('reads this machine: a limit, if any, of this process and its own use', () => {
    const machine = readMachine();
    assert.ok(machine.totalBytes > 0 && machine.freeBytes <= machine.totalBytes);
    assert.ok(machine.usedBytes > 0 && machine.cores >= 1);
    assert.ok(availableMemory(machine) <= machine.freeBytes);
  });
});
