import type { ReleaseReason } from '@vigil/contracts';
import type { ObserverStatus } from '../db/statuses';

/** A service's word that it runs a copy of an observer. */
export interface Report {
  serviceId: string;
  observerId: string;
  generation: number;
  /** `start`: the copy just began (`observer.started`); `holding`: listed in a birth or heartbeat. */
  source: 'start' | 'holding';
  /** When the service said so, by its clock. */
  at: string;
  /** The broker had delivered the job before (the copy moved here). */
  redelivered?: boolean;
}

/** Where the manager has an observer, as far as placement goes. */
export interface Placement {
  status: ObserverStatus;
  /** The latest generation: the one that should run. */
  generation: number;
  serviceId: string | null;
  /** The generation of the copy on `serviceId`. */
  runningGeneration: number | null;
  /** A second live service reported the same generation; its copy goes once the first proves its own. */
  contenderServiceId: string | null;
  contenderSince: string | null;
}

export interface PlacementRow extends Placement {
  id: string;
  /** The service the last planned move took the observer from (its copy there is released as moved). */
  movedFrom: string | null;
  quarantinePending: boolean;
  /** `serviceId` is a live service. */
  holderAlive: boolean;
  contenderAlive: boolean;
}

export interface Release {
  serviceId: string;
  observerId: string;
  generation: number;
  reason: ReleaseReason;
  /** Since when both copies ran, as far as the manager knows (the later one's report). */
  overlapSince: string;
}

export interface PlacementNote {
  event: string;
  serviceId: string | null;
  generation: number | null;
  reason: string | null;
}

export interface Decision {
  /** The row's new placement, when it changes. */
  next?: Placement;
  /** The reporting service now holds the observer (its last error and wait reason go). */
  claimed?: boolean;
  release?: Release;
  /** It runs where it must not (deleted, being deleted): cancel it. */
  cancel?: boolean;
  /** Found in a crash loop and still running somewhere: cancel it and dead-letter its job. */
  quarantine?: boolean;
  /** Services whose listings settle what this report left open: ask them now. */
  askListings?: string[];
  notes: PlacementNote[];
}

const ACTIVE: readonly ObserverStatus[] = ['Created', 'Processing', 'Paused', 'Failed', 'OnDeleting'];

/**
 * A copy of a paused observer runs (its pause reached the service too late, or its job was
 * delivered after the service forgot the pause): that service releases it. A release, not a
 * cancel: it stops only this generation and older, so the observer can be resumed.
 */
function pausedCopy(row: PlacementRow, report: Report): Decision {
  return {
    release: {
      serviceId: report.serviceId,
      observerId: row.id,
      generation: report.generation,
      reason: 'paused',
      overlapSince: report.at,
    },
    notes: [
      {
        event: 'released',
        serviceId: report.serviceId,
        generation: report.generation,
        reason: 'paused: it must not run',
      },
    ],
  };
}

/**
 * What a report of a running copy changes. The manager keeps one copy of each observer and
 * releases any other: the higher generation stays; at equal generations the copy it recorded
 * first stays (the earlier start in the state queue's order), but only once that copy's service
 * has reported it again after the second appeared. Until then the second copy is a contender: the
 * first may be on a connection the broker has already closed (a frozen or cut-off service), whose
 * job the broker has handed to the second, and releasing the second would lose the job.
 */
export function decidePlacement(row: PlacementRow | undefined, report: Report): Decision {
  if (!row || !ACTIVE.includes(row.status)) return { cancel: true, notes: [] };
  if (row.quarantinePending) return { quarantine: true, notes: [] };
  if (row.status === 'Paused') return pausedCopy(row, report);
  const deleting = row.status === 'OnDeleting';
  const decision = place(row, report);
  if (deleting) {
    decision.cancel = true;
    if (decision.next) decision.next.status = 'OnDeleting';
  }
  return decision;
}

