import { randomUUID } from 'node:crypto';
import { Writable } from 'node:stream';
import { setTimeout as delay } from 'node:timers/promises';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import type { Redis } from 'ioredis';
import { Engine } from '../../engine/runtime/engine.ts';
import { createLogger } from '../../engine/logger.ts';
import { FIXTURE_SCHEMAS, orderEvent, ordersPipeline, pipelineDirs, testKey, type PipelineDoc } from '../helpers/pipelines.ts';
import { startTestRedis, timed, waitFor, type TestRedis } from '../helpers/redis.ts';
import { addEvents, pendingSummary } from '../helpers/streams.ts';
import { gate, startHttpRecorder } from '../helpers/http-recorder.ts';

// Pause, then stop: a paused pipeline (waiting for a resume, or still finishing a read it had
// asked for) stops at once, with nothing to warn about and nothing of its own left behind.

let server: TestRedis;
let redis: Redis;
const dirs = pipelineDirs();
let open: Engine[] = [];

beforeAll(async () => {
  server = await startTestRedis();
  redis = server.client();
});
afterEach(async () => {
  await Promise.all(open.splice(0).map((e) => e.stop()));
});
afterAll(async () => {
  await dirs.cleanup();
  await server?.close();
});

/** An engine in this process whose log lines (warn and above) are kept. */
async function start(docs: PipelineDoc[]): Promise<{ engine: Engine; warnings: Record<string, unknown>[] }> {
  const warnings: Record<string, unknown>[] = [];
  const stream = new Writable({
    write(chunk: Buffer, _enc, done) {
      for (const line of chunk.toString().split('\n').filter(Boolean)) {
        const l = JSON.parse(line) as Record<string, unknown>;
        if (Number(l.level) >= 40) warnings.push(l);
      }
      done();
    },
  });
  const engine = new Engine({
    redisUrl: server.url, pipelinesDir: await dirs.make(docs), schemasDir: FIXTURE_SCHEMAS,
    logger: createLogger({ level: 'info', stream }), consumer: `it-pause-${randomUUID().slice(0, 8)}`,
  });
  open.push(engine);
  await engine.start();
  return { engine, warnings };
}


describe('pause, then stop', () => {
  it('a quiet pipeline paused while waiting on its read stops at once', async () => {
    const stream = testKey('in');
    const out = testKey('out');
    const doc = ordersPipeline({ stream, out, source: { block_ms: 60_000 } });
    const { engine, warnings } = await start([doc]);
    await addEvents(redis, stream, [orderEvent(1)]);
    await waitFor(async () => (await redis.xlen(out)) === 1, 'the event through');
    expect(engine.pause(doc.name)).toBe(true);
    await delay(200);
    expect(await timed(engine.stop(20_000), 5_000)).toBeLessThan(5_000);
    expect(warnings).toEqual([]);
    expect((await pendingSummary(redis, stream, doc.name)).count).toBe(0);
  });

  it('paused during a full batch, its next read still waiting on a now quiet stream: the batch settles, and a stop then cuts that read', async () => {
    const { held, release } = gate();
    const hook = await startHttpRecorder(async () => {
      await held;
      return { status: 200, body: { ok: true } };
    });
    try {
      const stream = testKey('in');
      const doc = { ...ordersPipeline({ stream, out: 'unused', source: { batch: 2, block_ms: 60_000 } }), sink: { type: 'http', with: { url: `${hook.url}/hook` } } };
      const { engine, warnings } = await start([doc]);
      await addEvents(redis, stream, [orderEvent(1), orderEvent(2)]);
      await waitFor(() => hook.requests.length >= 1, 'the batch at the webhook');
      engine.pause(doc.name);
      release();
      await waitFor(async () => (await pendingSummary(redis, stream, doc.name)).count === 0, 'the batch settled');
      // Paused, it now waits for the read it asked for during the batch (up to 60 s).
      await delay(300);
      expect(await timed(engine.stop(20_000), 5_000)).toBeLessThan(5_000);
      expect(warnings).toEqual([]);
      expect((await pendingSummary(redis, stream, doc.name)).count).toBe(0);
    } finally {
      release();
      await hook.close();
    }
  });

  it('a pipeline removed while the engine stops, and stopped twice: both end at once, nothing left pending', async () => {
    const stream = testKey('in');
    const out = testKey('out');
    const doc = ordersPipeline({ stream, out, source: { block_ms: 60_000 } });
    const { engine, warnings } = await start([doc]);
    await addEvents(redis, stream, [orderEvent(1)]);
    await waitFor(async () => (await redis.xlen(out)) === 1, 'the event through');
    const consumer = engine.handles.get(doc.name)!.consumer!;
    const all = Promise.all([consumer.stop(), consumer.stop(), engine.removePipeline(doc.name), engine.stop(20_000)]);
    expect(await timed(all, 5_000)).toBeLessThan(5_000);
    expect(warnings).toEqual([]);
    expect((await pendingSummary(redis, stream, doc.name)).count).toBe(0);
  });
});
