/**
 * Bad input at volume, over AMQP: thousands of malformed messages (seeded) on every queue the
 * apps consume — the state queue (manager), the jobs queue (services) and, through the control
 * fanout exchange, every service's control queue — while observers run. Then, from outside:
 * every app still runs, every consumer is still attached, the garbage was dead-lettered (state,
 * jobs) or dropped (control) with a log line each, nothing of it is left in the queues, and the
 * observers that ran before run exactly once, on the same service, as the manager says.
 */
import fc from 'fast-check';
import { connect, type Channel, type ConfirmChannel, type Options } from '@vigil/broker';
import { ControlMessage, JobMessage, StateEvent, decodeMessage } from '@vigil/contracts';
import { waitFor, type AppProcess, type World } from '@vigil/testkit';

export interface FloodOptions {
  /** Malformed messages per destination (state queue, jobs queue, control exchange). */
  perQueue: number;
  seed: number;
  /** Tickers running during the flood, whose placement must not change (default 10). */
  observers?: number;
  /** Of `perQueue`, how many are ~1 MB (default 2). */
  hugePerQueue?: number;
  /** How long the apps may take to work through the flood (default 60 s). */
  drainTimeoutMs?: number;
  /** Observations seen within this window count as running (default 1500 ms). */
  windowMs?: number;
  /** Delete the tickers at the end and wait until each is Deleted (default true). */
  deleteAfter?: boolean;
}

export type Target = 'state' | 'jobs' | 'control';

export interface TargetReport {
  target: Target;
  /** Queue, or exchange for control. */
  destination: string;
  published: number;
  huge: number;
  bytes: number;
  byShape: Record<string, number>;
  /** Generated messages that happened to pass the schema and were broken on purpose. */
  madeInvalid: number;
}

export interface ObserverCheck {
  id: string;
  serviceBefore: string;
  runningOnBefore: string[];
  runningOnAfter: string[];
  managerStatus: string;
  managerServiceId: string | null;
  timelineBefore: number;
  timelineAfter: number;
  /** Timeline entries added while the flood went on: `event status service (reason)`. */
  timelineAdded: string[];
}

export interface FloodReport {
  seed: number;
  published: number;
  targets: TargetReport[];
  publishMs: number;
  /** From the first publish until every app had worked through its share. */
  drainMs: number;
  nacked: number;
  returned: number;
  deadLettered: number;
  expectedDeadLettered: number;
  purged: number;
  logged: {
    invalidState: number;
    invalidJob: Record<string, number>;
    invalidControl: Record<string, number>;
    /** The manager's "service marked dead" lines while the flood went on (no service died). */
    servicesMarkedDead: number;
  };
  consumers: { state: { before: number; after: number }; jobs: { before: number; after: number } };
  queues: { stateReadyAfter: number; jobsReadyBefore: number; jobsReadyAfter: number };
  running: { manager: boolean; services: Record<string, boolean> };
  observers: ObserverCheck[];
  /** Tickers deleted after the check that reached Deleted and stopped publishing. */
  cancelsObeyed: number;
  /** Every property that did not hold; empty when the flood did no harm. */
  violations: string[];
}

interface Message {
  body: Buffer;
  properties: Options.Publish;
  shape: string;
}

const MB = 1024 * 1024;

// ---------------------------------------------------------------------------------------------
// Generators
// ---------------------------------------------------------------------------------------------

interface Context {
  serviceIds: string[];
  serviceNames: string[];
  observerIds: string[];
}

