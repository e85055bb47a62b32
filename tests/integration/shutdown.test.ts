import { randomUUID } from 'node:crypto';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import type { Redis } from 'ioredis';
import { toRecord } from '../../engine/runtime/stream-reader.ts';
import { killEngines, spawnEngine } from '../helpers/engine-process.ts';
import { FIXTURE_SCHEMAS, orderEvent, ordersPipeline, pipelineDirs, testKey } from '../helpers/pipelines.ts';
import { startTestRedis, waitFor, type TestRedis } from '../helpers/redis.ts';
import { addEvents, pendingSummary, readPayloads } from '../helpers/streams.ts';
import { gate, startHttpRecorder, type HttpRecorder } from '../helpers/http-recorder.ts';

let server: TestRedis;
let redis: Redis;
const dirs = pipelineDirs();

beforeAll(async () => {
  server = await startTestRedis();
  redis = server.client();
});
afterEach(() => killEngines());
afterAll(async () => {
  await dirs.cleanup();
  await server?.close();
});

/** Whether stream id `a` is at or before `b`. */
function atOrBefore(a: string, b: string): boolean {
  const [am, as] = a.split('-').map(BigInt) as [bigint, bigint];
  const [bm, bs] = b.split('-').map(BigInt) as [bigint, bigint];
  return am < bm || (am === bm && as <= bs);
}

