import { execFile } from 'node:child_process';
import { readdir, stat } from 'node:fs/promises';
import path from 'node:path';
import { promisify } from 'node:util';

const run = promisify(execFile);

/** Runs `rabbitmqctl <args>` against the node measured and returns its stdout (a private node's `ctl`). */
export type Rabbitmqctl = (args: string[]) => Promise<string>;

/** `rabbitmqctl` of this machine's own node: the bench's shared broker. */
export const localRabbitmqctl: Rabbitmqctl = async (args) =>
  (await run('rabbitmqctl', args, { timeout: 60_000 })).stdout;

/**
 * The broker's own view of itself, through `rabbitmqctl` and the file system of the broker's
 * machine (the bench's broker is local).
 */
export interface BrokerSample {
  /** The node's memory as it counts it for its memory alarm (`vm_memory_calculation_strategy`, RSS by default). */
  memoryBytes: number;
  /** What the Erlang VM has allocated, from the same status report. */
  erlangBytes: number;
  /** `du -sb` of the node's data directory (the mnesia dir: message stores, queue indices, Raft logs). */
  dataDirBytes: number;
  /** Of that, the Raft write-ahead log (`*.wal`), shared by every quorum queue of the node. */
  walBytes: number;
  /** Of that, the rest of the Raft files: the quorum queues' log segments, snapshots and metadata. */
  segmentBytes: number;
  /** Per queue asked for: the queue process's memory, and its ready and unacked messages. */
  queues: Record<string, { memoryBytes: number; ready: number; unacked: number }>;
}

async function json<T>(ctl: Rabbitmqctl, args: readonly string[]): Promise<T> {
  return JSON.parse(await ctl([...args, '--formatter', 'json'])) as T;
}
interface Status {
  data_directory: string;
  vm_memory_calculation_strategy: string;
  memory: { total: Record<string, number> };
}

interface QueueRow {
  name: string;
  memory: number;
  messages_ready: number;
  messages_unacknowledged: number;
}

/** `du -sb`; a file the broker removes mid-walk makes du complain, but its total still stands. */
async function du(dir: string): Promise<number> {
  const output = await run('du', ['-sb', dir]).catch((error: Error & { stdout?: string }) => {
    if (!error.stdout) throw error;
    return { stdout: error.stdout };
  });
  const bytes = Number(output.stdout.split('\t')[0]);
  if (!Number.isFinite(bytes)) throw new Error(`du -sb ${dir} said ${JSON.stringify(output.stdout)}`);
  return bytes;
}

/**
 * The Raft files under the data directory's `quorum/`: the write-ahead log (`*.wal`, shared by
 * every quorum queue of the node, cleared only when it rolls over) and the rest (each queue's log
 * segments, snapshots, metadata). A file the broker removes mid-walk counts 0.
 */
async function raftBytes(dataDir: string): Promise<{ wal: number; rest: number }> {
  const totals = { wal: 0, rest: 0 };
  const dir = path.join(dataDir, 'quorum');
  const entries = await readdir(dir, { recursive: true, withFileTypes: true }).catch(() => []);
  for (const entry of entries) {
    if (!entry.isFile()) continue;
    const size = await stat(path.join(entry.parentPath, entry.name)).then(
      (s) => s.size,
      () => 0,
    );
    if (entry.name.endsWith('.wal')) totals.wal += size;
    else totals.rest += size;
  }
  return totals;
}

export type QueueSample = BrokerSample['queues'][string];

/**
 * The queues' memory and message counts. The broker updates them every few seconds (quorum
 * queues lazily), so counts may lag behind what happened.
 */
export async function sampleQueues(ctl: Rabbitmqctl, queues: readonly string[]): Promise<Record<string, QueueSample>> {
  const rows = await json<QueueRow[]>(ctl, [
    'list_queues',
    'name',
    'memory',
    'messages_ready',
    'messages_unacknowledged',
  ]);
  const samples: Record<string, QueueSample> = {};
  for (const name of queues) {
    const row = rows.find((r) => r.name === name);
    if (!row) throw new Error(`rabbitmqctl list_queues has no queue ${name}`);
    samples[name] = { memoryBytes: row.memory, ready: row.messages_ready, unacked: row.messages_unacknowledged };
  }
  return samples;
}

/**
 * Samples the node. With `gc`, every Erlang process on the node runs a full collection first
 * (`rabbitmqctl force_gc`), so that what is compared is memory held, not garbage not yet swept.
 */
export async function sampleBroker(
  ctl: Rabbitmqctl,
  queues: readonly string[],
  { gc = false } = {},
): Promise<BrokerSample> {
  if (gc) await ctl(['force_gc']);
  const status = await json<Status>(ctl, ['status']);
  const [queueSamples, dataDirBytes, raft] = await Promise.all([
    sampleQueues(ctl, queues),
    du(status.data_directory),
    raftBytes(status.data_directory),
  ]);
  const total = status.memory.total;
  return {
    memoryBytes: total[status.vm_memory_calculation_strategy] ?? total.rss ?? NaN,
    erlangBytes: total.erlang ?? NaN,
    dataDirBytes,
    walBytes: raft.wal,
    segmentBytes: raft.rest,
    queues: queueSamples,
  };
}
