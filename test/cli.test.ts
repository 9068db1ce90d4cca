/**
 * The `vigil` command line, run as users run it (`npx vigil`, the bin npm links), against a real
 * manager and service: tables by default, JSON with --json, where and as whom from the
 * environment, errors as a message and exit code 1.
 */
import assert from 'node:assert/strict';
import { spawn, type ChildProcess } from 'node:child_process';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import { ROOT, waitFor, World, type ServiceHandle } from '@vigil/testkit';

const BIN = path.join(ROOT, 'node_modules', '.bin', 'vigil');

describe('vigil CLI', { timeout: 120_000 }, () => {
  let world: World;
  let service: ServiceHandle;
  let env: NodeJS.ProcessEnv;

  before(async () => {
    world = await World.create();
    await world.startManager();
    service = await world.startService('cli-a');
    env = { ...process.env, VIGIL_URL: world.apiUrl, VIGIL_TOKEN: world.adminToken };
  });
  after(() => world.close());

  function vigil(...args: string[]): Promise<{ code: number | null; stdout: string; stderr: string }> {
    return new Promise((resolve) => {
      const child = spawn(BIN, args, { env, stdio: ['ignore', 'pipe', 'pipe'] });
      let stdout = '';
      let stderr = '';
      child.stdout.on('data', (chunk: Buffer) => (stdout += chunk.toString('utf8')));
      child.stderr.on('data', (chunk: Buffer) => (stderr += chunk.toString('utf8')));
      child.once('exit', (code) => resolve({ code, stdout, stderr }));
    });
  }

  /** A command that runs until stopped: its output so far, and a way to stop it. */
  function following(...args: string[]): { child: ChildProcess; output: () => string } {
    const child = spawn(BIN, args, { env, stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    child.stdout.on('data', (chunk: Buffer) => (stdout += chunk.toString('utf8')));
    return { child, output: () => stdout };
  }

  it('creates, lists and shows observers, as tables and as JSON', async () => {
    const created = await vigil(
      'observers',
      'create',
      'cli-ticks',
      '--kind',
      'ticker',
      '--params',
      '{"intervalMs": 100}',
    );
    assert.equal(created.code, 0, created.stderr);
    assert.match(created.stdout, /created cli-ticks/);
    const { id } = JSON.parse((await vigil('--json', 'observers', 'get', 'cli-ticks')).stdout) as { id: string };
    await world.waitForStatus(id, 'Processing', service.id);

    const listed = await vigil('observers', 'ls', '--name', 'cli-*');
    assert.match(listed.stdout, /^ID +NAME +KIND +POOL +STATUS +GEN +SERVICE$/m);
    assert.match(listed.stdout, new RegExp(`${id} +cli-ticks +ticker +default +Processing +1 +${service.id}`));
    const json = JSON.parse((await vigil('observers', 'ls', '--json')).stdout) as { name: string }[];
    assert.ok(json.some((o) => o.name === 'cli-ticks'));
    const shown = await vigil('observers', 'get', 'cli-ticks');
    assert.match(shown.stdout, /kind ticker, pool default, status Processing, generation 1/);
    assert.match(shown.stdout, /AT +EVENT +STATUS/);
  });

  it('pauses, resumes, restarts and sets params', async () => {
    assert.match((await vigil('observers', 'pause', 'cli-ticks')).stdout, /pausing cli-ticks: Paused/);
    assert.match((await vigil('observers', 'resume', 'cli-ticks')).stdout, /resuming cli-ticks: \w+, generation 2/);
    assert.match((await vigil('observers', 'restart', 'cli-ticks')).stdout, /generation 3/);
    const set = await vigil('observers', 'set', 'cli-ticks', '--params', '{"intervalMs": 50}');
    assert.match(set.stdout, /new params, generation 4/);
    const again = await vigil('observers', 'resume', 'cli-ticks');
    assert.equal(again.code, 1);
    assert.match(again.stderr, /409 .*cannot be resumed/);
  });

  it('watches observations and events live', async () => {
    const watch = following('observers', 'watch', 'cli-ticks', '--last', '2');
    const events = following('events');
    await waitFor(
      'observations',
      () =>
        watch
          .output()
          .split('\n')
          .filter((l) => l.includes('cli-a')).length >= 4,
    );
    assert.match(watch.output(), /cli-a +\{"seq":\d+\}/);
    await vigil('observers', 'pause', 'cli-ticks');
    await waitFor('the pause in the events', () => /cli-ticks \(gen \d+\) +paused → Paused/.test(events.output()));
    for (const { child } of [watch, events]) child.kill('SIGINT');
  });

  it('lists services and kinds, and drains a service', async () => {
    const listed = await vigil('services', 'ls');
    assert.match(listed.stdout, new RegExp(`${service.id} +cli-a +Alive +\\d+ +10 +\\d+ % +default`));
    assert.match((await vigil('services', 'get', service.id)).stdout, /cli-a .*: Alive/);
    assert.match((await vigil('services', 'drain', service.id)).stdout, /cli-a: Draining/);
    assert.match((await vigil('services', 'drain', service.id, '--undo')).stdout, /cli-a: Alive/);
    const kinds = await vigil('kinds');
    assert.match(kinds.stdout, /^ticker +intervalMs +allowed +default +1$/m);
  });

  it('says what went wrong: bad input, no token, nothing there', async () => {
    const bad = await vigil('observers', 'create', 'x', '--kind', 'ticker', '--params', 'not json');
    assert.equal(bad.code, 1);
    assert.match(bad.stderr, /--params must be a JSON object/);
    const invalid = await vigil('observers', 'create', 'x', '--kind', 'ticker', '--params', '{"intervalMs": 1}');
    assert.match(invalid.stderr, /422 .*\n {2}params\.intervalMs/);
    env = { ...env, VIGIL_TOKEN: '' };
    assert.match((await vigil('observers', 'ls')).stderr, /401/);
    env = { ...env, VIGIL_TOKEN: world.adminToken };
    assert.match((await vigil('observers', 'get', 'no-such-observer')).stderr, /no observer named no-such-observer/);
    const unreachable = await vigil('--url', 'http://127.0.0.1:1/api/v1', 'kinds');
    assert.match(unreachable.stderr, /cannot reach http:\/\/127\.0\.0\.1:1/);
  });
});