/** Well-formed messages of each destination, with real ids: one broken field away from harm. */
function templates(target: Target, ctx: Context, pick: number): Record<string, unknown> {
  const at = new Date().toISOString();
  const serviceId = ctx.serviceIds[pick % ctx.serviceIds.length]!;
  const name = ctx.serviceNames[pick % ctx.serviceNames.length]!;
  const observerId = ctx.observerIds[pick % ctx.observerIds.length]!;
  if (target === 'jobs') {
    return {
      observerId,
      name: `flood-${pick % ctx.observerIds.length}`,
      kind: 'ticker',
      pool: 'default',
      params: { intervalMs: 100 },
    };
  }
  if (target === 'control') return { type: 'observer.cancel', observerId, requestedAt: at, deadLetter: false };
  const base = { serviceId, at };
  const events: Record<string, unknown>[] = [
    {
      type: 'service.born',
      ...base,
      name,
      capacity: 10,
      pools: ['default'],
      kinds: [],
      version: '0.0.0',
      host: 'flood',
      pid: 1,
      startedAt: at,
      heartbeatIntervalMs: 300,
      running: [],
    },
    { type: 'service.heartbeat', ...base, name, capacity: 10, heartbeatIntervalMs: 300, running: [], freeSlots: 10 },
    { type: 'service.died', ...base, name, reason: 'flood' },
    {
      type: 'observer.started',
      ...base,
      observerId,
      name: 'flood',
      kind: 'ticker',
      pool: 'default',
      redelivered: true,
    },
    { type: 'observer.stopped', ...base, observerId, reason: 'cancelled', graceful: true },
    { type: 'observer.failed', ...base, observerId, error: 'flood', attempts: 9 },
  ];
  return events[pick % events.length]!;
}

const brokenValue: fc.Arbitrary<unknown> = fc.oneof(
  fc.constantFrom(undefined, null, true, 0, -1, 1.5, 2 ** 53, '', 'not-a-uuid', 'Observer.Cancel', [], {}, [null]),
  fc.string({ unit: 'grapheme', maxLength: 20 }),
  fc.jsonValue({ maxDepth: 2 }),
  fc.constantFrom(10_000, 100_000).map((n) => 'z'.repeat(n)),
);

const properties: fc.Arbitrary<Options.Publish> = fc.record(
  {
    contentType: fc.constantFrom(
      'application/json',
      'text/plain',
      'application/octet-stream',
      'application/json; charset=utf-16',
      'application/x-garbage',
      '',
    ),
    contentEncoding: fc.constantFrom('gzip', 'identity', 'x-nope', ''),
    // Application headers only: `x-` headers mean something to the broker (x-death, x-delay).
    headers: fc.dictionary(
      fc.stringMatching(/^[a-w][a-z0-9-]{0,30}$/),
      fc.oneof(fc.string({ maxLength: 40 }), fc.integer(), fc.boolean(), fc.constant(null)),
      { maxKeys: 4 },
    ),
    type: fc.constantFrom('observer.cancel', 'service.born', 'garbage'),
    messageId: fc.string({ unit: 'grapheme-ascii', maxLength: 40 }),
    correlationId: fc.string({ unit: 'grapheme-ascii', maxLength: 40 }),
    appId: fc.constantFrom('vigil', 'flood', ''),
    priority: fc.integer({ min: 0, max: 255 }),
    persistent: fc.boolean(),
    timestamp: fc.integer({ min: 0, max: 2 ** 31 }),
  },
  { requiredKeys: [] },
);

type Shape =
  | { kind: 'bytes'; bytes: Uint8Array }
  | { kind: 'text'; text: string }
  | { kind: 'json'; value: unknown }
  | { kind: 'broken'; pick: number; field: number; value: unknown }
  | { kind: 'empty' }
  | { kind: 'deep'; depth: number };

const shape: fc.Arbitrary<Shape> = fc.oneof(
  { arbitrary: fc.uint8Array({ maxLength: 2_000 }).map((bytes) => ({ kind: 'bytes' as const, bytes })), weight: 3 },
  {
    arbitrary: fc
      .oneof(
        fc.string({ unit: 'binary', maxLength: 200 }),
        fc.constantFrom(
          'not json',
          '{',
          '{"type":',
          'undefined',
          'NaN',
          "{'type':'observer.cancel'}",
          '\ufeff{}',
          '{"a":1}{"b":2}',
        ),
      )
      .map((text) => ({ kind: 'text' as const, text })),
    weight: 3,
  },
  { arbitrary: fc.jsonValue({ maxDepth: 4 }).map((value) => ({ kind: 'json' as const, value })), weight: 3 },
  {
    arbitrary: fc
      .record({ pick: fc.nat(), field: fc.nat(), value: brokenValue })
      .map(({ pick, field, value }) => ({ kind: 'broken' as const, pick, field, value })),
    weight: 5,
  },
  { arbitrary: fc.constant({ kind: 'empty' as const }), weight: 1 },
  { arbitrary: fc.constantFrom(100, 10_000, 100_000).map((depth) => ({ kind: 'deep' as const, depth })), weight: 1 },
);

