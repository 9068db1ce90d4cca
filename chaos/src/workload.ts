import type { World } from '@vigil/testkit';
import type { Rng } from './rng';

/** Both kinds publish every 100 ms, so the observations stream shows where each one runs. */
const KINDS = [
  { kind: 'ticker', params: { intervalMs: 100 } },
  { kind: 'slow-stop', params: { intervalMs: 100, stopDelayMs: 200 } },
] as const;
export const PUBLISH_INTERVAL_MS = 100;

/**
 * What the workload knows of one observer. `uncertain`: the request's answer was lost (the
 * manager died, say), so whether it happened is learnt from the manager once it answers.
 */
export interface Entry {
  name: string;
  kind: string;
  id?: string;
  state: 'live' | 'deleted' | 'create-uncertain' | 'delete-uncertain';
  history: { at: number; what: string }[];
}

export interface ManagerObserver {
  id: string;
  name: string;
  status: string;
  serviceId: string | null;
}

/**
 * Creates and deletes observers all the time, about `target` of them alive, and keeps a ledger
 * of what it asked for and what the manager answered: the suite's idea of what should run.
 */
export class Workload {
  readonly entries = new Map<string, Entry>();
  private running: Promise<void> | undefined;
  private stopRequested = false;
  private serial = 0;

  constructor(
    private readonly world: World,
    private readonly rng: Rng,
    private readonly target: number,
  ) {}

  start(): void {
    this.stopRequested = false;
    this.running ??= this.loop().finally(() => {
      this.running = undefined;
    });
  }

  /** Stops issuing requests; resolves when the one in flight has its answer. */
  async pause(): Promise<void> {
    this.stopRequested = true;
    await this.running;
  }

  /** Takes on an observer created behind the workload's back (by a fault), as live. */
  adopt(name: string, kind: string, id: string): void {
    this.entries.set(name, { name, kind, id, state: 'live', history: [{ at: Date.now(), what: 'adopted' }] });
  }

  live(): Entry[] {
    return [...this.entries.values()].filter((e) => e.state === 'live');
  }

  private async loop(): Promise<void> {
    while (!this.stopRequested) {
      const live = this.live();
      if (live.length < this.target || this.rng.chance(0.5)) await this.create();
      else await this.remove(this.rng.pick(live));
      await new Promise((resolve) => setTimeout(resolve, this.rng.int(50, 300)));
    }
  }

  async create(): Promise<void> {
    const { kind, params } = this.rng.pick(KINDS);
    const entry: Entry = { name: `w-${++this.serial}`, kind, state: 'create-uncertain', history: [] };
    this.entries.set(entry.name, entry);
    try {
      const response = await this.world.api('POST', '/observers', { name: entry.name, kind, params });
      note(entry, `POST ${response.status}`);
      if (response.status === 201) {
        entry.id = String(response.body.id);
        entry.state = 'live';
      } else if (response.status < 500 || response.status === 503) {
        // Refused (a 503 removes what it wrote): it does not exist.
        this.entries.delete(entry.name);
      }
    } catch (err) {
      note(entry, `POST failed: ${(err as Error).message}`);
    }
  }

  async remove(entry: Entry): Promise<void> {
    entry.state = 'delete-uncertain';
    try {
      const response = await this.world.api('DELETE', `/observers/${entry.id}`);
      note(entry, `DELETE ${response.status}`);
      if (response.status === 202 || response.status === 410) entry.state = 'deleted';
      else if (response.status < 500) throw new Error(`DELETE ${entry.name}: ${response.status}`);
    } catch (err) {
      note(entry, `DELETE failed: ${(err as Error).message}`);
    }
  }

  /**
   * With the workload paused: settles what is uncertain, from the manager's list (a create it
   * committed exists; a delete is simply sent again, as a user would).
   */
  async settle(observers: readonly ManagerObserver[]): Promise<void> {
    const byName = new Map<string, ManagerObserver>();
    for (const o of observers) if (o.status !== 'Deleted' || !byName.has(o.name)) byName.set(o.name, o);
    for (const entry of this.entries.values()) {
      if (entry.state === 'create-uncertain') {
        const known = byName.get(entry.name);
        if (known && known.status !== 'Deleted') {
          entry.id = known.id;
          entry.state = 'live';
          note(entry, 'found in the manager after a lost answer');
        } else {
          this.entries.delete(entry.name);
        }
      }
      if (entry.state === 'delete-uncertain') await this.remove(entry);
    }
  }
}

function note(entry: Entry, what: string): void {
  entry.history.push({ at: Date.now(), what });
}
