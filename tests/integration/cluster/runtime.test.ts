import { randomUUID } from 'node:crypto';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { Queue } from 'bullmq';
import { Cluster } from 'ioredis';
import type { Logger } from 'pino';
import {
  BULLMQ_CLUSTER_PREFIX, bullmqConnection, connectRedis, duplicateConnection, openRedis, scanKeys, type RedisConnection,
} from '../../../engine/runtime/redis-client.ts';
import { killEngines, spawnEngine, stopCleanly } from '../../helpers/engine-process.ts';
import { FIXTURE_SCHEMAS, orderEvent, ordersPipeline, pipelineDirs } from '../../helpers/pipelines.ts';
import { waitFor } from '../../helpers/redis.ts';
import { startTestCluster, type TestCluster } from '../../helpers/redis-cluster.ts';
import { addEvents, countDuplicates, pendingSummary, readPayloads, readStream } from '../../helpers/streams.ts';

// The engine on a real 3-master Redis Cluster, through the real CLI: `--redis` names one node,
// the engine finds it is a cluster and follows the keys wherever their slots live.

let cluster: TestCluster;
let redis: Cluster;
const dirs = pipelineDirs();

beforeAll(async () => {
  cluster = await startTestCluster();
  redis = cluster.client();
}, 90_000);
afterEach(() => killEngines());
afterAll(async () => {
  await dirs.cleanup();
  await cluster?.close();
});

const key = (label: string) => `cl-${label}-${randomUUID().slice(0, 8)}`;
const range = (from: number, to: number) => Array.from({ length: to - from }, (_, i) => from + i);

/** Keys until one lands on a master other than `other`'s. */
async function keyElsewhere(label: string, other: string): Promise<string> {
  const taken = (await cluster.nodeOf(other)).port;
  for (;;) {
    const k = key(label);
    if ((await cluster.nodeOf(k)).port !== taken) return k;
  }
}

describe('the engine on a Redis Cluster', () => {
  it('consumes, publishes and dead-letters across masters; a DLQ in another slot than its stream settles in two steps, one in the same slot in one', async () => {
    // Stream, output and DLQ on different masters (no hash tag) ...
    const apart = key('in');
    const apartOut = await keyElsewhere('out', apart);
    const apartDlq = await keyElsewhere('dlq', apart);
    // ... and a stream whose DLQ shares its hash tag (one slot: the settle script runs).
    const tag = `{${key('tag')}}`;
    const together = `${tag}:in`;
    const togetherOut = await keyElsewhere('out2', together);
    const docs = [
      ordersPipeline({ name: 'apart', stream: apart, out: apartOut, extra: { dlq: apartDlq } }),
      ordersPipeline({ name: 'together', stream: together, out: togetherOut }),
    ];
    const pipelines = await dirs.make(docs);
    const engine = await spawnEngine({ pipelines, schemas: FIXTURE_SCHEMAS, redisUrl: cluster.url, consumer: `cl-${randomUUID().slice(0, 8)}` });
    await engine.waitForLog((l) => String(l.msg).includes('using a cluster connection'), 'the engine saying it runs on a cluster');

    for (const stream of [apart, together]) {
      await addEvents(redis, stream, [
        ...range(0, 200).map((i) => orderEvent(i)),
        { event: 'order-placed', source: 't', timestamp: 'not a time', data: {} }, // invalid: DLQ
        orderEvent(999, 'order-cancelled'), // filtered
      ]);
    }
    for (const [stream, out, dlq, group] of [[apart, apartOut, apartDlq, 'apart'], [together, togetherOut, `${together}:dlq`, 'together']] as const) {
      // Completion, not speed: a loaded machine running the engine from its sources (mutation
      // runs) takes longer. A time-out says where it stood.
      let seen = '';
      await waitFor(async () => {
        const [outputs, dead, pending] = [await redis.xlen(out), await redis.xlen(dlq), (await pendingSummary(redis, stream, group)).count];
        seen = `${outputs} outputs, ${dead} DLQ entries, ${pending} pending`;
        return outputs === 200 && dead === 1 && pending === 0;
      }, () => `${group}: 200 outputs, 1 DLQ entry, nothing pending (last seen: ${seen})`, 60_000, 100);
      expect(new Set((await readPayloads<{ seq: number }>(redis, out)).map((p) => p.seq))).toEqual(new Set(range(0, 200)));
      const [dead] = await readStream(redis, dlq);
      expect(dead!.fields).toMatchObject({ stage: 'validate', pipeline: group, source_stream: stream });
    }
    await stopCleanly(engine);
  }, 150_000);

  it('an engine SIGKILLed mid-stream on the cluster and restarted delivers every event at least once', async () => {
    const N = 4000;
    const stream = key('in');
    const out = await keyElsewhere('out', stream);
    const consumer = `cl-kill-${randomUUID().slice(0, 8)}`;
    const doc = ordersPipeline({ stream, out, source: { batch: 50, claim_idle_ms: 600_000 } });
    const pipelines = await dirs.make([doc]);
    const start = () => spawnEngine({ pipelines, schemas: FIXTURE_SCHEMAS, redisUrl: cluster.url, consumer });

    const first = await start();
    await addEvents(redis, stream, range(0, N / 2).map((i) => orderEvent(i)));
    await waitFor(async () => (await redis.xlen(out)) >= 200 && ((await pendingSummary(redis, stream, doc.name)).consumers[consumer] ?? 0) > 0,
      'the engine mid-stream, with a batch pending', 30_000, 10);
    expect((await first.stop('SIGKILL')).signal).toBe('SIGKILL');
    const pendingAtKill = (await pendingSummary(redis, stream, doc.name)).consumers[consumer] ?? 0;

    await addEvents(redis, stream, range(N / 2, N).map((i) => orderEvent(i)));
    const second = await start();
    const seqs = await waitFor(async () => {
      const s = (await readPayloads<{ seq: number }>(redis, out)).map((p) => p.seq);
      return new Set(s).size >= N && s;
    }, `all ${N} events in the output`, 60_000, 200);
    expect(new Set(seqs)).toEqual(new Set(range(0, N)));
    expect(countDuplicates(seqs).duplicates).toBeLessThanOrEqual(pendingAtKill);
    await waitFor(async () => (await pendingSummary(redis, stream, doc.name)).count === 0, 'nothing pending');
    await stopCleanly(second);
  }, 120_000);
});