const SCHEMAS = { state: StateEvent, jobs: JobMessage, control: ControlMessage } as const;

/** The body of a shape; a broken template gets one field removed or replaced. */
function render(target: Target, ctx: Context, s: Shape): Buffer {
  switch (s.kind) {
    case 'bytes':
      return Buffer.from(s.bytes);
    case 'text':
      return Buffer.from(s.text, 'utf8');
    case 'json':
      return Buffer.from(JSON.stringify(s.value) ?? 'null');
    case 'empty':
      return Buffer.alloc(0);
    case 'deep':
      return Buffer.from('['.repeat(s.depth) + ']'.repeat(s.depth));
    case 'broken': {
      const message = templates(target, ctx, s.pick);
      const keys = Object.keys(message);
      const key = keys[s.field % keys.length]!;
      if (s.value === undefined) delete message[key];
      else message[key] = s.value;
      return Buffer.from(JSON.stringify(message));
    }
  }
}

/** A message the target's schema rejects: one that passes by chance is broken on purpose. */
function ensureInvalid(target: Target, body: Buffer): { body: Buffer; changed: boolean } {
  if (!decodeMessage(SCHEMAS[target], body).ok) return { body, changed: false };
  return { body: Buffer.concat([Buffer.from('#'), body]), changed: true };
}

function hugeMessages(target: Target, ctx: Context, count: number): Message[] {
  const messages: Message[] = [];
  for (let i = 0; i < count; i++) {
    let body: Buffer;
    if (i % 3 === 0) body = Buffer.alloc(MB, 'x');
    else if (i % 3 === 1) {
      // Valid-looking, with one field a megabyte long.
      const message = templates(target, ctx, i);
      const key = target === 'jobs' ? 'name' : target === 'control' ? 'observerId' : 'serviceId';
      message[key] = 'y'.repeat(MB);
      body = Buffer.from(JSON.stringify(message));
    } else body = Buffer.from(JSON.stringify(Array.from({ length: MB / 8 }, (_, n) => n)));
    messages.push({ body: ensureInvalid(target, body).body, properties: { persistent: true }, shape: 'huge' });
  }
  return messages;
}

function generate(
  target: Target,
  ctx: Context,
  count: number,
  huge: number,
  seed: number,
): { messages: Message[]; madeInvalid: number } {
  const samples = fc.sample(fc.tuple(shape, properties), { numRuns: Math.max(0, count - huge), seed });
  let madeInvalid = 0;
  const messages = samples.map(([s, props]): Message => {
    const { body, changed } = ensureInvalid(target, render(target, ctx, s));
    if (changed) madeInvalid++;
    return { body, properties: props, shape: s.kind };
  });
  const bigOnes = hugeMessages(target, ctx, Math.min(huge, count));
  // Spread the huge ones through the flood rather than at its end.
  bigOnes.forEach((m, i) => messages.splice(Math.floor(((i + 1) * messages.length) / (bigOnes.length + 1)), 0, m));
  return { messages, madeInvalid };
}

// ---------------------------------------------------------------------------------------------
// Looking at the apps from outside
// ---------------------------------------------------------------------------------------------

/** Counts log lines with a given message, reading only what was logged since the last look. */
class LogCounter {
  private scanned: number;
  private found = 0;
  private readonly needle: string;

  constructor(
    private readonly process: AppProcess,
    msg: string,
  ) {
    this.scanned = process.lines.length;
    this.needle = `"msg":"${msg}`;
  }

