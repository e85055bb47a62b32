/**
 * A live consumer's entries stay claimed (idle under claim_idle_ms) whatever they wait for: here a
 * batch reclaimed from a dead consumer, waiting for a reload's batch boundary behind a settle that
 * stalls in the background.
 */
import { once } from 'node:events';
import type { Redis } from 'ioredis';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { startEngine, type EngineUnderTest } from '../helpers/in-process-engine.ts';
import { orderEvent, ordersPipeline, pipelineDirs, testKey } from '../helpers/pipelines.ts';
import { startHttpRecorder, type HttpRecorder } from '../helpers/http-recorder.ts';
import { startTestRedis, waitFor, type TestRedis } from '../helpers/redis.ts';
import { addEvents, pendingSummary } from '../helpers/streams.ts';

let server: TestRedis;
let redis: Redis;
const dirs = pipelineDirs();
let running: EngineUnderTest[] = [];
let hook: HttpRecorder | undefined;

beforeAll(async () => {
  server = await startTestRedis();
  redis = server.client();
});
afterEach(async () => {
  await redis.call('CLIENT', 'UNPAUSE').catch(() => undefined);
  await Promise.all(running.splice(0).map((e) => e.stop()));
  await hook?.close();
});
afterAll(async () => {
  await dirs.cleanup();
  await server?.close();
});

describe('a reclaimed batch waiting for a reload\'s batch boundary behind a stalled settle', () => {
  it('stays claimed: its entries never look abandoned (idle past claim_idle_ms) to another consumer', async () => {
    // Batch 1 (seq 1..10) holds an invalid event whose DLQ write Redis refuses (the DLQ key is a
    // string): its settle stalls in the background, batch 2 being read ahead. Its last webhook
    // request pauses Redis's writes (CLIENT PAUSE WRITE) before it answers, so that the reclaim
    // that follows batch 1 (XAUTOCLAIM, a write) waits, and a reload is asked for meanwhile. The
    // reclaimed entries (a dead consumer's) are then in hand, waiting for the old version's
    // settle: they must be kept ours meanwhile, or another replica takes them and runs them too.
    const stream = testKey('in');
    const dlq = `${stream}:dlq`;
    const consumerName = `it-claims-${stream.slice(5, 13)}`;
    let reload: Promise<unknown> | undefined;
    let eut: EngineUnderTest | undefined;
    hook = await startHttpRecorder(async (req) => {
      if ((req.json as { seq: number }).seq === 10) {
        await new Promise((r) => setTimeout(r, 1200));
        await redis.call('CLIENT', 'PAUSE', 1500, 'WRITE');
        setTimeout(() => {
          reload = eut!.engine.reloadFile(eut!.engine.handles.get(doc.name)!.pipeline.file, { force: true, cause: 'test' });
        }, 300);
      }
      return { status: 200 };
    });
    const doc = {
      ...ordersPipeline({ stream, out: 'unused', source: { batch: 10, claim_idle_ms: 1000 } }),
      sink: { type: 'http', with: { url: `${hook.url}/hook` } },
      retry: { attempts: 1, backoff: 'fixed', delay_ms: 10 },
    };
    eut = await startEngine({ redisUrl: server.url, pipelines: await dirs.make([doc]), consumer: consumerName });
    running.push(eut);
    const consumer = eut.engine.handles.get(doc.name)!.consumer!;
    const idle = once(consumer, 'idle');
    eut.engine.pause(doc.name);
    await idle;
    // Set now: the engine's housekeeping (XLEN of the DLQ, every 5 s) fails on it, and is not due
    // again before the end of the test.
    await redis.set(dlq, 'not a stream');

    // A dead consumer's entries, read just now (not yet idle enough to be reclaimed at resume).
    const dead = await addEvents(redis, stream, Array.from({ length: 5 }, (_, i) => orderEvent(101 + i)));
    await redis.xreadgroup('GROUP', doc.name, 'dead', 'COUNT', 5, 'STREAMS', stream, '>');
    const invalid = JSON.stringify({ ...orderEvent(1), data: { orderId: 'o-1', amount: 'lots' } });
    await addEvents(redis, stream, [invalid, ...Array.from({ length: 29 }, (_, i) => orderEvent(i + 2))]);
    eut.engine.resume(doc.name);

    await waitFor(() => reload !== undefined, 'the reload asked for', 10_000);
    await waitFor(async () => {
      const rows = (await redis.xpending(stream, doc.name, dead[0]!, dead[4]!, 10)) as [string, string, number, number][];
      return rows.every((r) => r[1] === consumerName);
    }, 'the dead consumer\'s entries reclaimed');
    // The settle of batch 1 was held by the same pause: its refusal may be seen just after the
    // reclaim is visible in Redis.
    await waitFor(() => consumer.stalled !== undefined, 'the settle of batch 1 stalled on its refused DLQ write');
    await new Promise((r) => setTimeout(r, 2500));
    const rows = (await redis.xpending(stream, doc.name, dead[0]!, dead[4]!, 10)) as [string, string, number, number][];
    expect(rows).toHaveLength(5);
    expect(rows.map((r) => Number(r[2])).filter((ms) => ms >= 1000), 'idle times of the reclaimed entries in hand').toEqual([]);

    await redis.del(dlq);
    await reload;
    await waitFor(async () => (await pendingSummary(redis, stream, doc.name)).count === 0, 'nothing pending', 15_000);
    const sent = hook.requests.map((r) => (r.json as { seq: number }).seq);
    for (const seq of [101, 102, 103, 104, 105]) expect(sent.filter((s) => s === seq), `seq ${seq}`).toHaveLength(1);
  }, 40_000);
});

