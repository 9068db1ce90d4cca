import { execFile } from 'node:child_process';
import { promisify } from 'node:util';

const run = promisify(execFile);

/**
 * The broker's own view of itself, through `rabbitmqctl` and `du` on the broker's machine (the
 * bench's broker is local). `rabbitmqctl` talks to the node named by `RABBITMQ_NODENAME`, or the
 * local default node, and must run as root or as the `rabbitmq` user (it needs the Erlang cookie).
 */
export interface BrokerSample {
  /** The node's memory as it counts it for its memory alarm (`vm_memory_calculation_strategy`, RSS by default). */
  memoryBytes: number;
  /** What the Erlang VM has allocated, from the same status report. */
  erlangBytes: number;
  /** `du -sb` of the node's data directory (the mnesia dir: message stores, queue indices, Raft logs). */
  dataDirBytes: number;
  /** Per queue asked for: the queue process's memory, and its ready and unacked messages. */
  queues: Record<string, { memoryBytes: number; ready: number; unacked: number }>;
}

async function rabbitmqctl<T>(args: readonly string[]): Promise<T> {
  const { stdout } = await run('rabbitmqctl', [...args, '--formatter', 'json'], { maxBuffer: 64 * 1024 * 1024 });
  return JSON.parse(stdout) as T;
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

/** Fails with a clear message if `rabbitmqctl` cannot reach the node (not installed, not root, …). */
export async function checkRabbitmqctl(): Promise<void> {
  try {
    await rabbitmqctl<Status>(['status']);
  } catch (error) {
    throw new Error(
      `rabbitmqctl status failed; this scenario reads the broker's memory and data directory through it ` +
        `(run the bench as root or the rabbitmq user, on the broker's machine): ${(error as Error).message}`,
    );
  }
}

export type QueueSample = BrokerSample['queues'][string];

/**
 * The queues' memory and message counts. The broker updates them every few seconds (quorum
 * queues lazily), so counts may lag behind what happened.
 */
export async function sampleQueues(queues: readonly string[]): Promise<Record<string, QueueSample>> {
  const rows = await rabbitmqctl<QueueRow[]>([
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
export async function sampleBroker(queues: readonly string[], { gc = false } = {}): Promise<BrokerSample> {
  if (gc) await run('rabbitmqctl', ['force_gc']);
  const status = await rabbitmqctl<Status>(['status']);
  const [queueSamples, dataDirBytes] = await Promise.all([sampleQueues(queues), du(status.data_directory)]);
  const total = status.memory.total;
  return {
    memoryBytes: total[status.vm_memory_calculation_strategy] ?? total.rss ?? NaN,
    erlangBytes: total.erlang ?? NaN,
    dataDirBytes,
    queues: queueSamples,
  };
}
