import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { Queue, Worker, type Job } from 'bullmq';
import type { Redis } from 'ioredis';
import { redisOptionsFromUrl } from '../../../engine/runtime/redis-client.ts';
import { jobIdFor } from '../../../plugins/sinks/queue.ts';
import { diagnosticsOf, positionOf } from '../../helpers/config-errors.ts';
import { startEngine, type EngineUnderTest } from '../../helpers/in-process-engine.ts';
import { orderEvent, pipelineDirs, testKey, type PipelineDoc } from '../../helpers/pipelines.ts';
import { startTestRedis, waitFor, type TestRedis } from '../../helpers/redis.ts';
import { addEvents, groupSettledThrough, readStream } from '../../helpers/streams.ts';

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

const ALL_STATES = ['waiting', 'prioritized', 'delayed', 'active', 'completed', 'failed', 'paused', 'waiting-children'] as const;

function queuePipeline(stream: string, queue: string, options: Record<string, unknown> = {}, extra: Record<string, unknown> = {}): PipelineDoc {
  return {
    name: `queue-${stream.slice(5, 13)}`,
    source: { stream, start: '0', block_ms: 100 },
    transform: '{ "orderId": data.orderId, "amount": data.amount, "kind": "validate-order" }',
    sink: { type: 'queue', with: { queue, job: 'validate', options } },
    retry: { attempts: 3, backoff: 'fixed', delay_ms: 10 },
    ...extra,
  };
}

async function run(doc: PipelineDoc): Promise<EngineUnderTest> {
  const eut = await startEngine({ redisUrl: server.url, pipelines: await dirs.make([doc]) });
  engines.push(eut);
  return eut;
}

/** A BullMQ Queue handle for the test (closed after it). */
function openQueue(name: string): Queue {
  const q = new Queue(name, { connection: redisOptionsFromUrl(server.url) });
  closers.push(() => q.close());
  return q;
}

async function allJobs(q: Queue): Promise<Job[]> {
  return q.getJobs([...ALL_STATES]);
}

async function totalJobs(q: Queue): Promise<number> {
  const counts = await q.getJobCounts(...ALL_STATES);
  return Object.values(counts).reduce((a, b) => a + b, 0);
}

/** An entry id a little ahead of now, so a test can know a job id before the entry exists. */
function futureId(seq: number): string {
  return `${Date.now() + 60_000}-${seq}`;
}

