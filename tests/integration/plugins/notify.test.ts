import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { Queue } from 'bullmq';
import type { Redis } from 'ioredis';
import { redisOptionsFromUrl } from '../../../engine/runtime/redis-client.ts';
import { jobIdFor } from '../../../plugins/sinks/queue.ts';
import type { Notification } from '../../../plugins/sinks/notify.ts';
import { diagnosticsOf, positionOf } from '../../helpers/config-errors.ts';
import { startHttpRecorder, type HttpRecorder } from '../../helpers/http-recorder.ts';
import { startEngine, type EngineUnderTest } from '../../helpers/in-process-engine.ts';
import { pipelineDirs, testKey, type PipelineDoc } from '../../helpers/pipelines.ts';
import { startTestRedis, waitFor, type TestRedis } from '../../helpers/redis.ts';
import { addEvents, groupSettledThrough, readPayloads, readStream } from '../../helpers/streams.ts';

let server: TestRedis;
let redis: Redis;
const dirs = pipelineDirs();
let engines: EngineUnderTest[] = [];
let closers: (() => Promise<unknown>)[] = [];

beforeAll(async () => {
  server = await startTestRedis();
  redis = server.client();
});
afterEach(async () => {
  await Promise.all(engines.splice(0).map((e) => e.stop()));
  await Promise.all(closers.splice(0).map((c) => c().catch(() => undefined)));
});
afterAll(async () => {
  await dirs.cleanup();
  await server?.close();
});

const TRANSFORM = `{
  "userId": data.userId,
  "type": event = "task-completed" ? "success" : "error",
  "title": event = "task-completed" ? "Task Completed" : "Task Failed",
  "message": "Your task " & data.title & " has " & (event = "task-completed" ? "completed." : "failed."),
  "data": { "taskId": data.taskId }
}`;

function taskEvent(taskId: string, userId: string | undefined, event = 'task-completed'): Record<string, unknown> {
  return { event, source: 'task-orchestrator', timestamp: new Date().toISOString(), data: { taskId, title: `Report ${taskId}`, ...(userId ? { userId } : {}) } };
}

function notifyPipeline(stream: string, withBlock: Record<string, unknown>, extra: Record<string, unknown> = {}): PipelineDoc {
  return {
    name: `notify-${stream.slice(5, 13)}`,
    source: { stream, start: '0', block_ms: 100 },
    filter: 'event in ["task-completed", "task-failed"]',
    transform: TRANSFORM,
    sink: { type: 'notify', with: withBlock },
    retry: { attempts: 3, backoff: 'fixed', delay_ms: 10 },
    ...extra,
  };
}

async function run(doc: PipelineDoc): Promise<EngineUnderTest> {
  const eut = await startEngine({ redisUrl: server.url, pipelines: await dirs.make([doc]) });
  engines.push(eut);
  return eut;
}

async function recorder(...args: Parameters<typeof startHttpRecorder>): Promise<HttpRecorder> {
  const r = await startHttpRecorder(...args);
  closers.push(() => r.close());
  return r;
}

function openQueue(name: string): Queue {
  const q = new Queue(name, { connection: redisOptionsFromUrl(server.url) });
  closers.push(() => q.close());
  return q;
}

async function jobTotal(q: Queue): Promise<number> {
  const counts = await q.getJobCounts('waiting', 'prioritized', 'delayed', 'active', 'completed', 'failed', 'paused');
  return Object.values(counts).reduce((a, b) => a + b, 0);
}