  get count(): number {
    const lines = this.process.lines;
    for (; this.scanned < lines.length; this.scanned++) if (lines[this.scanned]!.includes(this.needle)) this.found++;
    return this.found;
  }
}

async function checkQueue(channel: Channel, queue: string): Promise<{ messageCount: number; consumerCount: number }> {
  const { messageCount, consumerCount } = await channel.checkQueue(queue);
  return { messageCount, consumerCount };
}

function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

async function publishAll(
  channel: ConfirmChannel,
  queue: { target: Target; exchange: string; routingKey: string; messages: Message[] }[],
): Promise<{ nacked: number }> {
  let nacked = 0;
  const longest = Math.max(...queue.map((q) => q.messages.length));
  // Interleaved, so every consumer is busy at once; many in flight, confirmed at the end.
  for (let i = 0; i < longest; i++) {
    for (const q of queue) {
      const message = q.messages[i];
      if (!message) continue;
      const ok = channel.publish(
        q.exchange,
        q.routingKey,
        message.body,
        { ...message.properties, mandatory: true },
        (err: unknown) => {
          if (err) nacked++;
        },
      );
      if (!ok) await new Promise((resolve) => channel.once('drain', resolve));
    }
  }
  await channel.waitForConfirms().catch(() => undefined);
  return { nacked };
}

/**
 * Starts `observers` tickers, floods every consumed queue with malformed messages, and checks
 * that nothing was harmed (see the file comment). Needs a manager and at least one service of
 * the default pool; leaves the dead-letter queue empty.
 */