describe('queue sink against a real BullMQ queue', () => {
  it('enqueues one job per event: data = the transformed event, name = job, id from the entry id, options from the YAML', async () => {
    const stream = testKey('in');
    const queueName = testKey('jobs');
    const options = { attempts: 4, backoff: { type: 'exponential', delay: 1500 }, removeOnComplete: { age: 3600 }, delay: 60_000 };
    const doc = queuePipeline(stream, queueName, options);
    await run(doc);
    const ids = await addEvents(redis, stream, [orderEvent(1), orderEvent(2)]);
    await waitFor(() => groupSettledThrough(redis, stream, doc.name, ids[1]!), 'both entries settled');

    const q = openQueue(queueName);
    const jobs = (await allJobs(q)).sort((a, b) => String(a.id).localeCompare(String(b.id)));
    expect(jobs).toHaveLength(2);
    ids.forEach((id, i) => {
      const job = jobs.find((j) => j.id === jobIdFor(doc.name, id))!;
      expect(job, `job of entry ${id}`).toBeDefined();
      expect(job.id).toBe(`${doc.name}-${id}`);
      expect(job.name).toBe('validate');
      expect(job.data).toEqual({ orderId: `o-${i + 1}`, amount: i + 1, kind: 'validate-order' });
      expect(job.opts).toMatchObject({ attempts: 4, backoff: { type: 'exponential', delay: 1500 }, removeOnComplete: { age: 3600 }, delay: 60_000 });
    });
    expect(await q.getJobCounts('delayed')).toEqual({ delayed: 2 });
  });

  it('a worker sees the job and its attempts option is applied: a failing job is tried `attempts` times', async () => {
    const stream = testKey('in');
    const queueName = testKey('jobs');
    const doc = queuePipeline(stream, queueName, { attempts: 2, backoff: { type: 'fixed', delay: 10 } });
    await run(doc);
    const seen: unknown[] = [];
    const worker = new Worker(queueName, async (job) => {
      seen.push(job.data);
      throw new Error('the validator is down');
    }, { connection: redisOptionsFromUrl(server.url) });
    closers.push(() => worker.close());
    const [id] = await addEvents(redis, stream, [orderEvent(7)]);

    const q = openQueue(queueName);
    const jobId = jobIdFor(doc.name, id!);
    await waitFor(async () => (await q.getJobState(jobId)) === 'failed', 'the job to fail for good');
    // Read it once it has failed for good: a copy read earlier holds the attempts made by then.
    const job = (await q.getJob(jobId))!;
    expect(job.attemptsMade).toBe(2);
    expect(seen).toEqual([{ orderId: 'o-7', amount: 7, kind: 'validate-order' }, { orderId: 'o-7', amount: 7, kind: 'validate-order' }]);
  });

  it('a redelivered entry does not enqueue a second job', async () => {
    const stream = testKey('in');
    const queueName = testKey('jobs');
    const doc = queuePipeline(stream, queueName, { delay: 60_000 });
    const eut = await run(doc);
    const ids = await addEvents(redis, stream, [orderEvent(1), orderEvent(2)]);
    await waitFor(() => groupSettledThrough(redis, stream, doc.name, ids[1]!), 'both entries settled');
    const q = openQueue(queueName);
    expect(await totalJobs(q)).toBe(2);

    // The group hands both entries out again (as after a lost ack): same entry ids.
    await redis.xgroup('SETID', stream, doc.name, '0');
    await waitFor(() => eut.tally(doc.name).sunk === 4, 'both entries sunk a second time');
    expect(await totalJobs(q)).toBe(2);
    expect((await allJobs(q)).map((j) => j.id).sort()).toEqual(ids.map((id) => jobIdFor(doc.name, id)).sort());
  });

  it('a redelivered entry does not enqueue again after a worker completed its job', async () => {
    const stream = testKey('in');
    const queueName = testKey('jobs');
    const doc = queuePipeline(stream, queueName, { removeOnComplete: { age: 3600 } });
    const eut = await run(doc);
    let processed = 0;
    const worker = new Worker(queueName, async () => {
      processed++;
      return 'ok';
    }, { connection: redisOptionsFromUrl(server.url) });
    closers.push(() => worker.close());
    const [id] = await addEvents(redis, stream, [orderEvent(1)]);
    const q = openQueue(queueName);
    await waitFor(async () => (await q.getJobCounts('completed')).completed === 1, 'the job completed');

    await redis.xgroup('SETID', stream, doc.name, '0');
    await waitFor(() => eut.tally(doc.name).sunk === 2, 'the entry sunk a second time');
    await waitFor(() => groupSettledThrough(redis, stream, doc.name, id!), 'settled');
    expect(await q.getJobCounts('waiting', 'completed', 'active')).toMatchObject({ waiting: 0, completed: 1, active: 0 });
    expect(processed).toBe(1);
  });

  it('Redis refusing the job (its key holds another type) is retried per retry, then the entry goes to the DLQ', async () => {
    const stream = testKey('in');
    const queueName = testKey('jobs');
    const doc = queuePipeline(stream, queueName, {}, { retry: { attempts: 3, backoff: 'fixed', delay_ms: 10 } });
    const id = futureId(1);
    await redis.set(`bull:${queueName}:${jobIdFor(doc.name, id)}`, 'not a job hash');
    await run(doc);
    await redis.xadd(stream, id, 'payload', JSON.stringify(orderEvent(1)));

    const [dlq] = await waitFor(async () => {
      const got = await readStream(redis, `${stream}:dlq`);
      return got.length > 0 && got;
    }, 'the DLQ entry');
    expect(dlq!.fields).toMatchObject({ stage: 'sink', source_id: id, attempts: '3', pipeline: doc.name });
    expect(dlq!.fields.error).toMatch(/WRONGTYPE/);
  });

  // SPEC §4 / STYLE: only the messages that failed are retried and DLQd. The sink enqueues with
  // addBulk, which rejects the whole batch on the first failed job (after the others were added).
  it('in one batch, only the entry whose job Redis refuses goes to the DLQ; the others are enqueued once', async () => {
    const stream = testKey('in');
    const queueName = testKey('jobs');
    const doc = queuePipeline(stream, queueName, { delay: 60_000 });
    const ids = [futureId(1), futureId(2), futureId(3)];
    await redis.set(`bull:${queueName}:${jobIdFor(doc.name, ids[1]!)}`, 'not a job hash');
    const multi = redis.multi();
    ids.forEach((id, i) => multi.xadd(stream, id, 'payload', JSON.stringify(orderEvent(i + 1))));
    await multi.exec();
    await run(doc);

    await waitFor(() => groupSettledThrough(redis, stream, doc.name, ids[2]!), 'all three settled');
    const q = openQueue(queueName);
    const jobIds = (await allJobs(q)).map((j) => j.id).sort();
    expect(jobIds).toEqual([jobIdFor(doc.name, ids[0]!), jobIdFor(doc.name, ids[2]!)].sort());
    const dlq = await readStream(redis, `${stream}:dlq`);
    expect(dlq.map((e) => e.fields.source_id), 'entries in the DLQ').toEqual([ids[1]]);
  });
});

describe('queue sink config is checked at load, errors as FILE:LINE:COL', () => {
  const cases: { name: string; with: string; needle: string; offset?: number; message: string }[] = [
    { name: 'no queue', with: '    job: validate\n', needle: 'job: validate', message: "queue sink 'with' is missing required key 'queue'" },
    { name: 'no job', with: '    queue: q\n', needle: 'queue: q', message: "queue sink 'with' is missing required key 'job'" },
    { name: 'an unknown key', with: '    queue: q\n    job: j\n    attempts: 3\n', needle: 'attempts', message: "unknown key 'attempts' in queue sink 'with'" },
    { name: 'options that are not a mapping', with: '    queue: q\n    job: j\n    options: lots\n', needle: 'lots', message: "queue sink 'with'.options must be object" },
    { name: 'a jobId in options (the sink sets it)', with: '    queue: q\n    job: j\n    options: { jobId: fixed }\n', needle: 'fixed', message: "queue sink 'with'.options.jobId must NOT be valid" },
  ];
  it.each(cases)('$name', async (c) => {
    const text = `name: bad-queue\nsource: { stream: s }\nsink:\n  type: queue\n  with:\n${c.with}`;
    const diagnostics = await diagnosticsOf(text);
    expect(diagnostics).toHaveLength(1);
    expect(diagnostics[0]!.message).toContain(c.message);
    expect({ line: diagnostics[0]!.line, col: diagnostics[0]!.col }).toEqual(positionOf(text, c.needle, c.offset ?? 0));
  });
});
