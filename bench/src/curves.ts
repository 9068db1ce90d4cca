/**
 * The sizes the curve scenarios measure and the names of their figures, in one place: the
 * scenarios return the figures under these names and plot.ts finds them by the same names (in a
 * report, too, without running anything). No imports beyond scenario.ts, so the plot stays light.
 */
import { oneTwoFive, type Figure } from './scenario';

const count = (n: number) => n.toLocaleString('en-US');

/** Observers on the killed service, for each point of `failover-curve`. */
export function failoverCurveSizes(params: Readonly<Record<string, number>>): number[] {
  return oneTwoFive(params['failover-curve-from'] ?? 1000, params['failover-curve-to'] ?? 20_000);
}

/** `failover-curve`'s figures for N observers. */
export const failoverCurveFigure = {
  allRunning: (n: number) => `N ${count(n)}: all running elsewhere ms`,
  perObserver: (n: number) => `N ${count(n)}: µs per observer`,
  observedFloor: (n: number) => `N ${count(n)}: observed floor ms`,
  ratio: (n: number) => `N ${count(n)}: ratio to observed floor`,
};

export function failoverCurveFigures(params: Readonly<Record<string, number>>): Figure[] {
  return failoverCurveSizes(params).flatMap((n): Figure[] => [
    { name: failoverCurveFigure.allRunning(n), unit: 'ms' },
    { name: failoverCurveFigure.perObserver(n), unit: 'µs' },
    { name: failoverCurveFigure.observedFloor(n), unit: 'ms' },
    { name: failoverCurveFigure.ratio(n), unit: 'ratio' },
  ]);
}

/** Observers already in the database before each batch of `create-curve`: none, then the 1-2-5 sizes. */
export function createCurveSizes(params: Readonly<Record<string, number>>): number[] {
  return [0, ...oneTwoFive(params['create-curve-from'] ?? 10_000, params['create-curve-to'] ?? 100_000)];
}

/** `create-curve`'s figures with `existing` observers in the database. */
export const createCurveFigure = {
  perSecond: (existing: number) => `${count(existing)} existing: creates per s`,
  p99: (existing: number) => `${count(existing)} existing: POST p99 ms`,
};

export function createCurveFigures(params: Readonly<Record<string, number>>): Figure[] {
  return createCurveSizes(params).flatMap((existing): Figure[] => [
    { name: createCurveFigure.perSecond(existing), unit: 'per s' },
    { name: createCurveFigure.p99(existing), unit: 'ms' },
  ]);
}
