import type { EgressPolicy } from '@vigil/egress';
import type { ObserverKind } from '@vigil/observer-sdk';
import { httpPoll } from './http-poll';
import { ticker } from './ticker';

/** The kinds every service has; `egress` bounds where http-poll may connect. */
export function builtInKinds(egress: EgressPolicy): ObserverKind[] {
  return [ticker, httpPoll(egress)];
}
