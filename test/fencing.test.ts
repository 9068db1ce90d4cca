/**
 * The fencing pattern README "Writing a kind" shows, run as written there against Postgres: a
 * copy of an older generation cannot overwrite what a newer one wrote.
 */
import assert from 'node:assert/strict';
import { randomBytes, randomUUID } from 'node:crypto';
import { readFile } from 'node:fs/promises';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import { Client } from 'pg';
import { fencingToken } from '@vigil/observer-sdk';
import { ROOT, SHARED_POSTGRES_URL } from '@vigil/testkit';

/** The README's code blocks, by language. */
async function readmeBlocks(language: string): Promise<string[]> {
  const readme = await readFile(path.join(ROOT, 'README.md'), 'utf8');
  return [...readme.matchAll(new RegExp('```' + language + '\\n([\\s\\S]*?)```', 'g'))].map((m) => m[1]!);
}

describe('fencing tokens', () => {
  let client: Client;
  let createTable: string;
  let upsert: string;
  const schema = `fencing_${randomBytes(4).toString('hex')}`;

  before(async () => {
    createTable = (await readmeBlocks('sql')).find((block) => block.includes('CREATE TABLE latest_price'))!;
    const code = (await readmeBlocks('ts')).find((block) => block.includes('INSERT INTO latest_price'))!;
    upsert = /`(INSERT INTO latest_price[\s\S]*?)`/.exec(code)![1]!;
    client = new Client({ connectionString: SHARED_POSTGRES_URL });
    await client.connect();
    await client.query(`CREATE SCHEMA ${schema}`);
    await client.query(`SET search_path TO ${schema}`);
    await client.query(createTable);
  });
  after(async () => {
    await client.query(`DROP SCHEMA ${schema} CASCADE`);
    await client.end();
  });

  it('order the copies of an observer as their generations do, past a power of ten', () => {
    const id = randomUUID();
    assert.ok(fencingToken(id, 9) < fencingToken(id, 10));
    assert.ok(fencingToken(id, 10) < fencingToken(id, 11));
    assert.ok(fencingToken(id, 2 ** 40) > fencingToken(id, 2 ** 40 - 1));
  });

  it("README's upsert: a stale copy's write is refused, the newer one's stays", async () => {
    const observerId = randomUUID();
    const write = (generation: number, price: number) =>
      client.query(upsert, [observerId, price, fencingToken(observerId, generation)]);
    assert.equal((await write(1, 100)).rowCount, 1);
    assert.equal((await write(2, 200)).rowCount, 1, 'the newer generation overwrites');
    assert.equal((await write(1, 150)).rowCount, 0, 'the stale copy is refused');
    assert.equal((await write(2, 210)).rowCount, 1, 'the same generation goes on writing');
    const { rows } = await client.query<{ price: string }>(`SELECT price FROM latest_price WHERE observer_id = $1`, [
      observerId,
    ]);
    assert.equal(rows[0]?.price, '210');
  });
});
