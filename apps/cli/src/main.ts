import { Command, Option } from 'commander';
import { ApiError, Client } from './client';
import { ago, table } from './table';

interface Observer {
  id: string;
  name: string;
  kind: string;
  pool: string;
  params: Record<string, unknown>;
  status: string;
  serviceId: string | null;
  generation: number;
  lastError: string | null;
  createdAt: string;
  timeline?: {
    at: string;
    event: string;
    status: string;
    serviceId: string | null;
    generation: number | null;
    reason: string | null;
  }[];
}

interface Service {
  id: string;
  name: string;
  status: string;
  capacity: number;
  running: number;
  load: number;
  pools: string[];
  kinds: string[];
  host: string;
  lastHeartbeatAt: string;
  observers?: { id: string; name: string; kind: string; status: string }[];
}

interface Kind {
  name: string;
  paramsSchema: Record<string, unknown>;
  overlap: string;
  pools: string[];
  services: { id: string; name: string }[];
}

const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;

const program = new Command('vigil')
  .description("Vigil from the command line: observers, services, kinds and live events, through a manager's API")
  .addOption(new Option('--url <url>', "the manager's API").env('VIGIL_URL').default('http://127.0.0.1:3000/api/v1'))
  .addOption(new Option('--token <token>', 'an API token').env('VIGIL_TOKEN'))
  .option('--json', 'print JSON (for scripts) instead of tables')
  .showHelpAfterError();

const client = () => {
  const { url, token } = program.opts<{ url: string; token?: string }>();
  return new Client(url.replace(/\/+$/, ''), token);
};
const asJson = () => program.opts<{ json?: boolean }>().json === true;
const print = (value: unknown, human: () => string) => console.log(asJson() ? JSON.stringify(value, null, 2) : human());

/** An observer's id, from its id or its (exact) name. */
async function observerId(ref: string): Promise<string> {
  if (UUID.test(ref)) return ref;
  const page = await client().request<{ items: Observer[] }>('GET', `/observers?name=${encodeURIComponent(ref)}`);
  const live = page.items.filter((o) => o.status !== 'Deleted');
  if (live.length === 0) throw new Error(`no observer named ${ref}`);
  return live[0]!.id;
}

function parseParams(text: string): Record<string, unknown> {
  try {
    const value: unknown = JSON.parse(text);
    if (typeof value === 'object' && value !== null && !Array.isArray(value)) return value as Record<string, unknown>;
  } catch {
    // Reported below.
  }
  throw new Error(`--params must be a JSON object, e.g. '{"intervalMs": 1000}' (got ${text})`);
}

const observerRows = (items: readonly Observer[]) =>
  table(
    ['ID', 'NAME', 'KIND', 'POOL', 'STATUS', 'GEN', 'SERVICE'],
    items.map((o) => [o.id, o.name, o.kind, o.pool, o.status, String(o.generation), o.serviceId]),
  );

function showObserver(o: Observer): string {
  const lines = [
    `${o.name} (${o.id})`,
    `  kind ${o.kind}, pool ${o.pool}, status ${o.status}, generation ${o.generation}`,
    `  service ${o.serviceId ?? '-'}`,
    `  params ${JSON.stringify(o.params)}`,
    ...(o.lastError ? [`  last error ${o.lastError}`] : []),
  ];
  if (o.timeline?.length) {
    lines.push(
      '',
      table(
        ['AT', 'EVENT', 'STATUS', 'GEN', 'SERVICE', 'REASON'],
        o.timeline.map((e) => [
          e.at,
          e.event,
          e.status,
          e.generation === null ? null : String(e.generation),
          e.serviceId,
          e.reason,
        ]),
      ),
    );
  }
  return lines.join('\n');
}

const observers = program.command('observers').alias('o').description('observers: list, inspect, create, steer');

observers
  .command('ls')
  .description('list observers')
  .option('--name <name>', 'a name, or the start of names followed by *')
  .option('--status <status>')
  .option('--kind <kind>')
  .option('--pool <pool>')
  .option('--service <id>')
  .option('--limit <n>', 'per page', '100')
  .option('--all', 'every page')
  .action(
    async (options: {
      name?: string;
      status?: string;
      kind?: string;
      pool?: string;
      service?: string;
      limit: string;
      all?: boolean;
    }) => {
      const query = new URLSearchParams({ limit: options.limit });
      for (const [key, value] of [
        ['name', options.name],
        ['status', options.status],
        ['kind', options.kind],
        ['pool', options.pool],
        ['serviceId', options.service],
      ] as const) {
        if (value) query.set(key, value);
      }
      const items: Observer[] = [];
      for (;;) {
        const page = await client().request<{ items: Observer[]; nextCursor: string | null }>(
          'GET',
          `/observers?${query.toString()}`,
        );
        items.push(...page.items);
        if (!options.all || !page.nextCursor) break;
        query.set('cursor', page.nextCursor);
      }
      print(items, () => observerRows(items));
    },
  );

observers
  .command('get <observer>')
  .description('one observer (by id or name), with its timeline')
  .action(async (ref: string) => {
    const observer = await client().request<Observer>('GET', `/observers/${await observerId(ref)}`);
    print(observer, () => showObserver(observer));
  });

observers
  .command('create <name>')
  .description('create an observer')
  .requiredOption('--kind <kind>')
  .option('--params <json>', 'its params, a JSON object', '{}')
  .option('--pool <pool>')
  .action(async (name: string, options: { kind: string; params: string; pool?: string }) => {
    const observer = await client().request<Observer>('POST', '/observers', {
      name,
      kind: options.kind,
      params: parseParams(options.params),
      ...(options.pool ? { pool: options.pool } : {}),
    });
    print(observer, () => `created ${observer.name} (${observer.id}), ${observer.status}`);
  });

