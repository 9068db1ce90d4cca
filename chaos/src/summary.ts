import type { ChaosReport } from './run';

export interface KindSummary {
  kind: string;
  faults: number;
  convergedMedianMs: number | null;
  convergedMaxMs: number | null;
  /** Longest time an observer ran on two services at once after a fault of this kind, outside planned moves. */
  doubleMaxMs: number;
  /** Longest time a planned move ran both its copies after a fault of this kind. */
  plannedOverlapMaxMs: number;
  /** Longest time an observer that should run ran nowhere after a fault of this kind. */
  nowhereMaxMs: number;
  failed: number;
}

function median(values: number[]): number | null {
  if (values.length === 0) return null;
  const sorted = [...values].sort((a, b) => a - b);
  const mid = Math.floor(sorted.length / 2);
  return sorted.length % 2 ? sorted[mid]! : (sorted[mid - 1]! + sorted[mid]!) / 2;
}

/**
 * Per fault kind: how many, time to converge (median, max), the worst double run outside planned
 * moves, the worst planned overlap, and the worst nowhere window.
 */
export function summarize(report: ChaosReport): KindSummary[] {
  const kinds = [...new Set(report.faults.map((f) => f.kind))].sort();
  return kinds.map((kind) => {
    const faults = report.faults.filter((f) => f.kind === kind);
    const converged = faults.flatMap((f) => (f.convergedMs === null ? [] : [f.convergedMs]));
    return {
      kind,
      faults: faults.length,
      convergedMedianMs: median(converged),
      convergedMaxMs: converged.length > 0 ? Math.max(...converged) : null,
      doubleMaxMs: Math.max(0, ...faults.map((f) => f.doubleMs)),
      plannedOverlapMaxMs: Math.max(0, ...faults.map((f) => f.plannedOverlapMs ?? 0)),
      nowhereMaxMs: Math.max(0, ...faults.map((f) => f.nowhereMs)),
      failed: faults.length - converged.length,
    };
  });
}

const ms = (value: number | null) => (value === null ? '—' : `${Math.round(value).toLocaleString('en-US')} ms`);

/** The summary as a Markdown table. */
export function table(report: ChaosReport): string {
  const lines = [
    `Seed ${report.seed}${report.options.cluster ? ' (cluster)' : ''}: ${report.faults.length} faults, ${report.passed ? 'passed' : '**failed**'}.`,
    '',
    '| fault | n | converged, median | converged, max | longest double run | longest planned overlap | longest nowhere | failed |',
    '| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: |',
    ...summarize(report).map(
      (s) =>
        `| ${s.kind} | ${s.faults} | ${ms(s.convergedMedianMs)} | ${ms(s.convergedMaxMs)} | ${ms(s.doubleMaxMs)} | ` +
        `${ms(s.plannedOverlapMaxMs)} | ` +
        `${ms(s.nowhereMaxMs)} | ${s.failed} |`,
    ),
  ];
  return lines.join('\n');
}
