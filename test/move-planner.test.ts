import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { planRebalance, type PoolMember } from '../apps/manager/src/move-planner';

const member = (serviceId: string, running: number, capacity = 2_000): PoolMember => ({ serviceId, capacity, running });

describe('planRebalance', () => {
  it('a service joining two full ones gets a third of the observers, shed evenly by the two', () => {
    const plan = planRebalance([member('a', 1_000), member('b', 1_000), member('c', 0)], 0.1, 10_000);
    assert.deepEqual(plan, [
      { serviceId: 'a', count: 333 },
      { serviceId: 'b', count: 333 },
    ]);
  });

  it('shares follow capacity', () => {
    const plan = planRebalance([member('big', 300, 300), member('small', 0, 100)], 0.1, 1_000);
    assert.deepEqual(plan, [{ serviceId: 'big', count: 75 }]);
  });

  it('within the tolerance, or with one observer too few to split, nothing moves', () => {
    assert.deepEqual(planRebalance([member('a', 105), member('b', 95)], 0.1, 1_000), []);
    assert.deepEqual(planRebalance([member('a', 2), member('b', 1)], 0.1, 1_000), []);
    assert.deepEqual(planRebalance([member('a', 1), member('b', 0)], 0.1, 1_000), []);
  });

  it('the budget caps a pass, split in proportion to each excess', () => {
    const plan = planRebalance([member('a', 900), member('b', 600), member('c', 0)], 0.1, 100);
    const total = plan.reduce((sum, p) => sum + p.count, 0);
    assert.equal(total, 100);
    assert.ok(plan.find((p) => p.serviceId === 'a')!.count > plan.find((p) => p.serviceId === 'b')!.count);
  });

  it('never moves more than the services under their share can take: no oscillation', () => {
    // Shares are 50 each: c is 10 under, b is at its share, a is 10 over.
    const plan = planRebalance([member('a', 60), member('b', 50), member('c', 40)], 0.1, 1_000);
    assert.deepEqual(plan, [{ serviceId: 'a', count: 10 }]);
    // Applying the plan leaves nothing to do.
    assert.deepEqual(planRebalance([member('a', 50), member('b', 50), member('c', 50)], 0.1, 1_000), []);
  });

  it('shares are whole: services just above a fractional share shed, so a joiner is not left short', () => {
    // 31 observers on 5 services: 6.2 each. One keeps 7; the other three shed one each.
    const members = [member('a', 7), member('b', 7), member('c', 7), member('d', 7), member('e', 3)];
    assert.deepEqual(planRebalance(members, 0.1, 1_000), [
      { serviceId: 'b', count: 1 },
      { serviceId: 'c', count: 1 },
      { serviceId: 'd', count: 1 },
    ]);
    const after = [member('a', 7), member('b', 6), member('c', 6), member('d', 6), member('e', 6)];
    assert.deepEqual(planRebalance(after, 0.1, 1_000), []);
  });

  it('a lone service, or an empty pool, has nothing to rebalance', () => {
    assert.deepEqual(planRebalance([member('a', 100)], 0.1, 1_000), []);
    assert.deepEqual(planRebalance([member('a', 0), member('b', 0)], 0.1, 1_000), []);
  });
});
