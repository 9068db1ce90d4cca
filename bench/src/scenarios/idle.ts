import { mkdtemp, readdir, rm, stat } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { waitFor } from '@vigil/testkit';
import { cpuSeconds } from '../machine';
import { sleep, type Scenario } from '../scenario';
import { allRunningOn, createTickers, startWorld } from '../vigil';

/** The service's heartbeat for this scenario, ms: what a production service does at rest. */
const HEARTBEAT_MS = 1_000;
/** Tickers that tick once an hour: idle for the length of the measurement. */
const IDLE_INTERVAL_MS = 3_600_000;

/**
 * docs/design.md, Targets: an idle observer costs ≤ 5 KB of heap (10,000 per service in 50 MB).
 * The service reports its memory in every heartbeat; the lowest of several readings (after collections)
 * with N idle tickers, minus the same without any, divided by N.
 */
export const idle: Scenario = {
  name: 'idle',
  title: 'Idle cost per observer',
  description:
    `N tickers that tick once an hour on one service: heap and RSS per observer (lowest of 5 heartbeats after a ` +
    "full collection, against the same service before any observer), and the service's CPU use over 10 s at rest.",
  params: [{ flag: 'idle-n', description: 'idle observers on the service', default: 10_000, quick: 1000 }],
  figures: [
    { name: 'heap bytes per observer', unit: 'bytes', target: { op: '<=', value: 5 * 1024, text: '<= 5 KB' } },
    { name: 'RSS bytes per observer', unit: 'bytes' },
    { name: 'CPU at rest %', unit: '%' },
  ],

  async run(ctx) {
    const n = ctx.params['idle-n'] ?? 10_000;
    const world = await startWorld(ctx);
    const snapshots = await mkdtemp(path.join(os.tmpdir(), 'vigil-bench-heap-'));
    try {
      const service = await world.startService(
        'bench-idle',
        { CAPACITY: String(n), HEARTBEAT_INTERVAL_MS: String(HEARTBEAT_MS), LOG_LEVEL: 'info' },
        { nodeArgs: ['--heapsnapshot-signal=SIGUSR2', `--diagnostic-dir=${snapshots}`] },
      );
      // An idle service allocates too little to start a full collection on its own, so the
      // garbage of starting N observers would count as their cost. A heap snapshot collects first.
      const collectGarbage = async () => {
        service.process.signal('SIGUSR2');
        let last = -1;
        await waitFor(
          'the heap snapshot to be written',
          async () => {
            const files = await readdir(snapshots);
            const size = (await Promise.all(files.map(async (f) => (await stat(path.join(snapshots, f))).size))).reduce(
              (a, b) => a + b,
              0,
            );
            const done = files.length > 0 && size > 0 && size === last;
            last = size;
            return done;
          },
          { timeoutMs: 120_000, intervalMs: 500 },
        );
        for (const file of await readdir(snapshots)) await rm(path.join(snapshots, file));
      };
      const lowestMemory = async () => {
        await collectGarbage();
        let heap = Infinity;
        let rss = Infinity;
        for (let i = 0; i < 5; i++) {
          await sleep(HEARTBEAT_MS);
          const { body } = await world.api<{ memory: { heapUsedBytes: number; rssBytes: number } | null }>(
            'GET',
            `/services/${service.id}`,
          );
          heap = Math.min(heap, body.memory?.heapUsedBytes ?? Infinity);
          rss = Math.min(rss, body.memory?.rssBytes ?? Infinity);
        }
        return { heap, rss };
      };
      const before = await lowestMemory();
      ctx.progress(`creating ${n} idle observers`);
      const { ids } = await createTickers(world, n, IDLE_INTERVAL_MS);
      await allRunningOn(world, ids, service, 600_000);
      const loaded = await lowestMemory();
      const cpuBefore = cpuSeconds(service.process.pid);
      await sleep(10_000);
      const cpuPercent = ((cpuSeconds(service.process.pid) - cpuBefore) / 10) * 100;
      return {
        'heap bytes per observer': (loaded.heap - before.heap) / n,
        'RSS bytes per observer': (loaded.rss - before.rss) / n,
        'CPU at rest %': cpuPercent,
      };
    } finally {
      await world.close();
      await rm(snapshots, { recursive: true, force: true });
    }
  },
};
