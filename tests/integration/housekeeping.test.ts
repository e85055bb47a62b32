/**
 * What a consumer does beside its batches: the gauges its housekeeping sets (every 5 s: the DLQ's
 * length, the group's pending entries and lag), and what it leaves unaccounted at a stop.
 */
import type { Redis } from 'ioredis';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { metricValue } from '../helpers/engine.ts';
import { startEngine, type EngineUnderTest } from '../helpers/in-process-engine.ts';
import { orderEvent, ordersPipeline, pipelineDirs, testKey } from '../helpers/pipelines.ts';
import { startTestRedis, waitFor, type TestRedis } from '../helpers/redis.ts';
import { addEvents, pendingSummary } from '../helpers/streams.ts';

let server: TestRedis;
let redis: Redis;
const dirs = pipelineDirs();
let running: EngineUnderTest[] = [];

beforeAll(async () => {
  server = await startTestRedis();
  redis = server.client();
});
afterEach(async () => {
  await Promise.all(running.splice(0).map((e) => e.stop()));
});
afterAll(async () => {
  await dirs.cleanup();
  await server?.close();
});

async function run(docs: Parameters<typeof dirs.make>[0]): Promise<EngineUnderTest> {
  const eut = await startEngine({ redisUrl: server.url, pipelines: await dirs.make(docs) });
  running.push(eut);
  return eut;
}

/** The value of one sample of the engine's metrics, as /metrics shows it (undefined: no sample). */
async function sample(eut: EngineUnderTest, name: string, labels: Record<string, string>): Promise<number | undefined> {
  return metricValue(await eut.engine.metrics.registry.metrics(), name, labels);
}

describe('housekeeping', () => {
  it('sets synapse_dlq_length to the length of the DLQ, and the pending and lag gauges of the group', async () => {
    const stream = testKey('in');
    const out = testKey('out');
    const doc = ordersPipeline({ stream, out });
    const dlq = `${stream}:dlq`;
    const invalid = JSON.stringify({ ...orderEvent(2), data: { orderId: 'o-2', amount: 'lots' } });
    const eut = await run([doc]);
    await addEvents(redis, stream, [orderEvent(1), invalid, orderEvent(3)]);
    await waitFor(async () => (await pendingSummary(redis, stream, doc.name)).count === 0 && (await redis.xlen(out)) === 2, 'every event settled');
    expect(await redis.xlen(dlq)).toBe(1);

    // The first housekeeping ran before the events came; the next (within 5 s) sees them.
    await waitFor(async () => (await sample(eut, 'synapse_dlq_length', { stream: dlq })) === 1, 'the DLQ length gauge at 1', 12_000);
    expect(await sample(eut, 'synapse_pending_entries', { pipeline: doc.name })).toBe(0);
    expect(await sample(eut, 'synapse_consumer_lag', { pipeline: doc.name, stream, group: doc.name })).toBe(0);
  }, 30_000);

  it('a lag Redis cannot tell (entries deleted ahead of the group) leaves the gauge unset and does not fail the loop', async () => {
    const stream = testKey('in');
    const out = testKey('out');
    const doc = ordersPipeline({ stream, out });
    // Entries deleted after the group's last delivered entry: XINFO GROUPS answers a nil lag.
    await redis.xgroup('CREATE', stream, doc.name, '0', 'MKSTREAM');
    const ids = await addEvents(redis, stream, [orderEvent(1), orderEvent(2), orderEvent(3)]);
    await redis.xdel(stream, ids[1]!);
    const info = (await redis.xinfo('GROUPS', stream)) as unknown[][];
    expect(info[0]![info[0]!.indexOf('lag') + 1]).toBeNull();

    // The engine's first housekeeping runs before its first read, on that nil lag.
    const eut = await run([doc]);
    await waitFor(async () => (await redis.xlen(out)) === 2, 'both events delivered');
    const consumer = eut.engine.handles.get(doc.name)!.consumer!;
    expect(consumer.lastError).toBeUndefined();
    expect(await sample(eut, 'synapse_pending_entries', { pipeline: doc.name })).toBe(0);
  });

  it('an entry left pending by a stop during its retry back-off is not counted as settled', async () => {
    const stream = testKey('in');
    const out = testKey('out');
    await redis.set(out, 'not a stream'); // every publish fails (WRONGTYPE) and is retried
    const doc = ordersPipeline({ stream, out, extra: { retry: { attempts: 5, backoff: 'fixed', delay_ms: 600_000 } } });
    const eut = await run([doc]);
    const [id] = await addEvents(redis, stream, [orderEvent(1)]);
    await waitFor(async () => (await pendingSummary(redis, stream, doc.name)).count === 1, 'the entry in hand');
    await new Promise((r) => setTimeout(r, 200)); // its first attempt fails; the back-off begins

    await eut.stop();
    expect((await redis.xpending(stream, doc.name, '-', '+', 10) as unknown[][]).map((r) => r[0])).toEqual([id]);
    expect(eut.tally(doc.name).total).toBe(0);
    expect(await redis.exists(`${stream}:dlq`)).toBe(0);
  });
});
