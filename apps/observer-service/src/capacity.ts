import os from 'node:os';

/**
 * Observers are mostly idle I/O (a socket, a timer), so the ceiling is memory rather than CPU:
 * budget 1 MiB of free memory per observer and at most 1,000 per core.
 */
const MEMORY_PER_OBSERVER = 1024 * 1024;
const OBSERVERS_PER_CORE = 1_000;

export function resolveCapacity(configured: number | 'auto'): number {
  if (configured !== 'auto') return configured;
  const byMemory = Math.floor(os.freemem() / MEMORY_PER_OBSERVER);
  const byCores = os.availableParallelism() * OBSERVERS_PER_CORE;
  return Math.max(1, Math.min(byMemory, byCores, 65_535));
}
