import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { AppProcess, MANAGER_MAIN, SERVICE_MAIN } from '@vigil/testkit';

/** Starts an app with `env`, expects it to refuse: exit code 1 and every bad variable named. */
async function refuses(main: string, env: Record<string, string>, named: string[]) {
  const app = new AppProcess('config', main, env);
  const exit = await app.exited;
  assert.equal(exit.code, 1, app.tail());
  const output = app.lines.join('\n');
  assert.match(output, /invalid configuration/);
  for (const variable of named) assert.match(output, new RegExp(`${variable}:`), `${variable} is named in:\n${output}`);
}

describe('configuration', () => {
  it('the observer service names every invalid variable and exits 1', async () => {
    await refuses(
      SERVICE_MAIN,
      { CAPACITY: 'lots', POOLS: 'Bad Pool', AMQP_URL: 'http://x', HEARTBEAT_INTERVAL_MS: '-5' },
      ['CAPACITY', 'POOLS', 'AMQP_URL', 'HEARTBEAT_INTERVAL_MS'],
    );
  });

  it('the manager names every invalid variable and exits 1', async () => {
    await refuses(MANAGER_MAIN, { DATABASE_URL: 'mysql://x', PORT: '70000', QUEUE_TYPE: 'stream' }, [
      'DATABASE_URL',
      'PORT',
      'QUEUE_TYPE',
    ]);
  });

  it('a bad secret is named, never shown: tokens by name, passwords inside URLs', async () => {
    const secret = 'hunter2-hunter2';
    const app = new AppProcess('config', MANAGER_MAIN, {
      VIGIL_ADMIN_TOKEN: secret,
      DATABASE_URL: `mysql://vigil:${secret}@db.invalid/vigil`,
      AMQP_URL: `http://vigil:${secret}@broker.invalid`,
    });
    assert.equal((await app.exited).code, 1);
    const output = app.lines.join('\n');
    for (const variable of ['VIGIL_ADMIN_TOKEN', 'DATABASE_URL', 'AMQP_URL'])
      assert.match(output, new RegExp(`${variable}:`));
    assert.doesNotMatch(output, /hunter2/, output);
    assert.match(output, /mysql:\/\/vigil:\*\*\*@db\.invalid/, 'a URL is shown with its password hidden');
  });

  it('a kind module that exports no kind is refused at start', async () => {
    const app = new AppProcess('config', SERVICE_MAIN, { KIND_MODULES: 'node:path' });
    assert.equal((await app.exited).code, 1);
    assert.match(app.lines.join('\n'), /exports no kind/);
  });

  it('both apps parse HTTP_POLL_ALLOW_CIDRS strictly and name the bad item', async () => {
    for (const main of [SERVICE_MAIN, MANAGER_MAIN]) {
      const app = new AppProcess('config', main, { HTTP_POLL_ALLOW_CIDRS: '127.0.0.0/8, 10.1.0.0/8' });
      assert.equal((await app.exited).code, 1);
      assert.match(app.lines.join('\n'), /HTTP_POLL_ALLOW_CIDRS: "10\.1\.0\.0\/8" has bits set past \/8 \(item 2\)/);
    }
  });
});
