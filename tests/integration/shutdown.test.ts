import { randomUUID } from 'node:crypto';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import type { Redis } from 'ioredis';
import { toRecord } from '../../engine/runtime/stream-reader.ts';
import { killEngines, spawnEngine } from '../helpers/engine-process.ts';
import { FIXTURE_SCHEMAS, orderEvent, ordersPipeline, pipelineDirs, testKey } from '../helpers/pipelines.ts';
import { startTestRedis, waitFor, type TestRedis } from '../helpers/redis.ts';
import { addEvents, pendingSummary, readPayloads } from '../helpers/streams.ts';

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
});