describe('notify sink against a real Redis, BullMQ and webhook', () => {
  it("writes the user's inbox stream, enqueues a delivery job and calls the webhook with an Idempotency-Key", async () => {
    const hook = await recorder();
    const stream = testKey('in');
    const inbox = testKey('inbox');
    const queueName = testKey('delivery');
    const doc = notifyPipeline(stream, { inbox, queue: queueName, attempts: 4, backoff_ms: 500, webhook: `${hook.url}/notify` });
    await run(doc);
    const ids = await addEvents(redis, stream, [taskEvent('t1', 'u1'), taskEvent('t2', 'u2', 'task-failed'), taskEvent('t3', 'u1', 'task-created')]);
    await waitFor(() => groupSettledThrough(redis, stream, doc.name, ids[2]!), 'all entries settled');

    const u1 = await readPayloads<Notification>(redis, `${inbox}:u1`);
    const u2 = await readPayloads<Notification>(redis, `${inbox}:u2`);
    expect(u1).toEqual([{
      id: `${doc.name}:${ids[0]}`, userId: 'u1', type: 'success', title: 'Task Completed',
      message: 'Your task Report t1 has completed.', data: { taskId: 't1' }, createdAt: expect.any(String),
    }]);
    expect(u2).toEqual([expect.objectContaining({ id: `${doc.name}:${ids[1]}`, userId: 'u2', type: 'error', title: 'Task Failed', message: 'Your task Report t2 has failed.' })]);
    expect(new Date(u1[0]!.createdAt).toISOString()).toBe(u1[0]!.createdAt);

    const q = openQueue(queueName);
    expect(await jobTotal(q)).toBe(2);
    const job = (await q.getJob(jobIdFor(`notify-${doc.name}`, ids[0]!)))!;
    expect(job, 'the delivery job of the first entry').toBeDefined();
    expect(job.name).toBe('notification');
    expect(job.data).toEqual(u1[0]);
    expect(job.opts).toMatchObject({ attempts: 4, backoff: { type: 'exponential', delay: 500 } });

    expect(hook.requests).toHaveLength(2);
    const first = hook.requests.find((r) => (r.json as Notification).userId === 'u1')!;
    expect(first.url).toBe('/notify');
    expect(first.method).toBe('POST');
    expect(first.json).toEqual(u1[0]);
    expect(first.headers['idempotency-key']).toBe(`${doc.name}:${ids[0]}`);
    expect(await redis.exists(`${stream}:dlq`)).toBe(0);
  });

  it('a redelivered entry writes no second inbox entry, enqueues no second job and calls the webhook once', async () => {
    const hook = await recorder();
    const stream = testKey('in');
    const inbox = testKey('inbox');
    const queueName = testKey('delivery');
    const doc = notifyPipeline(stream, { inbox, queue: queueName, webhook: hook.url });
    const eut = await run(doc);
    const [id] = await addEvents(redis, stream, [taskEvent('t1', 'u1')]);
    await waitFor(() => groupSettledThrough(redis, stream, doc.name, id!), 'the entry settled');

    await redis.xgroup('SETID', stream, doc.name, '0');
    await waitFor(() => eut.tally(doc.name).sunk === 2, 'the entry sunk a second time');
    await waitFor(() => groupSettledThrough(redis, stream, doc.name, id!), 'the redelivery settled');

    expect(await redis.xlen(`${inbox}:u1`)).toBe(1);
    expect(await jobTotal(openQueue(queueName))).toBe(1);
    expect(hook.requests).toHaveLength(1);
  });

  it('a webhook failing once is retried without writing the inbox or enqueueing twice; a later redelivery calls it no more', async () => {
    const hook = await recorder((req) => (req.n === 1 ? { status: 502 } : { status: 200 }));
    const stream = testKey('in');
    const inbox = testKey('inbox');
    const queueName = testKey('delivery');
    const doc = notifyPipeline(stream, { inbox, queue: queueName, webhook: hook.url });
    const eut = await run(doc);
    const [id] = await addEvents(redis, stream, [taskEvent('t1', 'u1')]);
    await waitFor(() => groupSettledThrough(redis, stream, doc.name, id!), 'the entry settled');
    await waitFor(() => eut.tally(doc.name).total >= 1, 'the engine to record the outcomes');
    expect(eut.tally(doc.name)).toMatchObject({ sunk: 1, dlq: 0 });
    expect(hook.requests).toHaveLength(2);
    expect(await redis.xlen(`${inbox}:u1`)).toBe(1);
    expect(await jobTotal(openQueue(queueName))).toBe(1);

    await redis.xgroup('SETID', stream, doc.name, '0');
    await waitFor(() => eut.tally(doc.name).sunk === 2, 'the entry sunk a second time');
    expect(hook.requests).toHaveLength(2);
    expect(await redis.xlen(`${inbox}:u1`)).toBe(1);
  });

  it('a webhook that keeps failing with 5xx is retried per retry, then the entry goes to the DLQ (the inbox written once)', async () => {
    const hook = await recorder(() => ({ status: 500 }));
    const stream = testKey('in');
    const inbox = testKey('inbox');
    const doc = notifyPipeline(stream, { inbox, webhook: hook.url }, { retry: { attempts: 3, backoff: 'fixed', delay_ms: 10 } });
    await run(doc);
    const [id] = await addEvents(redis, stream, [taskEvent('t1', 'u1')]);
    const [dlq] = await waitFor(async () => {
      const got = await readStream(redis, `${stream}:dlq`);
      return got.length > 0 && got;
    }, 'the DLQ entry');
    expect(dlq!.fields).toMatchObject({ stage: 'sink', source_id: id, attempts: '3' });
    expect(dlq!.fields.error).toMatch(/HTTP 500/);
    expect(hook.requests).toHaveLength(3);
    expect(await redis.xlen(`${inbox}:u1`)).toBe(1);
  });

  it('a webhook answering 4xx sends the entry to the DLQ at once', async () => {
    const hook = await recorder(() => ({ status: 410 }));
    const stream = testKey('in');
    const doc = notifyPipeline(stream, { inbox: testKey('inbox'), webhook: hook.url });
    await run(doc);
    await addEvents(redis, stream, [taskEvent('t1', 'u1')]);
    const [dlq] = await waitFor(async () => {
      const got = await readStream(redis, `${stream}:dlq`);
      return got.length > 0 && got;
    }, 'the DLQ entry');
    expect(dlq!.fields).toMatchObject({ stage: 'sink', attempts: '1' });
    expect(dlq!.fields.error).toMatch(/HTTP 410/);
    expect(hook.requests).toHaveLength(1);
  });

  it('a notification without a userId goes to the DLQ; the others of its batch are delivered', async () => {
    const stream = testKey('in');
    const inbox = testKey('inbox');
    const doc = notifyPipeline(stream, { inbox });
    await run(doc);
    const ids = await addEvents(redis, stream, [taskEvent('t1', 'u1'), taskEvent('t2', undefined), taskEvent('t3', 'u3')]);
    await waitFor(() => groupSettledThrough(redis, stream, doc.name, ids[2]!), 'all entries settled');
    const dlq = await readStream(redis, `${stream}:dlq`);
    expect(dlq).toHaveLength(1);
    expect(dlq[0]!.fields).toMatchObject({ stage: 'sink', source_id: ids[1], attempts: '1' });
    expect(dlq[0]!.fields.error).toMatch(/missing: userId/);
    expect(await redis.xlen(`${inbox}:u1`)).toBe(1);
    expect(await redis.xlen(`${inbox}:u3`)).toBe(1);
    expect(await redis.keys(`${inbox}:*`)).toHaveLength(2);
  });

  // The inbox script sets the entry's mark, then XADDs. Redis does not undo a script's writes
  // when a later command in it fails, so a failed XADD leaves the mark behind: the retry finds
  // it and "succeeds" without writing, and the notification is lost instead of DLQd.
  it('an inbox write that fails (a key of another type in its place) is retried and DLQd, not marked done', async () => {
    const stream = testKey('in');
    const inbox = testKey('inbox');
    await redis.set(`${inbox}:u1`, 'not a stream');
    const doc = notifyPipeline(stream, { inbox }, { retry: { attempts: 3, backoff: 'fixed', delay_ms: 10 } });
    const eut = await run(doc);
    const [id] = await addEvents(redis, stream, [taskEvent('t1', 'u1')]);
    await waitFor(() => groupSettledThrough(redis, stream, doc.name, id!), 'the entry settled');
    await waitFor(() => eut.tally(doc.name).total >= 1, 'the engine to record the outcomes');
    expect(eut.tally(doc.name), 'outcome of an entry whose inbox cannot be written').toMatchObject({ sunk: 0, dlq: 1 });
    const dlq = await readStream(redis, `${stream}:dlq`);
    expect(dlq.map((e) => [e.fields.source_id, e.fields.stage, e.fields.attempts])).toEqual([[id, 'sink', '3']]);
    expect(dlq[0]!.fields.error).toMatch(/WRONGTYPE/);
  });

  it("the inbox is capped near inbox_maxlen, keeping the newest notifications", async () => {
    const stream = testKey('in');
    const inbox = testKey('inbox');
    const doc = notifyPipeline(stream, { inbox, inbox_maxlen: 10 });
    await run(doc);
    const n = 400;
    const ids = await addEvents(redis, stream, Array.from({ length: n }, (_, i) => taskEvent(`t${i}`, 'u1')));
    await waitFor(() => groupSettledThrough(redis, stream, doc.name, ids[n - 1]!), 'every entry settled');

    // MAXLEN ~ trims whole stream nodes: the inbox keeps at least inbox_maxlen, at most a node more.
    const nodeMax = Number(((await redis.config('GET', 'stream-node-max-entries')) as string[])[1]);
    const len = await redis.xlen(`${inbox}:u1`);
    expect(len).toBeGreaterThanOrEqual(10);
    expect(len).toBeLessThanOrEqual(10 + nodeMax);
    expect(len).toBeLessThan(n);
    const kept = await readPayloads<Notification>(redis, `${inbox}:u1`);
    expect(kept.at(-1)!.data).toEqual({ taskId: `t${n - 1}` });
  });
});

