/**
 * The shape of latest.json: what `main.ts` writes and `plot.ts` reads. Types only, so anything can
 * import it without starting the harness.
 */
import type { Machine } from './machine';
import type { BenchEnv, Figure, TimelinePoint } from './scenario';

export interface RunRecord {
  run: number;
  startedAt: string;
  durationMs: number;
  values: Record<string, number>;
  timelines: Record<string, TimelinePoint[]>;
  resources: { kind: string; name: string }[];
  error?: string;
}

export interface FigureResult extends Figure {
  runs: number[];
  median: number | null;
  min: number | null;
  max: number | null;
  met: boolean | null;
}

export interface ScenarioResult {
  name: string;
  title: string;
  description?: string;
  needs: string[];
  /** The size flags this scenario declares, with the values used. */
  params: Record<string, number>;
  figures: FigureResult[];
  runs: RunRecord[];
}

export interface Report {
  startedAt: string;
  finishedAt: string;
  machine: Machine;
  args: { argv: string[]; quick: boolean; only: string[] | null; runs: number; params: Record<string, number> };
  env: BenchEnv;
  scenarios: ScenarioResult[];
}
