/**
 * Outgoing requests made on a user's behalf (http-poll), kept away from the deployment's own
 * network: an address policy with an allow-list, and a GET that connects only where it allows.
 */
export { parseCidr, type Cidr } from './address';
export {
  ALLOW_VARIABLE,
  describeRefusal,
  EGRESS_URL_KEYWORD,
  EgressPolicy,
  literalRefusal,
  type Refusal,
} from './policy';
export { EgressRefused, guardedGet, type GuardedGetOptions, type GuardedResponse, type Resolve } from './guarded-get';
