/**
 * Vigil on a private 3-node RabbitMQ cluster with QUEUE_TYPE=quorum: with one node down, apps
 * connected to the others go on, and a service that connects anew starts and takes jobs. Also a
 * self-test of the private cluster: each node stops, dies and comes back on its own.
 */
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { ConfirmedPublisher, connect, declareSharedTopology } from '@vigil/broker';
import {
  createRunningTickers,
  startPrivateRabbitCluster,
  waitFor,
  waitUntilRunningOn,
  World,
  type PrivateRabbitCluster,
} from '@vigil/testkit';

describe('a 3-node RabbitMQ cluster (QUEUE_TYPE=quorum)', { timeout: 240_000 }, () => {
  let cluster: PrivateRabbitCluster;
  let world: World | undefined;

  before(async () => {
    cluster = await startPrivateRabbitCluster(3);
  });
  after(async () => {
    await world?.close();
    await cluster.destroy();
  });

  it('with the node the shared queues were first declared on down, a new service starts and takes over', async () => {
    const [first, second, third] = cluster.nodes;
    world = await World.create({ amqpUrl: second!.url, env: { QUEUE_TYPE: 'quorum' } });
    // The shared queues are declared first on the node about to go down, as by an app that
    // happened to connect there.
    const connection = await connect(first!.url);
    await declareSharedTopology(connection, world.names, 'quorum');
    await connection.close();

    await world.startManager();
    const a = await world.startService('cluster-a', { AMQP_URL: third!.url });
    const { ids } = await createRunningTickers(world, 'cluster', 4);

    await first!.kill();
    // A fresh connection declares the state queue again and sends service.born through it.
    const b = await world.startService('cluster-b', { AMQP_URL: third!.url });
    await a.process.kill();
    await waitUntilRunningOn(world, ids, () => b.id);
    for (const id of ids) await world.waitForStatus(id, 'Processing', b.id);

    // A quorum queue's counts reach list_queues with the next statistics tick.
    const jobsQueue = world.names.jobsQueue('default');
    await waitFor('every job held unacked, listed by a live node', async () => {
      const jobs = (await cluster.queues()).find((q) => q.name === jobsQueue);
      return jobs?.ready === 0 && jobs.unacked === ids.length;
    });
  });

  it('a node stopped or killed comes back into the cluster on its own', async () => {
    const [first, second] = cluster.nodes;
    await first!.start();
    await second!.stop();
    await second!.start();
    const jobsQueue = world!.names.jobsQueue('default');
    // Listed by the first running node: the restarted ones answer as members again.
    await waitFor('the jobs queue listed with its messages', async () => {
      const jobs = (await cluster.queues()).find((q) => q.name === jobsQueue);
      return jobs?.unacked === 4;
    });
  });

  it('a publisher nacked while a quorum queue lost its leader publishes again on a fresh channel', async () => {
    const [first, second] = cluster.nodes;
    const declarer = await connect(first!.url);
    await (
      await declarer.createChannel()
    ).assertQueue('nack-probe', {
      durable: true,
      arguments: { 'x-queue-type': 'quorum' },
    });
    await declarer.close();
    await first!.kill();
    // Right after the leader died: RabbitMQ 3.10 nacks, and goes on nacking on that channel.
    const connection = await connect(second!.url);
    connection.on('error', () => undefined);
    const open = () => connection.createConfirmChannel();
    const publisher = new ConfirmedPublisher(await open(), open);
    const outcomes: string[] = [];
    await waitFor(
      'a publish to be confirmed',
      async () => {
        const outcome = await publisher.publish('', 'nack-probe', Buffer.from('{}'), { timeoutMs: 5_000 }).then(
          () => 'ack',
          (err: Error) => err.message,
        );
        outcomes.push(outcome);
        return outcome === 'ack';
      },
      { timeoutMs: 30_000, intervalMs: 500 },
    );
    assert.equal(outcomes.at(-1), 'ack');
    await connection.close();
    await first!.start();
  });
});