describe('notify sink config is checked at load, errors as FILE:LINE:COL', () => {
  const cases: { name: string; with: string; needle: string; offset?: number; message: string }[] = [
    { name: 'an unknown key', with: '    inbox: notifications\n    email: yes\n', needle: 'email', message: "unknown key 'email' in notify sink 'with'" },
    { name: 'a webhook that is not http(s)', with: '    webhook: mailto:ops@example.com\n', needle: 'mailto:', message: "notify sink 'with'.webhook must match pattern" },
    { name: 'inbox_maxlen below 1', with: '    inbox_maxlen: 0\n', needle: 'inbox_maxlen: 0', offset: 14, message: "notify sink 'with'.inbox_maxlen must be >= 1" },
    { name: 'attempts that is not an integer', with: '    queue: delivery\n    attempts: many\n', needle: 'many', message: "notify sink 'with'.attempts must be integer" },
    { name: 'an empty inbox prefix', with: "    inbox: ''\n", needle: "''", message: "notify sink 'with'.inbox must NOT have fewer than 1 characters" },
    { name: 'dedupe_ttl_s under a minute', with: '    dedupe_ttl_s: 5\n', needle: 'dedupe_ttl_s: 5', offset: 14, message: "notify sink 'with'.dedupe_ttl_s must be >= 60" },
  ];
  it.each(cases)('$name', async (c) => {
    const text = `name: bad-notify\nsource: { stream: s }\nsink:\n  type: notify\n  with:\n${c.with}`;
    const diagnostics = await diagnosticsOf(text);
    expect(diagnostics).toHaveLength(1);
    expect(diagnostics[0]!.message).toContain(c.message);
    expect({ line: diagnostics[0]!.line, col: diagnostics[0]!.col }).toEqual(positionOf(text, c.needle, c.offset ?? 0));
  });
});
