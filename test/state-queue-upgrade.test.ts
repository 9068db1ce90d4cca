/**
 * Upgrading a deployment whose state queue was declared before single-active-consumer: RabbitMQ
 * cannot add the argument to an existing queue. Services use the queue as it is; the active
 * manager applies what is in it, replaces it with one that has the argument once it is empty, and
 * state flows on through the new one.
 */
import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import { after, before, describe, it } from 'node:test';
import { connect, stateQueueArguments } from '@vigil/broker';
import { encodeMessage } from '@vigil/contracts';
import { staged, waitFor, World } from '@vigil/testkit';

describe('state queue from an older version', { timeout: 120_000 }, () => {
  let world: World;

  before(async () => {
    world = await World.create();
  });
  after(() => world.close());

  it('is replaced by one with single-active-consumer once drained, and nothing in it is lost', async () => {
    const connection = await connect(world.amqpUrl);
    const channel = await connection.createChannel();
    // As an older version declared it, with an event an older service left in it.
    await channel.assertQueue(world.names.stateQueue, {
      durable: true,
      arguments: { 'x-dead-letter-exchange': world.names.deadLetterExchange },
    });
    const legacyService = randomUUID();
    channel.sendToQueue(world.names.stateQueue, encodeMessage(staged.born(legacyService, 'older-service')), {
      persistent: true,
    });
    await channel.close();

    await world.startManager();
    const a = await world.startService('upgraded-a');
    await waitFor(
      'the manager to replace the state queue',
      () => world.manager!.logged('replaced the legacy state queue').length > 0,
    );
    assert.equal((await world.api('GET', `/services/${legacyService}`)).status, 200, 'the old event was applied');

    // The queue has the argument now: declaring it so is accepted.
    const check = await connection.createChannel();
    await check.assertQueue(world.names.stateQueue, {
      durable: true,
      arguments: stateQueueArguments(world.names, 'classic'),
    });
    await connection.close();

    // State flows through the new queue.
    const id = await world.createTicker('after-upgrade');
    await world.waitForStatus(id, 'Processing', a.id);
    assert.ok(a.process.running);
  });
});
