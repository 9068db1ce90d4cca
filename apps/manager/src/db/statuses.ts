/** An observer's status in the manager's view (the `observers.status` column). */
export const OBSERVER_STATUSES = ['Created', 'Processing', 'OnDeleting', 'Deleted', 'Failed'] as const;
export type ObserverStatus = (typeof OBSERVER_STATUSES)[number];

export const SERVICE_STATUSES = ['Alive', 'Dead'] as const;
export type ServiceStatus = (typeof SERVICE_STATUSES)[number];
