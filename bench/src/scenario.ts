import { performance } from 'node:perf_hooks';

/** One number a scenario measures in every run; the report shows its median, min and max over the runs. */
export interface Figure {
  name: string;
  unit: 'ms' | 'per s' | 'bytes' | 'ratio' | (string & {});
  /** A target (see docs/design.md, Targets); the report says whether the median meets it. */
  target?: { op: '<=' | '>='; value: number; text: string };
}

/** A size flag, e.g. `--floor-n 1000`. Flags are global: scenarios declaring the same flag share its value. */
export interface Param {
  flag: string;
  description: string;
  default: number;
  /** The value with `--quick` (unless the flag is given). */
  quick: number;
}

/** `[ms since the event (a kill, say), value]`, e.g. observers running on the survivor. */
export type TimelinePoint = [number, number];

export interface ScenarioContext {
  /** 1-based run number. */
  readonly run: number;
  readonly quick: boolean;
  /** Every size flag's value (all scenarios' flags), e.g. `params['floor-n']`. */
  readonly params: Readonly<Record<string, number>>;
  /** The values measured by each scenario named in `needs`, in this same run. */
  readonly needs: Readonly<Record<string, Readonly<Record<string, number>>>>;
  readonly env: Readonly<BenchEnv>;
  /** A progress line on stderr, prefixed with the scenario and run. */
  progress(message: string): void;
  /** Stores a time series for this run in latest.json (for plots). */
  timeline(name: string, points: readonly TimelinePoint[]): void;
  /** Names this run created (queues, Redis prefixes), kept in latest.json so cleanup can be checked. */
  resource(kind: 'amqp-queue' | 'redis-prefix' | (string & {}), name: string): void;
  /** A unique, recognisable name for this run's broker or Redis objects. */
  uniqueName(label: string): string;
}

export interface BenchEnv {
  amqpUrl: string;
  redisUrl: string;
  databaseUrl: string;
}

export interface Scenario {
  /** Short name used by `--only` and in the report, e.g. `floor`. */
  name: string;
  /** Human title, e.g. `Floor: bare amqplib`. */
  title: string;
  /** How it measures, one or two sentences (goes to the report). */
  description?: string;
  /**
   * What a run returns. A curve, whose points are the sizes its flags span, names a figure per
   * point: it gives a function of the size flags' values.
   */
  figures: Figure[] | ((params: Readonly<Record<string, number>>) => Figure[]);
  params?: Param[];
  /** Scenarios whose values of the same run this one reads (`ctx.needs[name]`); they run first. */
  needs?: string[];
  /** Part of `--quick` runs without `--only`? Default true. */
  quick?: boolean;
  /** One run: figure name → value. Must clean up everything it created, also when it throws. */
  run(ctx: ScenarioContext): Promise<Record<string, number>>;
}

/** The scenario's figures for these size flags' values. */
export function figuresOf(scenario: Scenario, params: Readonly<Record<string, number>>): Figure[] {
  return typeof scenario.figures === 'function' ? scenario.figures(params) : scenario.figures;
}

/**
 * The 1-2-5 sizes from `from` to `to` (both included when they are such sizes): 1,000 to 20,000
 * gives 1,000, 2,000, 5,000, 10,000, 20,000, points evenly spread on a log axis.
 */
export function oneTwoFive(from: number, to: number): number[] {
  const sizes: number[] = [];
  for (let decade = 10 ** Math.floor(Math.log10(from)); decade <= to; decade *= 10)
    for (const step of [1, 2, 5]) {
      const size = step * decade;
      if (size >= from && size <= to) sizes.push(size);
    }
  return sizes;
}

export function median(values: readonly number[]): number {
  if (values.length === 0) return NaN;
  const sorted = [...values].sort((a, b) => a - b);
  const middle = Math.floor(sorted.length / 2);
  return sorted.length % 2 === 1 ? sorted[middle]! : (sorted[middle - 1]! + sorted[middle]!) / 2;
}

export function min(values: readonly number[]): number {
  return values.length === 0 ? NaN : Math.min(...values);
}

export function max(values: readonly number[]): number {
  return values.length === 0 ? NaN : Math.max(...values);
}

/** Milliseconds since `since` (a `performance.now()` value), to 0.1 ms. */
export function elapsedMs(since: number): number {
  return Math.round((performance.now() - since) * 10) / 10;
}

/**
 * Records a count over time from a start instant (e.g. jobs running on the survivor since the kill).
 * Keeps the last value per 0.1 ms, so a burst of 1,000 deliveries stays a short list.
 */
export class Series {
  readonly points: TimelinePoint[] = [];
  private startedAt = performance.now();

  /** Sets time zero (call right before the event) and records `value` at it. */
  start(value = 0): void {
    this.startedAt = performance.now();
    this.points.length = 0;
    this.points.push([0, value]);
  }

  record(value: number): void {
    const at = elapsedMs(this.startedAt);
    const last = this.points[this.points.length - 1];
    if (last && last[0] === at) last[1] = value;
    else this.points.push([at, value]);
  }

  /** Milliseconds since `start()`. */
  elapsed(): number {
    return elapsedMs(this.startedAt);
  }
}

export function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}