describe('a healthy pipeline whose DLQ key is not a stream', () => {
  it('runs on under a backlog: its housekeeping (XLEN of the DLQ) does not fail the loop, drop the batch read ahead and charge it a delivery', async () => {
    // Nothing goes to the DLQ: a DLQ key that is not a stream must cost the events nothing. With
    // max_deliveries 1, an entry read a second time is poison (and its DLQ write refused: the
    // pipeline would stall on healthy events). The backlog lasts past the 5 s housekeeping mark.
    const stream = testKey('in');
    const dlq = `${stream}:dlq`;
    const N = 2000;
    hook = await startHttpRecorder(async () => {
      await new Promise((r) => setTimeout(r, 40));
      return { status: 200 };
    });
    const doc = {
      ...ordersPipeline({ stream, out: 'unused', source: { batch: 10, max_deliveries: 1 } }),
      sink: { type: 'http', with: { url: `${hook.url}/hook`, timeout_ms: 60_000 } },
      retry: { attempts: 5, backoff: 'fixed', delay_ms: 10 },
    };
    await redis.set(dlq, 'not a stream');
    await addEvents(redis, stream, Array.from({ length: N }, (_, i) => orderEvent(i + 1)));
    const eut = await startEngine({ redisUrl: server.url, pipelines: await dirs.make([doc]) });
    running.push(eut);
    const consumer = eut.engine.handles.get(doc.name)!.consumer!;
    const started = Date.now();
    await waitFor(async () => consumer.stalled || eut.tally(doc.name).sunk >= N && (await pendingSummary(redis, stream, doc.name)).count === 0
      ? true : undefined, 'the backlog handled', 60_000);
    const state = JSON.stringify({ stalled: consumer.stalled, lastError: consumer.lastError, tally: eut.tally(doc.name) });
    expect(consumer.stalled?.reason, state).toBeUndefined();
    expect(consumer.lastError?.message, state).toBeUndefined();
    expect(Date.now() - started, 'the backlog outlasted the housekeeping interval').toBeGreaterThan(5500);
    expect(eut.tally(doc.name)).toMatchObject({ sunk: N, dlq: 0 });
  }, 90_000);
});

describe('a reclaim', () => {
  it('takes every page of a dead consumer\'s idle entries in one pass, not a page per claim interval', async () => {
    // 25 entries a dead consumer left idle, pages (batch) of 10. All three pages are claimed and
    // handled before the engine's first read of new entries, which waits up to block_ms (30 s)
    // on the quiet stream: a pass that stopped after a page would leave 15 waiting behind it.
    const stream = testKey('in');
    const out = testKey('out');
    const doc = ordersPipeline({ stream, out, source: { batch: 10, claim_idle_ms: 1000, block_ms: 30_000 } });
    await redis.xgroup('CREATE', stream, doc.name, '0', 'MKSTREAM');
    await addEvents(redis, stream, Array.from({ length: 25 }, (_, i) => orderEvent(i + 1)));
    await redis.xreadgroup('GROUP', doc.name, 'dead', 'COUNT', 25, 'STREAMS', stream, '>');
    await new Promise((r) => setTimeout(r, 1100)); // idle past claim_idle_ms

    const eut = await startEngine({ redisUrl: server.url, pipelines: await dirs.make([doc]) });
    running.push(eut);
    await waitFor(async () => (await redis.xlen(out)) === 25, 'every reclaimed entry through', 10_000);
    expect(eut.tally(doc.name)).toMatchObject({ sunk: 25, dlq: 0 });
    expect((await pendingSummary(redis, stream, doc.name)).count).toBe(0);
  });
});

describe("a consumer's own pending entries, deleted from the stream meanwhile", () => {
  it('are acknowledged when it reads them again at its start: nothing stays pending', async () => {
    // What a consumer leaves behind when it dies with entries in hand that are then deleted
    // (XDEL, trimming): its re-read under the same name finds only their ids.
    const stream = testKey('in');
    const out = testKey('out');
    const doc = ordersPipeline({ stream, out, source: { claim_idle_ms: 600_000 } });
    const name = `stable-${stream.slice(5, 13)}`;
    await redis.xgroup('CREATE', stream, doc.name, '0', 'MKSTREAM');
    const ids = await addEvents(redis, stream, [orderEvent(1), orderEvent(2)]);
    await redis.xreadgroup('GROUP', doc.name, name, 'COUNT', 2, 'STREAMS', stream, '>');
    await redis.xdel(stream, ...ids);

    const eut = await startEngine({ redisUrl: server.url, pipelines: await dirs.make([doc]), consumer: name });
    running.push(eut);
    await waitFor(async () => (await pendingSummary(redis, stream, doc.name)).count === 0, 'the deleted entries acknowledged', 10_000);
    await addEvents(redis, stream, [orderEvent(3)]);
    await waitFor(async () => (await redis.xlen(out)) === 1 && (await pendingSummary(redis, stream, doc.name)).count === 0, 'a new event through');
    await waitFor(() => eut.tally(doc.name).total === 1, 'its outcome recorded');
    expect(eut.tally(doc.name)).toMatchObject({ sunk: 1, dlq: 0 });
  });
});
