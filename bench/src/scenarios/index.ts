import type { Scenario } from '../scenario';
import { bullmq } from './bullmq';
import { cancel } from './cancel';
import { catchUp } from './catch-up';
import { churnScenarios } from './churn';
import { create } from './create';
import { failoverFrozen } from './failover-frozen';
import { failoverKill } from './failover-kill';
import { handoff } from './handoff';
import { idle } from './idle';
import { floor } from './floor';

/**
 * Every scenario, in report order. To add one: write scenarios/<name>.ts exporting a `Scenario`
 * (or an array of them) and list it here. `needs` pulls in and orders dependencies by itself.
 */
export const scenarios: Scenario[] = [
  floor,
  failoverKill,
  failoverFrozen,
  handoff,
  cancel,
  create,
  catchUp,
  idle,
  ...churnScenarios,
  ...bullmq,
];
