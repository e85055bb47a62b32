import { randomUUID } from 'node:crypto';
import { Queue } from 'bullmq';
import type { Cluster } from 'ioredis';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { BULLMQ_CLUSTER_PREFIX } from '../../../engine/runtime/redis-client.ts';
import { ServiceRegistry } from '../../../engine/runtime/service-registry.ts';
import { startEngine, type EngineUnderTest } from '../../helpers/in-process-engine.ts';
import { orderEvent, pipelineDirs, ORDER_SCHEMA } from '../../helpers/pipelines.ts';
import { waitFor } from '../../helpers/redis.ts';
import { startTestCluster, type TestCluster } from '../../helpers/redis-cluster.ts';
import { addEvents, readPayloads } from '../../helpers/streams.ts';

// Plugins whose keys span the cluster: notify (inbox and its dedupe mark share a hash tag),
// the queue sink and the schedule source (BullMQ, with the `{bull}` prefix), the service registry
// (scanned on every master).

let cluster: TestCluster;
let redis: Cluster;
const dirs = pipelineDirs();
const engines: EngineUnderTest[] = [];

beforeAll(async () => {
  cluster = await startTestCluster();
  redis = cluster.client();
}, 90_000);
afterEach(async () => {
  await Promise.all(engines.splice(0).map((e) => e.stop()));
});
afterAll(async () => {
  await dirs.cleanup();
  await cluster?.close();
});

const id = () => randomUUID().slice(0, 8);

describe('plugins on a Redis Cluster', () => {
  it('notify writes each user inbox once (across masters), and a queue sink enqueues BullMQ jobs under {bull}', async () => {
    const stream = `cl-orders-${id()}`;
    const queueName = `cl-jobs-${id()}`;
    const inbox = `cl-inbox-${id()}`;
    const pipelines = await dirs.make([{
      name: `cl-notify-${id()}`,
      source: { stream, start: '0', block_ms: 100 },
      validate: { schema: ORDER_SCHEMA },
      transform: '{ "userId": "u-" & $string(data.seq % 5), "type": "info", "title": "Order", "message": data.orderId, "seq": data.seq }',
      sinks: [
        { type: 'notify', with: { inbox } },
        { type: 'queue', with: { queue: queueName, job: 'order' } },
      ],
    }]);
    const eut = await startEngine({ redisUrl: cluster.url, pipelines });
    engines.push(eut);
    await addEvents(redis, stream, Array.from({ length: 50 }, (_, i) => orderEvent(i)));

    // Five users' inboxes, ten notifications each; the inboxes live on more than one master.
    const inboxes = Array.from({ length: 5 }, (_, u) => `${inbox}:u-${u}`);
    await waitFor(async () => (await Promise.all(inboxes.map((k) => redis.xlen(k)))).every((n) => n === 10), 'ten notifications in each inbox', 30_000, 100);
    expect(new Set(await Promise.all(inboxes.map(async (k) => (await cluster.nodeOf(k)).port))).size).toBeGreaterThan(1);
    const seqs = (await Promise.all(inboxes.map((k) => readPayloads<{ message: string }>(redis, k)))).flat().map((n) => n.message);
    expect(new Set(seqs).size).toBe(50);

    const queue = new Queue(queueName, { connection: cluster.client(), prefix: BULLMQ_CLUSTER_PREFIX });
    try {
      await waitFor(async () => (await queue.getJobCounts('waiting')).waiting === 50, '50 jobs waiting', 30_000, 100);
    } finally {
      await queue.close();
    }
  }, 90_000);

  it('a schedule pipeline ticks on the cluster (its BullMQ job scheduler under {bull})', async () => {
    const out = `cl-ticks-${id()}`;
    const pipelines = await dirs.make([{
      name: `cl-tick-${id()}`,
      source: { schedule: '1s' },
      transform: '{ "tick": event, "at": timestamp }',
      sink: { type: 'publish', with: { stream: out } },
    }]);
    const eut = await startEngine({ redisUrl: cluster.url, pipelines });
    engines.push(eut);
    await waitFor(async () => (await redis.xlen(out)) >= 2, 'two ticks', 30_000, 200);
    expect((await readPayloads<{ tick: string }>(redis, out))[0]).toMatchObject({ tick: 'tick' });
  }, 60_000);

  it('the service registry lists services whose keys live on different masters', async () => {
    const registry = new ServiceRegistry(() => redis);
    const names = Array.from({ length: 12 }, (_, i) => `cl-svc-${id()}-${i}`);
    for (const name of names) await registry.heartbeat({ name, capabilities: ['cl-test'], ttlSeconds: 60 });
    const listed = (await registry.list('cl-test')).map((s) => s.name);
    expect(new Set(listed)).toEqual(new Set(names));
  });
});