observers
  .command('set <observer>')
  .description('new params: live for a kind that takes them, a restart otherwise')
  .requiredOption('--params <json>', 'the new params, a JSON object')
  .action(async (ref: string, options: { params: string }) => {
    const observer = await client().request<Observer>('PATCH', `/observers/${await observerId(ref)}`, {
      params: parseParams(options.params),
    });
    print(observer, () => `${observer.name}: new params, generation ${observer.generation}, ${observer.status}`);
  });

for (const [verb, path, done] of [
  ['rm', '', 'deleting'],
  ['pause', '/pause', 'pausing'],
  ['resume', '/resume', 'resuming'],
  ['restart', '/restart', 'restarting'],
] as const) {
  observers
    .command(`${verb} <observer>`)
    .description(`${verb === 'rm' ? 'delete' : verb} an observer (by id or name)`)
    .action(async (ref: string) => {
      const id = await observerId(ref);
      const observer = await client().request<Observer>(verb === 'rm' ? 'DELETE' : 'POST', `/observers/${id}${path}`);
      print(observer, () => `${done} ${observer.name}: ${observer.status}, generation ${observer.generation}`);
    });
}

observers
  .command('watch <observer>')
  .description('its latest observations, then each new one, until Ctrl-C')
  .option('--last <n>', 'kept observations to show first', '10')
  .action(async (ref: string, options: { last: string }) => {
    const id = await observerId(ref);
    await follow(`/observers/${id}/observations?limit=${encodeURIComponent(options.last)}`, (event) => {
      const observation = JSON.parse(event.data) as { at: string; serviceName: string; data: unknown };
      return asJson()
        ? event.data
        : `${observation.at}  ${observation.serviceName}  ${JSON.stringify(observation.data)}`;
    });
  });

const services = program.command('services').alias('s').description('observer services: list, inspect, drain');

services
  .command('ls')
  .description('list services')
  .option('--status <status>', 'Alive, Draining or Dead')
  .action(async (options: { status?: string }) => {
    const page = await client().request<{ items: Service[] }>(
      'GET',
      `/services?limit=1000${options.status ? `&status=${options.status}` : ''}`,
    );
    print(page.items, () =>
      table(
        ['ID', 'NAME', 'STATUS', 'RUNNING', 'CAPACITY', 'LOAD', 'POOLS', 'HEARTBEAT'],
        page.items.map((s) => [
          s.id,
          s.name,
          s.status,
          String(s.running),
          String(s.capacity),
          `${Math.round(s.load * 100)} %`,
          s.pools.join(','),
          ago(s.lastHeartbeatAt),
        ]),
      ),
    );
  });

services
  .command('get <id>')
  .description('one service, with the observers on it')
  .action(async (id: string) => {
    const service = await client().request<Service>('GET', `/services/${id}`);
    print(service, () =>
      [
        `${service.name} (${service.id}) on ${service.host}: ${service.status}`,
        `  ${service.running} of ${service.capacity} running, pools ${service.pools.join(', ')}, kinds ${service.kinds.join(', ')}`,
        `  last heartbeat ${ago(service.lastHeartbeatAt)}`,
        '',
        table(
          ['ID', 'NAME', 'KIND', 'STATUS'],
          (service.observers ?? []).map((o) => [o.id, o.name, o.kind, o.status]),
        ),
      ].join('\n'),
    );
  });

services
  .command('drain <id>')
  .description('move its observers to other services; it stays up and takes nothing new (admin)')
  .option('--undo', 'let it take jobs again')
  .action(async (id: string, options: { undo?: boolean }) => {
    const service = await client().request<Service>('POST', `/services/${id}/${options.undo ? 'undrain' : 'drain'}`);
    print(service, () => `${service.name}: ${service.status}`);
  });

program
  .command('kinds')
  .description('the kinds the live services host, with their params')
  .action(async () => {
    const { items } = await client().request<{ items: Kind[] }>('GET', '/kinds');
    print(items, () =>
      table(
        ['KIND', 'PARAMS', 'OVERLAP', 'POOLS', 'SERVICES'],
        items.map((k) => [
          k.name,
          Object.keys((k.paramsSchema.properties as object | undefined) ?? {}).join(', '),
          k.overlap,
          k.pools.join(','),
          String(k.services.length),
        ]),
      ),
    );
  });

program
  .command('events')
  .description('what happens in the fleet, live, until Ctrl-C')
  .option('--observer <observer>', "only this observer's")
  .action(async (options: { observer?: string }) => {
    const filter = options.observer ? `?observerId=${await observerId(options.observer)}` : '';
    await follow(`/events${filter}`, (event) => {
      if (asJson()) return event.data;
      const data = JSON.parse(event.data) as Record<string, string | number | null>;
      const who = event.event === 'service' ? `service ${data.name}` : `${data.name} (gen ${data.generation})`;
      return `${data.at}  ${who}  ${data.event}${data.status ? ` → ${data.status}` : ''}${data.reason ? `  ${data.reason}` : ''}`;
    });
  });

/** Prints each event of a stream as `line` makes it, until Ctrl-C. */
async function follow(
  path: string,
  line: (event: { event?: string | undefined; data: string }) => string,
): Promise<void> {
  const stop = new AbortController();
  process.once('SIGINT', () => stop.abort());
  await client().stream(path, (event) => console.log(line(event)), stop.signal);
}

program.parseAsync().catch((err: unknown) => {
  console.error(`vigil: ${err instanceof ApiError || err instanceof Error ? err.message : String(err)}`);
  process.exit(1);
});