// The connections the engine and the command-line tools open to a cluster (redis-client.ts),
// in-process: every node gets the options, and a command in any slot reaches its master.
describe('connections to a Redis Cluster', () => {
  const opened: RedisConnection[] = [];
  afterEach(() => {
    for (const c of opened.splice(0)) c.disconnect();
  });
  const names = async (c: Cluster) => Promise.all(c.nodes('master').map((n) => n.client('GETNAME')));

  it('connectRedis opens a cluster connection named on every master; its duplicates keep its options and take their own', async () => {
    const lines: { fields: Record<string, unknown>; msg: string }[] = [];
    const log = (fields: Record<string, unknown>, msg: string) => lines.push({ fields, msg });
    const connection = await connectRedis(cluster.url, { info: log, warn: log } as unknown as Logger, 'it-cluster');
    opened.push(connection);
    expect(connection).toBeInstanceOf(Cluster);
    expect(lines).toEqual([{ fields: { connection: 'it-cluster' }, msg: 'redis is a cluster: using a cluster connection' }]);
    const c = connection as Cluster;
    await c.set(key('conn'), '1');
    await waitFor(async () => c.nodes('master').length === 3, 'every master known');
    expect(await names(c)).toEqual(['it-cluster', 'it-cluster', 'it-cluster']);

    const twin = duplicateConnection(c, { connectionName: 'it-twin', enableAutoPipelining: false }) as Cluster;
    opened.push(twin);
    expect(twin).toBeInstanceOf(Cluster);
    await twin.set(key('twin'), '1');
    await waitFor(async () => twin.nodes('master').length === 3, 'every master known');
    expect(await names(twin)).toEqual(['it-twin', 'it-twin', 'it-twin']);
    expect(twin.options).toMatchObject({ enableAutoPipelining: false, maxRedirections: 64, redisOptions: { maxRetriesPerRequest: null } });
    // Without options of its own, a duplicate pipelines as its original does.
    const plain = duplicateConnection(c) as Cluster;
    opened.push(plain);
    expect(plain.options).toMatchObject({ enableAutoPipelining: true, maxRedirections: 64, redisOptions: { connectionName: 'it-cluster' } });
  });

  it('openRedis opens a cluster connection that gives up on a cluster gone after three attempts; scanKeys walks every master', async () => {
    const c = await openRedis(cluster.url, { maxRetriesPerRequest: 3 }) as Cluster;
    opened.push(c);
    expect(c).toBeInstanceOf(Cluster);
    const retry = c.options.clusterRetryStrategy!;
    expect([1, 2, 3, 4].map((n) => retry(n, undefined as never))).toEqual([200, 400, 600, null]);
    const prefix = key('scan');
    const keys = range(0, 60).map((i) => `${prefix}:${i}`);
    for (const k of keys) await c.set(k, '1');
    const masters = new Set(await Promise.all(keys.map(async (k) => (await cluster.nodeOf(k)).port)));
    expect(masters.size).toBe(3); // the keys are spread over every master
    expect((await scanKeys(c, `${prefix}:*`)).sort()).toEqual([...keys].sort());
  });

  it('bullmqConnection: a cluster connection and the {bull} prefix, with which a queue works across masters', async () => {
    const single = bullmqConnection('redis://cache.internal:7000', false);
    expect(single.prefix).toBeUndefined();
    expect(single.connection).toMatchObject({ host: 'cache.internal', port: 7000 });
    await single.close();

    const bull = bullmqConnection(cluster.url, true);
    expect(bull.prefix).toBe('{bull}');
    expect(BULLMQ_CLUSTER_PREFIX).toBe('{bull}');
    expect(bull.connection).toBeInstanceOf(Cluster);
    // The engine's cluster options, with BullMQ's own needs: commands wait through an outage
    // (maxRetriesPerRequest: null, which BullMQ's workers require), and no automatic pipelining,
    // which would queue other commands behind a worker's blocking wait for jobs.
    expect((bull.connection as Cluster).options).toMatchObject({ enableAutoPipelining: false, maxRedirections: 64, redisOptions: { maxRetriesPerRequest: null } });
    const queue = new Queue(key('queue'), { connection: bull.connection as Cluster, prefix: bull.prefix });
    try {
      await queue.addBulk(range(0, 5).map((i) => ({ name: 'job', data: { i } })));
      expect((await queue.getJobCounts('waiting')).waiting).toBe(5);
    } finally {
      await queue.close();
      await bull.close();
    }
    await waitFor(() => (bull.connection as Cluster).status === 'end', 'the connection closed by close()', 5_000);
  });
});
