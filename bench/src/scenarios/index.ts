import type { Scenario } from '../scenario';
import { bullmq } from './bullmq';
import { cancel } from './cancel';
import { catchUp } from './catch-up';
import { churnScenarios } from './churn';
import { create } from './create';
import { createCurve } from './create-curve';
import { failoverCurve } from './failover-curve';
import { failoverFrozen } from './failover-frozen';
import { eventsFlat } from './events-flat';
import { failoverKill } from './failover-kill';
import { fleet } from './fleet';
import { handoff, handoffExclusive } from './handoff';
import { idle } from './idle';
import { rebalance } from './rebalance';
import { floor } from './floor';
import { floorObserved } from './floor-observed';

/**
 * Every scenario, in report order. To add one: write scenarios/<name>.ts exporting a `Scenario`
 * (or an array of them) and list it here. `needs` pulls in and orders dependencies by itself.
 */
export const scenarios: Scenario[] = [
  floor,
  floorObserved,
  failoverKill,
  failoverCurve,
  failoverFrozen,
  handoff,
  handoffExclusive,
  rebalance,
  cancel,
  create,
  createCurve,
  catchUp,
  fleet,
  eventsFlat,
  idle,
  ...churnScenarios,
  ...bullmq,
];
