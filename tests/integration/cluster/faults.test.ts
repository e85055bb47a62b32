import { randomUUID } from 'node:crypto';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import type { Cluster } from 'ioredis';
import { killEngines, spawnEngine, stopCleanly } from '../../helpers/engine-process.ts';
import { FIXTURE_SCHEMAS, orderEvent, ordersPipeline, pipelineDirs } from '../../helpers/pipelines.ts';
import { waitFor } from '../../helpers/redis.ts';
import { startTestCluster, type TestCluster } from '../../helpers/redis-cluster.ts';
import { addEvents, pendingSummary, readPayloads } from '../../helpers/streams.ts';

// Faults on a real Redis Cluster: an engine of two on one group killed, and the source stream's
// slot migrated to another master while events flow. Nothing acknowledged is lost.

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

const range = (from: number, to: number) => Array.from({ length: to - from }, (_, i) => from + i);
const tag = () => `{cl-${randomUUID().slice(0, 8)}}`;

async function delivered(out: string, n: number, timeoutMs = 60_000): Promise<number[]> {
  return waitFor(async () => {
    const seqs = (await readPayloads<{ seq: number }>(redis, out)).map((p) => p.seq);
    return new Set(seqs).size >= n && seqs;
  }, `all ${n} events in ${out}`, timeoutMs, 200);
}

describe('faults on a Redis Cluster', () => {
  it('two engines on one group, one SIGKILLed mid-stream: the other claims its pending entries and every event is delivered', async () => {
    const N = 3000;
    const t = tag();
    const stream = `${t}:in`;
    const out = `${t}:out`;
    // Entries idle 1 s are reclaimed by the surviving consumer.
    const doc = ordersPipeline({ stream, out, source: { batch: 20, claim_idle_ms: 1000 } });
    const pipelines = await dirs.make([doc]);
    const names = [`cl-a-${randomUUID().slice(0, 8)}`, `cl-b-${randomUUID().slice(0, 8)}`];
    const [a, b] = await Promise.all(names.map((consumer) => spawnEngine({ pipelines, schemas: FIXTURE_SCHEMAS, redisUrl: cluster.url, consumer })));
    await addEvents(redis, stream, range(0, N / 2).map((i) => orderEvent(i)));
    await waitFor(async () => ((await pendingSummary(redis, stream, doc.name)).consumers[names[0]!] ?? 0) > 0 && (await redis.xlen(out)) >= 100,
      'engine a mid-stream, with entries pending', 30_000, 10);
    await a!.stop('SIGKILL');
    await addEvents(redis, stream, range(N / 2, N).map((i) => orderEvent(i)));
    const seqs = await delivered(out, N);
    expect(new Set(seqs)).toEqual(new Set(range(0, N)));
    await waitFor(async () => (await pendingSummary(redis, stream, doc.name)).count === 0, 'nothing pending');
    await stopCleanly(b!);
  }, 120_000);

  it('the source stream\'s slot migrates to another master while events flow: the engine follows it and loses nothing', async () => {
    const N = 3000;
    const stream = `cl-mig-${randomUUID().slice(0, 8)}`;
    const out = `cl-mig-out-${randomUUID().slice(0, 8)}`;
    const doc = ordersPipeline({ stream, out, source: { batch: 50 } });
    const pipelines = await dirs.make([doc]);
    const engine = await spawnEngine({ pipelines, schemas: FIXTURE_SCHEMAS, redisUrl: cluster.url, consumer: `cl-m-${randomUUID().slice(0, 8)}` });

    // A producer writing all along, in small chunks, through the migration.
    let written = 0;
    const producing = (async () => {
      for (; written < N; written += 100) await addEvents(redis, stream, range(written, written + 100).map((i) => orderEvent(i)));
    })();
    await waitFor(async () => (await redis.xlen(out)) >= 300, 'the first events through', 30_000, 20);
    const before = (await cluster.nodeOf(stream)).port;
    const moved = await cluster.migrateSlotOf(stream);
    expect(moved.keys).toBeGreaterThanOrEqual(1);
    expect((await cluster.nodeOf(stream)).port).not.toBe(before);
    await producing;

    const seqs = await delivered(out, N);
    expect(new Set(seqs)).toEqual(new Set(range(0, N)));
    await waitFor(async () => (await pendingSummary(redis, stream, doc.name)).count === 0, 'nothing pending');
    await stopCleanly(engine);
  }, 120_000);
});

describe('a master killed on a Redis Cluster with replicas', () => {
  let withReplicas: TestCluster;
  beforeAll(async () => {
    withReplicas = await startTestCluster({ masters: 3, replicas: 1 });
  }, 120_000);
  afterAll(async () => {
    await withReplicas?.close();
  });

  it('the replica is promoted and the engine goes on: every event written before and after is delivered', async () => {
    const client = withReplicas.client();
    const N = 2000;
    // The hardest case: the master to die is the very node the engine was pointed at.
    let t = tag();
    for (let i = 0; i < 200 && (await withReplicas.nodeOf(`${t}:in`)).port !== withReplicas.nodes[0]!.port; i++) t = tag();
    const stream = `${t}:in`;
    const out = `${t}:out`;
    const doc = ordersPipeline({ stream, out, source: { batch: 50 } });
    const pipelines = await dirs.make([doc]);
    const engine = await spawnEngine({ pipelines, schemas: FIXTURE_SCHEMAS, redisUrl: withReplicas.url, consumer: `cl-f-${randomUUID().slice(0, 8)}` });
    // Written and replicated (WAIT) before the master goes: what the producer was told is stored.
    await addEvents(client, stream, range(0, N / 2).map((i) => orderEvent(i)));
    const master = await withReplicas.nodeOf(stream);
    const direct = new (await import('ioredis')).Redis(master.url);
    expect(await direct.wait(1, 5_000)).toBeGreaterThanOrEqual(1);
    direct.disconnect();
    await waitFor(async () => (await client.xlen(out)) >= 100, 'the engine mid-stream', 30_000, 10);
    await master.kill();
    // Once a replica has taken over the slot, the producer goes on.
    await waitFor(async () => (await withReplicas.nodeOf(stream)).port !== master.port, 'a replica promoted', 60_000, 250);
    await addEvents(client, stream, range(N / 2, N).map((i) => orderEvent(i)));
    const seqs = await waitFor(async () => {
      const s = (await readPayloads<{ seq: number }>(client, out)).map((p) => p.seq);
      return new Set(s).size >= N && s;
    }, `all ${N} events in the output`, 90_000, 250);
    expect(new Set(seqs)).toEqual(new Set(range(0, N)));
    await waitFor(async () => (await pendingSummary(client, stream, doc.name)).count === 0, 'nothing pending', 30_000);
    await stopCleanly(engine);
  }, 180_000);
});
