/** An observer's status in the manager's view (the `observers.status` column). */
export const OBSERVER_STATUSES = ['Created', 'Processing', 'Paused', 'OnDeleting', 'Deleted', 'Failed'] as const;
export type ObserverStatus = (typeof OBSERVER_STATUSES)[number];

export const SERVICE_STATUSES = ['Alive', 'Dead'] as const;
export type ServiceStatus = (typeof SERVICE_STATUSES)[number];

/** A service's status in the API: an Alive one that an operator or a SIGTERM drains is `Draining`. */
export const SERVICE_VIEW_STATUSES = ['Alive', 'Draining', 'Dead'] as const;
export type ServiceViewStatus = (typeof SERVICE_VIEW_STATUSES)[number];