export async function floodAmqp(world: World, options: FloodOptions): Promise<FloodReport> {
  const {
    perQueue,
    seed,
    observers: observerCount = 10,
    hugePerQueue = 2,
    drainTimeoutMs = 60_000,
    windowMs = 1_500,
    deleteAfter = true,
  } = options;
  const manager = world.manager;
  if (!manager?.running) throw new Error('floodAmqp needs a running manager');
  if (world.services.length === 0) throw new Error('floodAmqp needs at least one service');
  const violations: string[] = [];
  const names = world.names;
  const stamp = seed.toString(36);

  // Observers that must come through untouched.
  const ids: string[] = [];
  for (let i = 0; i < observerCount; i++) ids.push(await world.createTicker(`flood-${stamp}-${i}`, 100));
  const placed = await Promise.all(ids.map((id) => world.waitForStatus(id, 'Processing')));
  await waitFor(
    'every ticker to be seen running on one service',
    () => ids.every((id) => world.watch.runningOn(id, windowMs).length === 1),
    { timeoutMs: 20_000 },
  );
  const before = ids.map((id, i) => ({
    id,
    serviceBefore: placed[i]!.serviceId ?? '',
    runningOnBefore: world.watch.runningOn(id, windowMs),
    timelineBefore: placed[i]!.timeline.length,
  }));
  for (const b of before) {
    if (b.runningOnBefore.join() !== b.serviceBefore)
      violations.push(
        `before the flood, ${b.id} ran on ${b.runningOnBefore.join(',')} but the manager said ${b.serviceBefore}`,
      );
  }

  const ctx: Context = {
    serviceIds: world.services.map((s) => s.id),
    serviceNames: world.services.map((s) => s.name),
    observerIds: ids,
  };
  const plan = (
    [
      ['state', '', names.stateQueue],
      ['jobs', '', names.jobsQueue('default')],
      ['control', names.controlExchange, 'flood'],
    ] as const
  ).map(([target, exchange, routingKey], k) => {
    const { messages, madeInvalid } = generate(target, ctx, perQueue, hugePerQueue, seed + k);
    return { target, exchange, routingKey, messages, madeInvalid };
  });
  const count = (t: Target) => plan.find((p) => p.target === t)!.messages.length;

  const connection = await connect(world.amqpUrl);
  try {
    const check = await connection.createChannel();
    const publish = await connection.createConfirmChannel();
    let returned = 0;
    publish.on('return', () => returned++);

    const stateBefore = await checkQueue(check, names.stateQueue);
    const jobsBefore = await checkQueue(check, names.jobsQueue('default'));
    const deadBefore = await checkQueue(check, names.deadLetterQueue);
    const invalidState = new LogCounter(manager, 'invalid state message');
    const markedDead = new LogCounter(manager, 'service marked dead');
    const invalidJob = world.services.map((s) => new LogCounter(s.process, 'invalid job message'));
    const invalidControl = world.services.map((s) => new LogCounter(s.process, 'invalid control message'));
    const expectedDeadLettered = count('state') + count('jobs');

    const started = performance.now();
    const { nacked } = await publishAll(publish, plan);
    const publishMs = performance.now() - started;

    // Worked through: nothing ready in the consumed queues, every message logged and
    // dead-lettered (state, jobs) or logged and dropped (control).
    let snapshot = { state: stateBefore, jobs: jobsBefore, dead: deadBefore };
    const sumJobs = () => invalidJob.reduce((sum, c) => sum + c.count, 0);
    const drained = () =>
      snapshot.state.messageCount === 0 &&
      snapshot.jobs.messageCount <= jobsBefore.messageCount &&
      snapshot.dead.messageCount - deadBefore.messageCount >= expectedDeadLettered &&
      invalidState.count >= count('state') &&
      sumJobs() >= count('jobs') &&
      invalidControl.every((c) => c.count >= count('control'));
    const deadline = Date.now() + drainTimeoutMs;
    for (;;) {
      snapshot = {
        state: await checkQueue(check, names.stateQueue),
        jobs: await checkQueue(check, names.jobsQueue('default')),
        dead: await checkQueue(check, names.deadLetterQueue),
      };
      if (drained() || Date.now() > deadline) break;
      await sleep(200);
    }
    const drainMs = performance.now() - started;
    if (!drained()) violations.push(`the apps had not worked through the flood after ${drainTimeoutMs} ms`);

    // Anything still in flight would show up now.
    await sleep(Math.max(windowMs, 500));
    const stateAfter = await checkQueue(check, names.stateQueue);
    const jobsAfter = await checkQueue(check, names.jobsQueue('default'));
    const deadAfter = await checkQueue(check, names.deadLetterQueue);
    const deadLettered = deadAfter.messageCount - deadBefore.messageCount;

    const logged = {
      invalidState: invalidState.count,
      servicesMarkedDead: markedDead.count,
      invalidJob: Object.fromEntries(world.services.map((s, i) => [s.name, invalidJob[i]!.count])),
      invalidControl: Object.fromEntries(world.services.map((s, i) => [s.name, invalidControl[i]!.count])),
    };
    if (logged.servicesMarkedDead > 0)
      violations.push(`the manager marked live services dead ${logged.servicesMarkedDead} times during the flood`);
    if (nacked > 0) violations.push(`the broker refused ${nacked} messages`);
    if (returned > 0) violations.push(`${returned} messages were routed nowhere`);
    if (deadLettered !== expectedDeadLettered)
      violations.push(`dead-lettered ${deadLettered}, expected ${expectedDeadLettered} (state + jobs garbage)`);
    if (logged.invalidState !== count('state'))
      violations.push(`the manager logged ${logged.invalidState} invalid state messages of ${count('state')}`);
    if (sumJobs() !== count('jobs'))
      violations.push(`the services logged ${sumJobs()} invalid job messages of ${count('jobs')}`);
    for (const [name, n] of Object.entries(logged.invalidControl)) {
      if (n !== count('control'))
        violations.push(`${name} logged ${n} invalid control messages of ${count('control')}`);
    }
    if (stateAfter.messageCount !== 0) violations.push(`${stateAfter.messageCount} messages left in the state queue`);
    if (jobsAfter.messageCount !== jobsBefore.messageCount)
      violations.push(
        `the jobs queue holds ${jobsAfter.messageCount} ready messages, ${jobsBefore.messageCount} before`,
      );
    if (stateAfter.consumerCount !== stateBefore.consumerCount)
      violations.push(`state queue consumers: ${stateBefore.consumerCount} before, ${stateAfter.consumerCount} after`);
    if (jobsAfter.consumerCount !== jobsBefore.consumerCount)
      violations.push(`jobs queue consumers: ${jobsBefore.consumerCount} before, ${jobsAfter.consumerCount} after`);

    const running = {
      manager: manager.running,
      services: Object.fromEntries(world.services.map((s) => [s.name, s.process.running])),
    };
    if (!running.manager) violations.push('the manager exited');
    for (const [name, alive] of Object.entries(running.services)) if (!alive) violations.push(`service ${name} exited`);

    // The observers: still running once, where they were, and the manager agrees.
    const observers: ObserverCheck[] = [];
    for (const b of before) {
      const view = await world.observer(b.id);
      const result: ObserverCheck = {
        ...b,
        runningOnAfter: world.watch.runningOn(b.id, windowMs),
        managerStatus: view.status,
        managerServiceId: view.serviceId,
        timelineAfter: view.timeline.length,
        timelineAdded: view.timeline
          .slice(b.timelineBefore)
          .map(
            (e) => `${e.event} ${(e as { status?: string }).status ?? ''} ${e.serviceId ?? '-'} (${e.reason ?? ''})`,
          ),
      };
      observers.push(result);
      if (result.runningOnAfter.join() !== b.serviceBefore)
        violations.push(
          `${b.id} runs on [${result.runningOnAfter.join(', ')}] after the flood, on ${b.serviceBefore} before`,
        );
      if (view.status !== 'Processing' || view.serviceId !== b.serviceBefore)
        violations.push(
          `the manager shows ${b.id} ${view.status} on ${view.serviceId}, was Processing on ${b.serviceBefore}`,
        );
      if (result.timelineAfter !== b.timelineBefore)
        violations.push(
          `${b.id}'s timeline went from ${b.timelineBefore} to ${result.timelineAfter} entries: ${result.timelineAdded.join('; ')}`,
        );
    }

    const { messageCount: purged } = await check.purgeQueue(names.deadLetterQueue);

    // Cancels still reach every service's control queue, and the state queue still applies.
    let cancelsObeyed = 0;
    if (deleteAfter) {
      for (const id of ids) await world.api('DELETE', `/observers/${id}`);
      const outcomes = await Promise.allSettled(ids.map((id) => world.waitForStatus(id, 'Deleted', undefined, 20_000)));
      await sleep(windowMs);
      for (const [i, outcome] of outcomes.entries()) {
        const id = ids[i]!;
        const still = world.watch.runningOn(id, windowMs / 2);
        if (outcome.status === 'fulfilled' && still.length === 0) cancelsObeyed++;
        else
          violations.push(`${id} did not stop after DELETE (status ${outcome.status}, still on [${still.join(', ')}])`);
      }
    }

    return {
      seed,
      published: plan.reduce((sum, p) => sum + p.messages.length, 0),
      targets: plan.map((p) => ({
        target: p.target,
        destination: p.exchange || p.routingKey,
        published: p.messages.length,
        huge: p.messages.filter((m) => m.shape === 'huge').length,
        bytes: p.messages.reduce((sum, m) => sum + m.body.length, 0),
        byShape: p.messages.reduce<Record<string, number>>(
          (acc, m) => ({ ...acc, [m.shape]: (acc[m.shape] ?? 0) + 1 }),
          {},
        ),
        madeInvalid: p.madeInvalid,
      })),
      publishMs: Math.round(publishMs),
      drainMs: Math.round(drainMs),
      nacked,
      returned,
      deadLettered,
      expectedDeadLettered,
      purged,
      logged,
      consumers: {
        state: { before: stateBefore.consumerCount, after: stateAfter.consumerCount },
        jobs: { before: jobsBefore.consumerCount, after: jobsAfter.consumerCount },
      },
      queues: {
        stateReadyAfter: stateAfter.messageCount,
        jobsReadyBefore: jobsBefore.messageCount,
        jobsReadyAfter: jobsAfter.messageCount,
      },
      running,
      observers,
      cancelsObeyed,
      violations,
    };
  } finally {
    await connection.close().catch(() => undefined);
  }
}
