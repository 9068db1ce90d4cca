import { Column, Entity, PrimaryColumn, PrimaryGeneratedColumn } from 'typeorm';
import type { KindDescription } from '@vigil/contracts';

export const OBSERVER_STATUSES = ['Created', 'Processing', 'OnDeleting', 'Deleted', 'Failed'] as const;
export type ObserverStatus = (typeof OBSERVER_STATUSES)[number];

export const SERVICE_STATUSES = ['Alive', 'Dead'] as const;
export type ServiceStatus = (typeof SERVICE_STATUSES)[number];

@Entity({ name: 'observers' })
export class ObserverRow {
  @PrimaryColumn('uuid')
  id: string;

  /** Unique among observers not deleted (partial index in the migration). */
  @Column('text')
  name: string;

  @Column('text')
  kind: string;

  @Column('text')
  pool: string;

  @Column('jsonb')
  params: Record<string, unknown>;

  @Column('text')
  status: ObserverStatus;

  /** The service running it now; null while it waits in the queue. */
  @Column('uuid', { name: 'service_id', nullable: true })
  serviceId: string | null;

  @Column('text', { name: 'last_error', nullable: true })
  lastError: string | null;

  /** False between the row's insert and the broker's confirm of its job message. */
  @Column('boolean', { name: 'job_published', default: false })
  jobPublished: boolean;

  @Column('timestamptz', { name: 'cancel_sent_at', nullable: true })
  cancelSentAt: Date | null;

  @Column('timestamptz', { name: 'created_at', default: () => 'now()' })
  createdAt: Date;

  @Column('timestamptz', { name: 'updated_at', default: () => 'now()' })
  updatedAt: Date;
}

/** The timeline: one row per transition or notable event of an observer. */
@Entity({ name: 'observer_events' })
export class ObserverEventRow {
  @PrimaryGeneratedColumn({ type: 'bigint' })
  id: string;

  @Column('uuid', { name: 'observer_id' })
  observerId: string;

  @Column('timestamptz', { default: () => 'now()' })
  at: Date;

  /** What happened: created, started, moved, released, cancel-sent, stopped, failed, deleted. */
  @Column('text')
  event: string;

  /** The observer's status after the event. */
  @Column('text')
  status: ObserverStatus;

  @Column('uuid', { name: 'service_id', nullable: true })
  serviceId: string | null;

  @Column('text', { nullable: true })
  reason: string | null;
}

@Entity({ name: 'services' })
export class ServiceRow {
  @PrimaryColumn('uuid')
  id: string;

  @Column('text')
  name: string;

  @Column('text')
  status: ServiceStatus;

  @Column('int')
  capacity: number;

  @Column('jsonb')
  pools: string[];

  @Column('jsonb')
  kinds: KindDescription[];

  @Column('text', { default: '' })
  version: string;

  @Column('text', { default: '' })
  host: string;

  @Column('int', { default: 0 })
  pid: number;

  @Column('timestamptz', { name: 'started_at', nullable: true })
  startedAt: Date | null;

  @Column('int', { name: 'heartbeat_interval_ms' })
  heartbeatIntervalMs: number;

  @Column('int', { default: 0 })
  running: number;

  @Column('int', { name: 'free_slots', default: 0 })
  freeSlots: number;

  /** When the manager last heard from it (the manager's clock, not the service's). */
  @Column('timestamptz', { name: 'last_seen_at' })
  lastSeenAt: Date;

  @Column('timestamptz', { name: 'died_at', nullable: true })
  diedAt: Date | null;

  @Column('text', { name: 'death_reason', nullable: true })
  deathReason: string | null;
}

export const entities = [ObserverRow, ObserverEventRow, ServiceRow];