function place(row: PlacementRow, report: Report): Decision {
  const { serviceId, generation, at } = report;
  const current: Placement = {
    status: row.status,
    generation: Math.max(row.generation, generation),
    serviceId: row.serviceId,
    runningGeneration: row.runningGeneration,
    contenderServiceId: row.contenderServiceId,
    contenderSince: row.contenderSince,
  };
  const otherHolder = row.serviceId !== null && row.serviceId !== serviceId && row.holderAlive;

  if (row.serviceId === serviceId) return fromHolder(row, current, report);

  if (!otherHolder) {
    const moved = row.serviceId !== null;
    return {
      next: { ...current, status: 'Processing', serviceId, runningGeneration: generation, ...noContender },
      claimed: true,
      notes: [
        {
          event: moved ? 'moved' : 'started',
          serviceId,
          generation,
          reason: moved
            ? `from ${row.serviceId}`
            : report.source === 'holding'
              ? 'reported running'
              : report.redelivered
                ? 'redelivered'
                : null,
        },
      ],
    };
  }

  const held = row.runningGeneration ?? 0;
  if (generation > held) {
    // A newer generation started: the older copy on the other service goes (the last step of a
    // planned move, when the manager published this generation to move it from there).
    const planned = row.movedFrom === row.serviceId;
    return {
      next: { ...current, status: 'Processing', serviceId, runningGeneration: generation, ...noContender },
      claimed: true,
      release: {
        serviceId: row.serviceId!,
        observerId: row.id,
        generation: held,
        reason: planned ? 'moved' : 'stale-generation',
        overlapSince: at,
      },
      notes: [
        {
          event: 'moved',
          serviceId,
          generation,
          reason: `${planned ? 'planned move ' : ''}from ${row.serviceId} (generation ${held})`,
        },
        {
          event: 'released',
          serviceId: row.serviceId,
          generation: held,
          reason: `${planned ? 'moved' : 'stale generation'}: generation ${generation} runs on ${serviceId}`,
        },
      ],
    };
  }
  if (generation < held) {
    // The source of a planned move may still list its copy until the release reaches it.
    const planned = row.movedFrom === serviceId;
    return {
      ...(current.generation !== row.generation ? { next: current } : {}),
      release: {
        serviceId,
        observerId: row.id,
        generation,
        reason: planned ? 'moved' : 'stale-generation',
        overlapSince: at,
      },
      notes: [
        {
          event: 'released',
          serviceId,
          generation,
          reason: `${planned ? 'moved' : 'stale generation'}: generation ${held} runs on ${row.serviceId}`,
        },
      ],
    };
  }
  // The same generation on two live services.
  if (row.contenderServiceId !== null && row.contenderAlive) return { notes: [] };
  return {
    next: { ...current, contenderServiceId: serviceId, contenderSince: at },
    // The holder's next listing settles it (its copy stays, or it no longer has one): asked for
    // now rather than awaited. (If its copy is gone, the contender is asked in turn.)
    askListings: [row.serviceId!],
    notes: [
      {
        event: 'duplicate',
        serviceId,
        generation,
        reason: `also runs on ${row.serviceId}; the later copy is released once ${row.serviceId} reports its own again`,
      },
    ],
  };
}

/** The recorded holder reports the observer again. */
function fromHolder(row: PlacementRow, current: Placement, report: Report): Decision {
  const { serviceId, generation, at } = report;
  const notes: PlacementNote[] = [];
  let release: Release | undefined;
  const contender = row.contenderServiceId;
  if (contender !== null && row.contenderAlive) {
    // Reported after the contender's copy appeared: this service's copy is live, so the
    // contender's is the duplicate (or, if older now, stale).
    const reason: ReleaseReason = generation === row.runningGeneration ? 'duplicate' : 'stale-generation';
    release = {
      serviceId: contender,
      observerId: row.id,
      generation: row.runningGeneration ?? generation,
      reason,
      overlapSince: row.contenderSince ?? at,
    };
    notes.push({
      event: 'released',
      serviceId: contender,
      generation: release.generation,
      reason: `${reason === 'duplicate' ? 'duplicate' : 'stale generation'}: ${serviceId} runs generation ${generation} and started first`,
    });
  }
  const changed =
    contender !== null ||
    row.runningGeneration !== generation ||
    current.generation !== row.generation ||
    row.status !== 'Processing';
  if (!changed) return { notes };
  if (row.runningGeneration !== generation) {
    notes.push({
      event: 'started',
      serviceId,
      generation,
      reason: `generation ${generation} replaced ${row.runningGeneration} here`,
    });
  }
  return {
    next: { ...current, status: 'Processing', runningGeneration: generation, ...noContender },
    claimed: row.status !== 'Processing',
    ...(release ? { release } : {}),
    notes,
  };
}

const noContender = { contenderServiceId: null, contenderSince: null };
