import { randomUUID } from 'node:crypto';
import { setTimeout as delay } from 'node:timers/promises';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { Cluster } from 'ioredis';
import { killEngines, spawnEngine } from '../../helpers/engine-process.ts';
import { startEngine, type EngineUnderTest } from '../../helpers/in-process-engine.ts';
import { FIXTURE_SCHEMAS, orderEvent, ordersPipeline, pipelineDirs } from '../../helpers/pipelines.ts';
import { waitFor } from '../../helpers/redis.ts';
import { startTestCluster, type TestCluster } from '../../helpers/redis-cluster.ts';
import { addEvents, pendingSummary } from '../../helpers/streams.ts';

// On a Redis Cluster a pipeline's own reading connection is a cluster connection: a stop cuts
// its waiting read (block_ms 60000) there too, and the process exits.

let cluster: TestCluster;
let redis: Cluster;
const dirs = pipelineDirs();
let open: EngineUnderTest[] = [];

beforeAll(async () => {
  cluster = await startTestCluster();
  redis = cluster.client();
}, 90_000);
afterEach(async () => {
  await killEngines();
  await Promise.all(open.splice(0).map((e) => e.stop()));
});
afterAll(async () => {
  await dirs.cleanup();
  await cluster?.close();
});

const key = (label: string) => `cl-${label}-${randomUUID().slice(0, 8)}`;

/** Resolves with how long `p` took, or with Infinity when it takes longer than `ms`. */
async function timed(p: Promise<unknown>, ms: number): Promise<number> {
  const t0 = performance.now();
  return Promise.race([p.then(() => performance.now() - t0), delay(ms).then(() => Infinity)]);
}

describe('stop on a Redis Cluster', () => {
  it('a quiet pipeline stops at once on SIGTERM and the process exits 0, without a warning', async () => {
    const stream = key('in');
    const out = `{${stream}}:out`;
    const doc = ordersPipeline({ stream, out, source: { block_ms: 60_000 } });
    const engine = await spawnEngine({ pipelines: await dirs.make([doc]), schemas: FIXTURE_SCHEMAS, redisUrl: cluster.url, consumer: `cl-quiet-${randomUUID().slice(0, 8)}` });
    await addEvents(redis, stream, [orderEvent(1)]);
    await waitFor(async () => (await redis.xlen(out)) === 1, 'the event through');

    const t0 = performance.now();
    const exit = await engine.stop('SIGTERM', 20_000);
    expect(exit, engine.report()).toEqual({ code: 0, signal: null });
    expect(performance.now() - t0).toBeLessThan(5_000);
    expect(engine.logs.filter((l) => (l.level ?? 0) >= 40), engine.report()).toEqual([]);
    expect((await pendingSummary(redis, stream, doc.name)).count).toBe(0);
  }, 60_000);

  it('the master of its stream away while a quiet pipeline waits on its read: removing the pipeline does not wait for it', async () => {
    const stream = key('in');
    const out = `{${stream}}:out`;
    const doc = ordersPipeline({ stream, out, source: { block_ms: 60_000 } });
    const e = await startEngine({ redisUrl: cluster.url, pipelines: await dirs.make([doc]), consumer: `cl-away-${randomUUID().slice(0, 8)}` });
    open.push(e);
    await addEvents(redis, stream, [orderEvent(1)]);
    await waitFor(async () => (await redis.xlen(out)) === 1, 'the event through');
    await delay(300); // back on its read

    const node = await cluster.nodeOf(stream);
    await node.kill();
    try {
      await delay(500);
      const took = await timed(e.engine.removePipeline(doc.name), 5_000);
      expect(took).toBeLessThan(5_000);
      expect(e.engine.handles.has(doc.name)).toBe(false);
    } finally {
      await node.restart();
    }
  }, 60_000);
});
