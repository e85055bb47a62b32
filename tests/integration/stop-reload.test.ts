/**
 * A stop during a reload: whatever the reload would start (a stream consumer, a schedule's
 * BullMQ worker) must not run once engine.stop() has resolved, whether the stop ended within its
 * time limit or by it.
 */
import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { Queue } from 'bullmq';
import type { Redis } from 'ioredis';
import { stringify } from 'yaml';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { redisOptionsFromUrl } from '../../engine/runtime/redis-client.ts';
import { startEngine, type EngineUnderTest } from '../helpers/in-process-engine.ts';
import { orderEvent, ordersPipeline, pipelineDirs, testKey, type PipelineDoc } from '../helpers/pipelines.ts';
import { startHttpRecorder, type HttpRecorder } from '../helpers/http-recorder.ts';
import { startTestRedis, waitFor, type TestRedis } from '../helpers/redis.ts';
import { addEvents } from '../helpers/streams.ts';

let server: TestRedis;
let redis: Redis;
const dirs = pipelineDirs();
let running: EngineUnderTest[] = [];
let cleanups: (() => Promise<unknown>)[] = [];

beforeAll(async () => {
  server = await startTestRedis();
  redis = server.client();
});
afterEach(async () => {
  await redis.call('CLIENT', 'UNPAUSE').catch(() => undefined);
  await Promise.all(running.splice(0).map((e) => e.stop()));
  await Promise.all(cleanups.splice(0).map((c) => c().catch(() => undefined)));
});
afterAll(async () => {
  await dirs.cleanup();
  await server?.close();
});

/** Names of the client connections Redis has open now. */
async function clientNames(): Promise<string[]> {
  const list = String(await redis.call('CLIENT', 'LIST'));
  return list.split('\n').flatMap((line) => /\bname=(\S+)/.exec(line)?.[1] ?? []);
}

describe('a stop while a reload starts a pipeline', () => {
  it('a schedule pipeline a reload is starting when the stop comes never runs a tick after the stop', async () => {
    // The reload adds a schedule pipeline; its job scheduler's upsert is held (CLIENT PAUSE WRITE)
    // so the stop comes while the source is starting. Nothing of it may run after stop().
    const dir = await dirs.make([]);
    const eut = await startEngine({ redisUrl: server.url, pipelines: dir });
    running.push(eut);
    const out = testKey('ticks');
    const doc: PipelineDoc = {
      name: `tick-${out.slice(5, 13)}`,
      source: { schedule: '1s' },
      transform: '{ "event": "report-due", "tick": event }',
      sink: { type: 'publish', with: { stream: out } },
    };
    const file = join(dir, `${doc.name}.yaml`);
    await writeFile(file, stringify(doc));
    await redis.call('CLIENT', 'PAUSE', 1500, 'WRITE');
    const reload = eut.engine.reloadFile(file, { cause: 'test' });
    await waitFor(() => eut.engine.handles.get(doc.name)?.source, 'the schedule source starting');
    await eut.engine.stop(10_000);
    await reload.catch(() => undefined); // its source's start fails: the stop closed its queue

    // Three seconds of a 1 s schedule after the stop: no job of it was taken by a worker.
    await new Promise((r) => setTimeout(r, 3000));
    const queue = new Queue(`synapse-schedule-${doc.name}`, { connection: redisOptionsFromUrl(server.url) });
    cleanups.push(async () => {
      await queue.removeJobScheduler(doc.name).catch(() => undefined);
      await queue.close();
    });
    const counts = await queue.getJobCounts('active', 'completed', 'failed');
    expect(counts).toEqual({ active: 0, completed: 0, failed: 0 });
  }, 30_000);

  describe('a reload that outlasts the stop\'s time limit', () => {
    let hung: HttpRecorder;
    let slow: HttpRecorder;
    beforeAll(async () => {
      hung = await startHttpRecorder(() => 'hang');
      slow = await startHttpRecorder(async () => {
        await new Promise((r) => setTimeout(r, 2000));
        return { status: 200 };
      });
    });
    afterAll(async () => {
      await hung.close();
      await slow.close();
    });

    it('starts no consumer once the stop has ended: no loop of the pipeline runs on after engine.stop()', async () => {
      // Pipeline A's batch in hand waits on a webhook that never answers: the stop ends by its
      // time limit (500 ms). Pipeline B's batch waits 2 s on its webhook; a reload moves B to
      // another stream, so it stops B's consumer (waiting for that batch), then starts a new one —
      // after the stop has ended, with nothing left to stop it.
      const hookedOn = (rec: HttpRecorder) => ({
        sink: { type: 'http', with: { url: `${rec.url}/hook`, timeout_ms: 600_000 } }, retry: { attempts: 1, backoff: 'fixed', delay_ms: 10 },
      });
      const [streamA, streamB] = [testKey('a'), testKey('b')];
      const a = { ...ordersPipeline({ stream: streamA, out: 'unused' }), ...hookedOn(hung) };
      const b = { ...ordersPipeline({ stream: streamB, out: 'unused' }), ...hookedOn(slow) };
      const dir = await dirs.make([a, b]);
      const eut = await startEngine({ redisUrl: server.url, pipelines: dir });
      running.push(eut);
      await addEvents(redis, streamA, [orderEvent(1)]);
      await addEvents(redis, streamB, [orderEvent(2)]);
      await waitFor(() => hung.requests.length > 0 && slow.requests.length > 0, 'both requests in flight');

      const file = join(dir, `${b.name}.yaml`);
      await writeFile(file, stringify({ ...b, source: { ...(b as PipelineDoc).source as object, stream: testKey('b2') } }));
      const reload = eut.engine.reloadFile(file, { cause: 'test' });
      await new Promise((r) => setTimeout(r, 100));
      await eut.engine.stop(500);
      const result = await reload.catch((err: unknown) => err);
      const h = eut.engine.handles.get(b.name);
      cleanups.push(async () => {
        await h?.consumer?.stop();
        h?.blocking?.disconnect();
      });
      await new Promise((r) => setTimeout(r, 500));
      // A consumer started after the stop keeps looping (and failing) on the closed connection.
      expect(h?.consumer?.lastError, JSON.stringify(result)).toBeUndefined();
    }, 30_000);
  });
});