describe('graceful shutdown', () => {
  it('SIGTERM under load: exits 0 within seconds, leaving nothing of its own unacknowledged', async () => {
    const N = 20_000;
    const stream = testKey('in');
    const out = testKey('out');
    const consumer = `it-term-${randomUUID().slice(0, 8)}`;
    const doc = ordersPipeline({ stream, out, source: { batch: 100 } });
    const engine = await spawnEngine({ pipelines: await dirs.make([doc]), schemas: FIXTURE_SCHEMAS, redisUrl: server.url, consumer });

    const ids = await addEvents(redis, stream, Array.from({ length: N }, (_, i) => orderEvent(i)));
    await waitFor(async () => (await redis.xlen(out)) >= 1000, 'the engine under load', 20_000, 10);

    const exit = await engine.stop('SIGTERM', 10_000);
    expect(exit, engine.report()).toEqual({ code: 0, signal: null });
    expect(engine.logs.some((l) => l.msg === 'engine stopped')).toBe(true);

    // Nothing left unacknowledged under its name.
    expect(await redis.xpending(stream, doc.name, '-', '+', 100, consumer)).toEqual([]);
    expect((await pendingSummary(redis, stream, doc.name)).count).toBe(0);

    // Every entry the group handed out was processed, and nothing else was.
    const group = ((await redis.xinfo('GROUPS', stream)) as unknown[][]).map(toRecord).find((g) => g.name === doc.name)!;
    const lastDelivered = String(group['last-delivered-id']);
    const delivered = ids.flatMap((id, seq) => (atOrBefore(id, lastDelivered) ? [seq] : []));
    const seqs = (await readPayloads<{ seq: number }>(redis, out)).map((p) => p.seq);
    expect(new Set(seqs)).toEqual(new Set(delivered));
    console.log(`SIGTERM under load: stopped after ${delivered.length} of ${N} events, ${seqs.length - delivered.length} duplicated`);
  }, 60_000);

  it('a quiet pipeline stops at once: its waiting read (block_ms 60000) is cut, not sat out', async () => {
    const stream = testKey('in');
    const out = testKey('out');
    const doc = ordersPipeline({ stream, out, source: { block_ms: 60_000 } });
    const engine = await spawnEngine({ pipelines: await dirs.make([doc]), schemas: FIXTURE_SCHEMAS, redisUrl: server.url, consumer: `it-quiet-${randomUUID().slice(0, 8)}` });
    await addEvents(redis, stream, [orderEvent(1)]);
    await waitFor(async () => (await redis.xlen(out)) === 1, 'the event through');

    // Past the engine's own 10 s shutdown limit: a stop that sat the read out would close by force.
    const exit = await engine.stop('SIGTERM', 20_000);
    expect(exit, engine.report()).toEqual({ code: 0, signal: null });
    expect(engine.logs.some((l) => l.msg === 'engine stopped')).toBe(true);
    expect(engine.logs.filter((l) => /timed out/.test(String(l.msg))), engine.report()).toEqual([]);
    expect((await pendingSummary(redis, stream, doc.name)).count).toBe(0);
  }, 40_000);

  it('stopped during a full batch, with the next read waiting on a now quiet stream: that read is cut too', async () => {
    // A full batch (2 of batch 2) makes the consumer ask for the next while it works; the stream
    // is then empty, so that read waits (block_ms 60000) while the webhook holds the batch.
    const { held, release } = gate();
    const hook = await startHttpRecorder(async () => {
      await held;
      return { status: 200, body: { ok: true } };
    });
    try {
      const stream = testKey('in');
      const doc = { ...ordersPipeline({ stream, out: 'unused', source: { batch: 2, block_ms: 60_000 } }), sink: { type: 'http', with: { url: `${hook.url}/hook` } } };
      const engine = await spawnEngine({ pipelines: await dirs.make([doc]), schemas: FIXTURE_SCHEMAS, redisUrl: server.url, consumer: `it-prefetch-${randomUUID().slice(0, 8)}` });
      await addEvents(redis, stream, [orderEvent(1), orderEvent(2)]);
      await waitFor(() => hook.requests.length >= 1, 'the batch at the webhook');

      const exit = engine.stop('SIGTERM', 20_000);
      await waitFor(() => engine.logs.some((l) => /stopping/.test(String(l.msg))), 'the engine to begin stopping');
      release();
      expect(await exit, engine.report()).toEqual({ code: 0, signal: null });
      expect(engine.logs.filter((l) => (l.level ?? 0) >= 40), engine.report()).toEqual([]);
      // The batch in hand was finished and acknowledged.
      expect((await pendingSummary(redis, stream, doc.name)).count).toBe(0);
    } finally {
      release();
      await hook.close();
    }
  }, 40_000);

  /** Pending entries of a group under one consumer: id → delivery count. */
  async function pendingOf(stream: string, group: string, consumer: string): Promise<Map<string, number>> {
    const rows = (await redis.xpending(stream, group, '-', '+', 100, consumer)) as [string, string, number, number][];
    return new Map(rows.map((r) => [r[0], Number(r[3])]));
  }

  it('stopped during a retry back-off: exits 0 at once, the entry stays pending and nothing reaches the DLQ', async () => {
    const stream = testKey('in');
    const out = testKey('out');
    await redis.set(out, 'not a stream'); // every publish fails (WRONGTYPE) and is retried
    const consumer = `it-backoff-${randomUUID().slice(0, 8)}`;
    const doc = ordersPipeline({ stream, out, extra: { retry: { attempts: 5, backoff: 'fixed', delay_ms: 600_000 } } });
    const engine = await spawnEngine({ pipelines: await dirs.make([doc]), schemas: FIXTURE_SCHEMAS, redisUrl: server.url, consumer });
    const [id] = await addEvents(redis, stream, [orderEvent(1)]);
    await waitFor(async () => (await pendingOf(stream, doc.name, consumer)).has(id!), 'the entry in hand');

    // The first attempt has failed; the engine waits ten minutes before the second.
    const exit = await engine.stop('SIGTERM', 10_000);
    expect(exit, engine.report()).toEqual({ code: 0, signal: null });
    expect([...(await pendingOf(stream, doc.name, consumer)).keys()]).toEqual([id]);
    expect(await redis.exists(`${stream}:dlq`)).toBe(0);
  }, 30_000);

  describe('a sink that never answers', () => {
    let hook: HttpRecorder;
    beforeAll(async () => {
      hook = await startHttpRecorder(() => 'hang');
    });
    afterAll(() => hook.close());

    async function hangingEngine(env: Record<string, string> = {}) {
      const stream = testKey('in');
      const consumer = `it-hang-${randomUUID().slice(0, 8)}`;
      const doc = { ...ordersPipeline({ stream, out: 'unused' }), sink: { type: 'http', with: { url: `${hook.url}/hook`, timeout_ms: 600_000 } } };
      const engine = await spawnEngine({ pipelines: await dirs.make([doc]), schemas: FIXTURE_SCHEMAS, redisUrl: server.url, consumer, env });
      const before = hook.requests.length;
      const [id] = await addEvents(redis, stream, [orderEvent(1)]);
      await waitFor(() => hook.requests.length > before, 'the request in flight');
      return { engine, id: id!, stream, group: doc.name, consumer };
    }

    it('a second signal exits at once, with code 1, leaving the entry in hand pending', async () => {
      const { engine, id, stream, group, consumer } = await hangingEngine();
      engine.child.kill('SIGTERM');
      await engine.waitForLog((l) => l.msg === 'stopping: finishing the batches in hand', 'that it is stopping');
      expect(engine.alive()).toBe(true); // waiting for the sink, for up to 10 s
      const exit = await engine.stop('SIGTERM', 5_000);
      expect(exit, engine.report()).toEqual({ code: 1, signal: null });
      expect(engine.logs.some((l) => l.msg === 'second signal: exiting now')).toBe(true);
      expect([...(await pendingOf(stream, group, consumer)).keys()]).toEqual([id]);
    }, 30_000);

    it('after SYNAPSE_SHUTDOWN_TIMEOUT_MS the engine closes regardless and exits 0, leaving the entry pending', async () => {
      const { engine, id, stream, group, consumer } = await hangingEngine({ SYNAPSE_SHUTDOWN_TIMEOUT_MS: '1000' });
      const exit = await engine.stop('SIGTERM', 15_000);
      expect(exit, engine.report()).toEqual({ code: 0, signal: null });
      expect(engine.logs.find((l) => l.msg === 'shutdown timed out; closing connections, unacknowledged entries stay pending')).toMatchObject({ timeoutMs: 1000 });
      expect([...(await pendingOf(stream, group, consumer)).keys()]).toEqual([id]);
    }, 30_000);
  });
});
