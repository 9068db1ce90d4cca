import os from 'node:os';

/**
 * Observers are mostly idle I/O (a socket, a timer), so the ceiling is memory rather than CPU:
 * budget 1 MiB of available memory per observer and at most 1,000 per core.
 */
const MEMORY_PER_OBSERVER = 1024 * 1024;
const OBSERVERS_PER_CORE = 1_000;

export interface MachineReadings {
  /** The host's free memory (os.freemem(): in a container, still the host's). */
  freeBytes: number;
  /** The host's memory (os.totalmem()). */
  totalBytes: number;
  /**
   * The limit the OS puts on this process, a container's memory limit (process.constrainedMemory()).
   * 0 when there is none, or a huge number (2^64, or cgroup v1's "no limit") that exceeds the host's.
   */
  limitBytes: number;
  /** What this process holds already (its resident set): the limit counts it. */
  usedBytes: number;
  cores: number;
}

export function readMachine(): MachineReadings {
  return {
    freeBytes: os.freemem(),
    totalBytes: os.totalmem(),
    limitBytes: process.constrainedMemory(),
    usedBytes: process.memoryUsage.rss(),
    cores: os.availableParallelism(),
  };
}

/** Memory observers may still take: the host's free memory, or less under a limit. */
export function availableMemory({ freeBytes, totalBytes, limitBytes, usedBytes }: MachineReadings): number {
  const limited = limitBytes > 0 && limitBytes < totalBytes;
  if (!limited) return freeBytes;
  return Math.max(0, Math.min(freeBytes, limitBytes - usedBytes));
}

export function resolveCapacity(configured: number | 'auto', machine: MachineReadings = readMachine()): number {
  if (configured !== 'auto') return configured;
  const byMemory = Math.floor(availableMemory(machine) / MEMORY_PER_OBSERVER);
  const byCores = machine.cores * OBSERVERS_PER_CORE;
  return Math.max(1, Math.min(byMemory, byCores, 65_535));
}
