/**
 * Every broker name Vigil uses, derived from one prefix so that tests and tenants can share
 * a broker. These names are part of Vigil's public contract: tools outside this repository
 * bind to them.
 */
export interface BrokerNames {
  readonly prefix: string;
  /** Durable queue holding one job message per observer of the pool. */
  jobsQueue(pool: string): string;
  /** Durable queue of state events, from services to the manager. */
  readonly stateQueue: string;
  /** Fanout exchange carrying cancels from the manager to every service. */
  readonly controlExchange: string;
  /** A service's own exclusive queue bound to the control exchange. */
  controlQueue(serviceId: string): string;
  /** Topic exchange of observations, routing key `<kind>.<observerId>`. */
  readonly observationsExchange: string;
  /** A manager's own exclusive queue on the observations exchange (`tapId`: a UUID of its own). */
  observationsTap(tapId: string): string;
  /** Where rejected messages go: jobs of failed observers and invalid messages. */
  readonly deadLetterExchange: string;
  readonly deadLetterQueue: string;
}

export const DEFAULT_PREFIX = 'vigil';
export const DEFAULT_POOL = 'default';

export function brokerNames(prefix: string = DEFAULT_PREFIX): BrokerNames {
  return {
    prefix,
    jobsQueue: (pool) => `${prefix}.jobs.${pool}`,
    stateQueue: `${prefix}.state`,
    controlExchange: `${prefix}.control`,
    controlQueue: (serviceId) => `${prefix}.control.${serviceId}`,
    observationsExchange: `${prefix}.observations`,
    observationsTap: (tapId) => `${prefix}.observations-tap.${tapId}`,
    deadLetterExchange: `${prefix}.dead-letter`,
    deadLetterQueue: `${prefix}.dead-letter`,
  };
}

export function observationRoutingKey(kind: string, observerId: string): string {
  return `${kind}.${observerId}`;
}
