/**
 * Settling a batch: DLQ writes and acknowledgements as one step. An entry is acknowledged only
 * once its DLQ entry is written; a DLQ write Redis refuses leaves the entry pending, is counted and
 * logged, and lands once Redis accepts it again — with its own stage and reason, unprocessed again.
 */
import { once } from 'node:events';
import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { stringify } from 'yaml';
import type { Redis } from 'ioredis';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import type { Outcome } from '../../engine/runner/pipeline-runner.ts';
import { DlqWriteRefusedError } from '../../engine/errors.ts';
import { settleBatch } from '../../engine/runtime/settle.ts';
import { metricValue, payloads, ping, pipelineYaml, publish, startEngine as startEngine2 } from '../helpers/engine.ts';
import { startEngine, type EngineUnderTest } from '../helpers/in-process-engine.ts';
import { orderEvent, ordersPipeline, pipelineDirs, testKey, type PipelineDoc } from '../helpers/pipelines.ts';
import { startHttpRecorder, type HttpRecorder } from '../helpers/http-recorder.ts';
import { startTestRedis, waitFor, type TestRedis } from '../helpers/redis.ts';
import { addEvents, pendingSummary, readPayloads, readStream } from '../helpers/streams.ts';

let server: TestRedis;
let redis: Redis;
const dirs = pipelineDirs();
let running: EngineUnderTest[] = [];

beforeAll(async () => {
  server = await startTestRedis();
  redis = server.client();
});
afterEach(async () => {
  await Promise.all(running.map((e) => e.stop()));
  running = [];
});
afterAll(async () => {
  await dirs.cleanup();
  await server?.close();
});

async function run(docs: PipelineDoc[], consumer?: string): Promise<EngineUnderTest> {
  const eut = await startEngine({ redisUrl: server.url, pipelines: await dirs.make(docs), consumer });
  running.push(eut);
  return eut;
}

/** Pending entries of a group: id → delivery count. */
async function pendingDeliveries(stream: string, group: string): Promise<Map<string, number>> {
  const rows = (await redis.xpending(stream, group, '-', '+', 100)) as [string, string, number, number][];
  return new Map(rows.map((r) => [r[0], Number(r[3])]));
}

/** A stream with a group whose consumer `c` has read `n` entries (pending, unacknowledged). */
async function readThroughGroup(n: number): Promise<{ stream: string; dlq: string; group: string; ids: string[] }> {
  const stream = testKey('settle');
  const group = 'g';
  await redis.xgroup('CREATE', stream, group, '0', 'MKSTREAM');
  const ids = await addEvents(redis, stream, Array.from({ length: n }, (_, i) => orderEvent(i)));
  await redis.xreadgroup('GROUP', group, 'c', 'COUNT', n, 'STREAMS', stream, '>');
  return { stream, dlq: `${stream}:dlq`, group, ids };
}

/**
 * The commands Redis received from clients while `fn` ran, lower-cased, those a script ran marked
 * `lua ` (MONITOR; its own connection, ended by a PING it looks for).
 */
async function commandsDuring(fn: () => Promise<void>): Promise<string[]> {
  const monitor = await redis.monitor();
  const seen: string[] = [];
  let done = false;
  const marker = `end-${Math.random()}`;
  monitor.on('monitor', (_time: string, args: string[], source: string) => {
    if (args[0]?.toLowerCase() === 'ping' && args[1] === marker) done = true;
    else if (!done) seen.push(`${source === 'lua' ? 'lua ' : ''}${args[0]!.toLowerCase()}`);
  });
  try {
    await fn();
    await redis.ping(marker);
    await waitFor(() => done, 'MONITOR to show the end marker', 5_000);
  } finally {
    monitor.disconnect();
  }
  return seen;
}

function dlqOutcome(id: string, error = 'bad'): Outcome {
  return { id, kind: 'dlq', stage: 'validate', error, attempts: 1, payload: `{"id":"${id}"}` };
}

describe('settleBatch', () => {
  it('writes every DLQ entry and acknowledges every settled entry; deferred entries stay pending', async () => {
    const { stream, dlq, group, ids } = await readThroughGroup(4);
    const [sunk, filtered, failed, deferred] = ids as [string, string, string, string];
    const result = await settleBatch(redis, { pipeline: 'p', stream, group, dlq }, [
      { id: sunk, kind: 'sunk', event: {}, value: {}, sinks: ['s'] },
      { id: filtered, kind: 'filtered', event: {} },
      dlqOutcome(failed),
      { id: deferred, kind: 'deferred', reason: 'shutting down' },
    ]);
    expect(result).toEqual({ settled: 3, refused: [] });
    expect([...(await pendingDeliveries(stream, group)).keys()]).toEqual([deferred]);
    const written = await readStream(redis, dlq);
    expect(written.map((e) => [e.fields.source_id, e.fields.stage, e.fields.error])).toEqual([[failed, 'validate', 'bad']]);
  });

  it('a DLQ write Redis refuses (WRONGTYPE) leaves that entry pending; the rest of the batch settles', async () => {
    const { stream, dlq, group, ids } = await readThroughGroup(3);
    const [sunk, failedA, failedB] = ids as [string, string, string];
    await redis.set(dlq, 'not a stream');
    const result = await settleBatch(redis, { pipeline: 'p', stream, group, dlq }, [
      { id: sunk, kind: 'sunk', event: {}, value: {}, sinks: ['s'] },
      dlqOutcome(failedA),
      dlqOutcome(failedB),
    ]);
    expect(result.settled).toBe(1);
    expect(result.refused.map((r) => r.id)).toEqual([failedA, failedB]);
    expect(result.refused[0]!.error).toMatch(/^WRONGTYPE/);
    expect([...(await pendingDeliveries(stream, group)).keys()]).toEqual([failedA, failedB]);
    expect(await redis.get(dlq)).toBe('not a stream');

    // Once Redis takes the write, the same outcomes settle whole.
    await redis.del(dlq);
    expect(await settleBatch(redis, { pipeline: 'p', stream, group, dlq }, [dlqOutcome(failedA), dlqOutcome(failedB)])).toEqual({ settled: 2, refused: [] });
    expect((await pendingDeliveries(stream, group)).size).toBe(0);
    expect((await readStream(redis, dlq)).map((e) => e.fields.source_id)).toEqual([failedA, failedB]);
  });

  it('acknowledges the extra ids it is given (entries deleted from the stream while pending)', async () => {
    const { stream, dlq, group, ids } = await readThroughGroup(2);
    await redis.xdel(stream, ids[1]!);
    expect(await settleBatch(redis, { pipeline: 'p', stream, group, dlq }, [{ id: ids[0]!, kind: 'filtered', event: {} }], [ids[1]!]))
      .toEqual({ settled: 2, refused: [] });
    expect((await pendingDeliveries(stream, group)).size).toBe(0);
  });

  it('a batch of deferred entries only: nothing to do, nothing sent', async () => {
    const { stream, dlq, group, ids } = await readThroughGroup(1);
    const sent = await commandsDuring(async () => {
      expect(await settleBatch(redis, { pipeline: 'p', stream, group, dlq }, [{ id: ids[0]!, kind: 'deferred', reason: 'later' }]))
        .toEqual({ settled: 0, refused: [] });
    });
    expect(sent).toEqual([]);
    expect((await pendingDeliveries(stream, group)).get(ids[0]!)).toBe(1);
  });

  it('on one Redis the batch is one script call: the DLQ write and the acknowledgements run inside it', async () => {
    const { stream, dlq, group, ids } = await readThroughGroup(2);
    const sent = await commandsDuring(async () => {
      expect(await settleBatch(redis, { pipeline: 'p', stream, group, dlq }, [dlqOutcome(ids[0]!), { id: ids[1]!, kind: 'filtered', event: {} }]))
        .toEqual({ settled: 2, refused: [] });
    });
    // EVALSHA, and EVAL when the script is not cached yet: no command of the settle on its own.
    const fromClient = sent.filter((c) => !c.startsWith('lua '));
    expect(fromClient.length).toBeGreaterThan(0);
    expect(fromClient.filter((c) => !/^eval(sha)?$/.test(c))).toEqual([]);
    expect(sent.filter((c) => c.startsWith('lua '))).toEqual(['lua xadd', 'lua xack']);
  });

  it('keeps a reason of up to 8192 characters whole and cuts a longer one there, marked with "..."', async () => {
    const { stream, dlq, group, ids } = await readThroughGroup(2);
    const [fits, over] = ['x'.repeat(8192), `${'y'.repeat(8192)}z`];
    await settleBatch(redis, { pipeline: 'p', stream, group, dlq }, [dlqOutcome(ids[0]!, fits), dlqOutcome(ids[1]!, over)]);
    expect((await readStream(redis, dlq)).map((e) => e.fields.error)).toEqual([fits, `${'y'.repeat(8192)}...`]);
  });

  it('without acks (replays, schedules) only DLQ entries are written; nothing is acknowledged', async () => {
    const { stream, dlq, group, ids } = await readThroughGroup(2);
    const result = await settleBatch(redis, { pipeline: 'p', stream, group, dlq },
      [dlqOutcome(ids[0]!), { id: ids[1]!, kind: 'sunk', event: {}, value: {}, sinks: ['s'] }], [], { ack: false });
    expect(result).toEqual({ settled: 1, refused: [] });
    expect((await readStream(redis, dlq)).map((e) => e.fields.source_id)).toEqual([ids[0]]);
    expect([...(await pendingDeliveries(stream, group)).keys()]).toEqual(ids);
  });

  it('without acks a refused DLQ write raises DlqWriteRefusedError naming the reason, and nothing is acknowledged', async () => {
    const { stream, dlq, group, ids } = await readThroughGroup(1);
    await redis.set(dlq, 'not a stream');
    const err = await settleBatch(redis, { pipeline: 'p', stream, group, dlq }, [dlqOutcome(ids[0]!)], [], { ack: false }).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(DlqWriteRefusedError);
    expect(err).toMatchObject({ name: 'DlqWriteRefusedError', code: 'SYN_DLQ_WRITE_REFUSED', refused: [{ id: ids[0], error: expect.stringMatching(/^WRONGTYPE/) }] });
    expect((err as Error).message).toMatch(/^Redis refused 1 DLQ write\(s\): WRONGTYPE/);
    expect((await pendingDeliveries(stream, group)).get(ids[0]!)).toBe(1);
  });
});

describe('a running pipeline whose DLQ Redis refuses', () => {
  it('keeps the entry pending, says so (lastError, stalled, metric), and dead-letters it once the DLQ can be written', async () => {
    const stream = testKey('in');
    const out = testKey('out');
    const doc = ordersPipeline({ stream, out });
    const dlq = `${stream}:dlq`;
    await redis.set(dlq, 'a plain string, not a stream');
    const eut = await run([doc]);

    const invalid = JSON.stringify({ ...orderEvent(1), data: { orderId: 'o-1', amount: 'lots' } });
    const [badId, goodId] = await addEvents(redis, stream, [invalid, orderEvent(2)]);

    // The good event of the same batch is sunk and acknowledged; the bad one is held.
    await waitFor(async () => (await redis.xlen(out)) === 1, 'the good event in the output');
    const consumer = eut.engine.handles.get(doc.name)!.consumer!;
    await waitFor(() => consumer.stalled, 'the pipeline reported stalled');
    expect(consumer.stalled!.reason).toMatch(/^Redis refused the DLQ write to .*:dlq: WRONGTYPE/);
    expect(consumer.lastError!.message).toMatch(/WRONGTYPE/);
    const pending = await pendingDeliveries(stream, doc.name);
    expect([...pending.keys()]).toEqual([badId]);
    expect(pending.has(goodId!)).toBe(false);
    expect(await redis.get(dlq)).toBe('a plain string, not a stream');
    const metrics = await eut.engine.metrics.registry.metrics();
    expect(metricValue(metrics, 'synapse_dlq_write_refused_total', { pipeline: doc.name })).toBeGreaterThanOrEqual(1);
    expect(eut.tally(doc.name)).toMatchObject({ sunk: 1, dlq: 0 });

    // The operator removes the bad key: the entry lands with its own stage and reason, was
    // neither processed nor delivered again, and the pipeline reads on.
    await redis.del(dlq);
    const [entry] = await waitFor(async () => {
      const got = await readStream(redis, dlq);
      return got.length > 0 && got;
    }, 'the DLQ entry');
    expect(entry!.fields).toMatchObject({ source_id: badId, stage: 'validate', attempts: '1', payload: invalid });
    expect(entry!.fields.error).toMatch(/data\.amount: must be number/);
    // Recorded once the settle has returned, just after Redis shows the ack.
    await waitFor(async () => (await pendingSummary(redis, stream, doc.name)).count === 0 && eut.tally(doc.name).dlq === 1, 'nothing pending, the DLQ write recorded');
    expect(consumer.stalled).toBeUndefined();
    expect(eut.tally(doc.name)).toMatchObject({ sunk: 1, dlq: 1 });

    await addEvents(redis, stream, [orderEvent(3)]);
    await waitFor(async () => (await redis.xlen(out)) === 2, 'a later event in the output');
    expect((await readPayloads(redis, out)).map((p) => p.orderId)).toEqual(['o-2', 'o-3']);
  });

  /**
   * One event bound for the DLQ at stage sink (its webhook answers 500, one attempt) while its DLQ
   * key is not a stream: `check` runs once the event is added; the webhook is closed after.
   */
  async function refusedDlqWrite(check: (t: { hook: HttpRecorder; eut: EngineUnderTest; doc: PipelineDoc; stream: string; dlq: string; id: string }) => Promise<void>) {
    const hook = await startHttpRecorder(() => ({ status: 500, body: { error: 'down' } }));
    try {
      const stream = testKey('in');
      const doc = {
        ...ordersPipeline({ stream, out: 'unused' }),
        sink: { type: 'http', with: { url: `${hook.url}/hook` } },
        retry: { attempts: 1, backoff: 'fixed', delay_ms: 10 },
      };
      const dlq = `${stream}:dlq`;
      await redis.set(dlq, 'not a stream');
      const eut = await run([doc]);
      const [id] = await addEvents(redis, stream, [orderEvent(1)]);
      await check({ hook, eut, doc, stream, dlq, id: id! });
    } finally {
      await hook.close();
    }
  }

  it('settles a refused DLQ write again without running the entry through its sink again', async () => {
    // While the DLQ write is refused, the consumer tries the write again and again; only the DLQ
    // write repeats, never the webhook call that already failed.
    await refusedDlqWrite(async ({ hook, eut, doc, dlq, id }) => {
      const refusals = async () =>
        metricValue(await eut.engine.metrics.registry.metrics(), 'synapse_dlq_write_refused_total', { pipeline: doc.name }) ?? 0;
      // Three refused settles: the back-off (100, 200, 400 ms) has run the loop at least twice.
      await waitFor(async () => (await refusals()) >= 3, 'three refused DLQ writes', 10_000);
      expect(hook.requests).toHaveLength(1);

      await redis.del(dlq);
      await waitFor(async () => (await redis.xlen(dlq)) === 1, 'the DLQ entry');
      expect((await readStream(redis, dlq))[0]!.fields).toMatchObject({ source_id: id, stage: 'sink', attempts: '1' });
      expect(hook.requests).toHaveLength(1);
    });
  });

  it('while stalled, a settle Redis rejects outright keeps the outcome in hand: the entry is neither run again nor re-read', async () => {
    // Stalled on a refused DLQ write, then the settle script itself is refused (NOPERM: the
    // engine's user may no longer run scripts). The consumer keeps the failed outcome and tries
    // the settle again; it does not go back to the loop's error path, which would re-read its
    // pending entry (a second delivery) and call the failing webhook again.
    await refusedDlqWrite(async ({ hook, eut, doc, stream, dlq, id }) => {
      const consumer = eut.engine.handles.get(doc.name)!.consumer!;
      await waitFor(() => consumer.stalled, 'the pipeline stalled on the refused DLQ write');

      await redis.call('ACL', 'SETUSER', 'default', '-evalsha', '-eval');
      try {
        await waitFor(() => /NOPERM/.test(consumer.lastError?.message ?? ''), 'the settle script refused', 10_000);
        const failedAt = consumer.lastError!.at;
        await waitFor(() => /NOPERM/.test(consumer.lastError!.message) && consumer.lastError!.at !== failedAt, 'a second refused settle', 10_000);
        expect(consumer.stalled).toBeDefined();
      } finally {
        await redis.call('ACL', 'SETUSER', 'default', '+evalsha', '+eval');
      }
      expect(hook.requests).toHaveLength(1);
      expect(await pendingDeliveries(stream, doc.name)).toEqual(new Map([[id, 1]]));

      await redis.del(dlq);
      await waitFor(async () => (await redis.xlen(dlq)) === 1, 'the DLQ entry');
      expect((await readStream(redis, dlq))[0]!.fields).toMatchObject({ source_id: id, stage: 'sink', attempts: '1' });
      await waitFor(async () => (await pendingSummary(redis, stream, doc.name)).count === 0, 'nothing pending');
      await waitFor(() => consumer.stalled === undefined, 'the stall over');
      expect(hook.requests).toHaveLength(1);
    });
  });

  it('a pipeline stopped while its DLQ write is refused leaves the entry pending, and a restart dead-letters it', async () => {
    const stream = testKey('in');
    const out = testKey('out');
    const doc = ordersPipeline({ stream, out });
    const dlq = `${stream}:dlq`;
    await redis.set(dlq, 'not a stream');
    const first = await run([doc], 'stable-name');
    const [badId] = await addEvents(redis, stream, [JSON.stringify({ ...orderEvent(1), data: { orderId: 'o-1', amount: 'x' } })]);
    await waitFor(() => first.engine.handles.get(doc.name)!.consumer!.stalled, 'the pipeline stalled');
    await first.stop();
    expect([...(await pendingDeliveries(stream, doc.name)).keys()]).toEqual([badId]);
    expect(await redis.get(dlq)).toBe('not a stream');

    await redis.del(dlq);
    await run([doc], 'stable-name');
    await waitFor(async () => (await redis.xlen(dlq)) === 1, 'the DLQ entry after the restart');
    expect((await readStream(redis, dlq))[0]!.fields).toMatchObject({ source_id: badId, stage: 'validate' });
    await waitFor(async () => (await pendingSummary(redis, stream, doc.name)).count === 0, 'nothing pending');
  });
});

describe('a stop while a reload waits for a stalled batch', () => {
  it('ends: the consumer stops first, so the stalled batch and the reload waiting on its boundary end too; the entry stays pending', async () => {
    // The reload swaps versions at the batch boundary, which a batch stalled on a refused DLQ
    // write reaches only once its consumer stops. A stop that waited for the reload before
    // stopping consumers would wait forever, its time limit included (it is counted from later).
    const stream = testKey('in');
    const doc = ordersPipeline({ stream, out: testKey('out') });
    const dlq = `${stream}:dlq`;
    await redis.set(dlq, 'not a stream');
    const dir = await dirs.make([doc]);
    const eut = await startEngine({ redisUrl: server.url, pipelines: dir, consumer: 'stable-name' });
    running.push(eut);
    const consumer = eut.engine.handles.get(doc.name)!.consumer!;
    const [badId] = await addEvents(redis, stream, [JSON.stringify({ ...orderEvent(1), data: { orderId: 'o-1', amount: 'x' } })]);
    await waitFor(() => consumer.stalled, 'the pipeline stalled');

    const file = join(dir, `${doc.name}.yaml`);
    await writeFile(file, `${stringify(doc)}# version 2\n`);
    const reload = eut.engine.reloadFile(file, { cause: 'test' });
    await new Promise((r) => setTimeout(r, 300)); // the reload is waiting for the batch boundary
    const stopped = eut.engine.stop(60_000).then(() => 'stopped');
    const hung = new Promise((r) => setTimeout(() => r('still stopping after 15 s'), 15_000));
    expect(await Promise.race([stopped, hung])).toBe('stopped');
    await reload; // it ended with the stop (the new version was never run)
    expect([...(await pendingDeliveries(stream, doc.name)).keys()]).toEqual([badId]);

    await redis.del(dlq);
    await run([doc], 'stable-name');
    await waitFor(async () => (await redis.xlen(dlq)) === 1, 'the DLQ entry after the restart');
    expect((await readStream(redis, dlq))[0]!.fields).toMatchObject({ source_id: badId, stage: 'validate' });
  });
});

describe('with a backlog, a batch settles while the next one runs', () => {
  // Batches of 10 over a webhook sink; the request for seq 10 (batch 1's last) holds batch 1's
  // settle back: it pauses Redis's writes (CLIENT PAUSE WRITE: the settle script waits, reads are
  // served) or takes the script away (ACL), before it answers.
  const BATCH = 10;
  async function backlog(n: number, script: (seq: number) => Promise<void>) {
    const hook = await startHttpRecorder(async (req) => {
      await script((req.json as { seq: number }).seq);
      return { status: 200, body: { ok: true } };
    });
    const stream = testKey('in');
    const doc = {
      ...ordersPipeline({ stream, out: 'unused', source: { batch: BATCH } }),
      sink: { type: 'http', with: { url: `${hook.url}/hook` } },
    };
    const ids = await addEvents(redis, stream, Array.from({ length: n }, (_, i) => orderEvent(i + 1)));
    return { hook, stream, doc, ids, seqs: () => hook.requests.map((r) => (r.json as { seq: number }).seq) };
  }
  /** How many XCLAIM commands Redis has run (the in-flight claim refresh sends them). */
  const xclaims = async () => Number(/cmdstat_xclaim:calls=(\d+)/.exec(await redis.info('commandstats'))?.[1] ?? 0);
  const pendingIn = async (stream: string, group: string, from: string, to: string) =>
    ((await redis.xpending(stream, group, from, to, 1000)) as unknown[]).length;

  it('the next batch reaches its sink before the previous one is acknowledged; each is acknowledged after its own writes, in order', async () => {
    let batch1PendingAtSeq11: number | undefined;
    let group = '';
    const { hook, stream, doc, ids } = await backlog(3 * BATCH, async (seq) => {
      if (seq === BATCH) await redis.call('CLIENT', 'PAUSE', 1500, 'WRITE');
      if (seq === BATCH + 1) batch1PendingAtSeq11 = await pendingIn(stream, group, ids[0]!, ids[BATCH - 1]!);
    });
    try {
      group = doc.name;
      const eut = await run([doc]);
      // The outcomes are recorded once a settle has returned, just after Redis shows the acks.
      await waitFor(async () => (await pendingSummary(redis, stream, group)).count === 0 && hook.requests.length === 3 * BATCH
        && eut.outcomes.get(doc.name)?.length === 3 * BATCH, 'every event sent, acknowledged and recorded', 10_000);
      // Batch 2 ran while batch 1's settle waited on the pause: all of batch 1 was still pending.
      expect(batch1PendingAtSeq11).toBe(BATCH);
      // Settled once each, batch by batch in order.
      expect(eut.outcomes.get(doc.name)!.map((o) => o.id)).toEqual(ids);
      expect(eut.tally(doc.name)).toMatchObject({ sunk: 3 * BATCH, total: 3 * BATCH });
    } finally {
      await redis.call('CLIENT', 'UNPAUSE');
      await hook.close();
    }
  });

  it('a pause mid-backlog handles the batch read ahead, and a resume reads on after it: every event once', async () => {
    // Paused while batch 2 runs (at seq 15): batch 2 finishes, batch 3 (read ahead) is handled
    // before the consumer waits, and nothing more is read until the resume.
    let pauseNow = () => {};
    const hook = await startHttpRecorder((req) => {
      if ((req.json as { seq: number }).seq === 15) pauseNow();
      return { status: 200, body: { ok: true } };
    });
    try {
      const stream = testKey('in');
      const doc = { ...ordersPipeline({ stream, out: 'unused', source: { batch: BATCH, claim_idle_ms: 1000 } }), sink: { type: 'http', with: { url: `${hook.url}/hook` } } };
      const eut = await run([doc]);
      pauseNow = () => eut.engine.pause(doc.name);
      await addEvents(redis, stream, Array.from({ length: 60 }, (_, i) => orderEvent(i + 1)));
      await waitFor(async () => hook.requests.length >= 20 && (await pendingSummary(redis, stream, doc.name)).count === 0, 'paused, nothing pending');
      expect(hook.requests).toHaveLength(30);
      // Batch 3, handled at the pause, is let go: no claim refresh of it runs on.
      const before = await xclaims();
      await new Promise((r) => setTimeout(r, 1200)); // over three refresh periods (333 ms)
      expect(await xclaims()).toBe(before);

      eut.engine.resume(doc.name);
      await waitFor(async () => hook.requests.length >= 60 && (await pendingSummary(redis, stream, doc.name)).count === 0, 'every event after the resume');
      expect(hook.requests.map((r) => (r.json as { seq: number }).seq)).toEqual(Array.from({ length: 60 }, (_, i) => i + 1));
    } finally {
      await hook.close();
    }
  });

  it('once a backlog is done, no claim refresh runs on: the batches read ahead were let go', async () => {
    // Each batch read ahead is kept claimed (XCLAIM every third of claim_idle_ms) until handled;
    // a refresh left running would claim acknowledged ids forever, one timer per batch.
    const stream = testKey('in');
    const out = testKey('out');
    const doc = ordersPipeline({ stream, out, source: { batch: BATCH, claim_idle_ms: 1000 } });
    await addEvents(redis, stream, Array.from({ length: 100 }, (_, i) => orderEvent(i + 1)));
    await run([doc]);
    await waitFor(async () => (await redis.xlen(out)) === 100 && (await pendingSummary(redis, stream, doc.name)).count === 0, 'the backlog done');
    const before = await xclaims();
    await new Promise((r) => setTimeout(r, 1200)); // over three refresh periods (333 ms)
    expect(await xclaims()).toBe(before);
  });

  it('a stop waits for the settle still running: nothing it processed is left unacknowledged', async () => {
    // One full batch: the consumer reads ahead (nothing comes), and batch 1 settles meanwhile.
    const { hook, stream, doc } = await backlog(BATCH, async (seq) => {
      if (seq === BATCH) await redis.call('CLIENT', 'PAUSE', 1000, 'WRITE');
    });
    try {
      const eut = await run([doc]);
      await waitFor(() => hook.requests.length === BATCH, 'the batch sent');
      // The writes are paused: batch 1's settle cannot have run yet.
      expect((await pendingSummary(redis, stream, doc.name)).count).toBe(BATCH);
      await eut.engine.handles.get(doc.name)!.consumer!.stop();
      expect((await pendingSummary(redis, stream, doc.name)).count).toBe(0);
      expect(eut.tally(doc.name)).toMatchObject({ sunk: BATCH, total: BATCH });
    } finally {
      await redis.call('CLIENT', 'UNPAUSE');
      await hook.close();
    }
  });

  it('a settle that fails while the next batch runs is not lost: both batches are read again and settled, nothing dead-lettered', async () => {
    let revoked = false;
    const { hook, stream, doc, seqs } = await backlog(3 * BATCH, async (seq) => {
      // Once: batch 1's settle is refused, and the script allowed again when batch 2 runs.
      if (seq === BATCH && !revoked) {
        revoked = true;
        await redis.call('ACL', 'SETUSER', 'default', '-evalsha', '-eval');
      }
      if (seq === BATCH + 1) await redis.call('ACL', 'SETUSER', 'default', '+evalsha', '+eval');
    });
    try {
      const eut = await run([doc]);
      await waitFor(async () => new Set(seqs()).size === 3 * BATCH && (await pendingSummary(redis, stream, doc.name)).count === 0,
        'every event sent and acknowledged', 10_000);
      expect(eut.engine.handles.get(doc.name)!.consumer!.lastError?.message).toMatch(/NOPERM/);
      // At least once: batch 1 (whose settle failed) ran again; every event reached the webhook.
      for (let seq = 1; seq <= BATCH; seq++) expect(seqs().filter((s) => s === seq)).toHaveLength(2);
      // Batches 2 and 3 ran again (at least once), batch 1 did not.
      expect(seqs().slice(3 * BATCH)).toEqual(Array.from({ length: 2 * BATCH }, (_, i) => BATCH + i + 1));
      expect(await redis.exists(`${stream}:dlq`)).toBe(0);
    } finally {
      await redis.call('ACL', 'SETUSER', 'default', '+evalsha', '+eval');
      await hook.close();
    }
  });

  it('a settle that fails as the consumer pauses is not lost either: both batches are read again after the resume', async () => {
    // Batch 2's last request pauses the pipeline and takes the settle script away: batch 2 settles
    // (refused) in the background while the pause runs batch 3, read ahead, to its end; batch 3's
    // first request gives the script back. Batches 2 and 3 are pending under the consumer's name;
    // after the resume they are read again at once (not left for claim_idle_ms, 30 s).
    let eut: EngineUnderTest | undefined;
    let name = '';
    let revoked = false;
    const { hook, stream, doc, seqs } = await backlog(3 * BATCH, async (seq) => {
      if (seq === 2 * BATCH && eut && !revoked) {
        revoked = true;
        eut.engine.pause(name);
        await redis.call('ACL', 'SETUSER', 'default', '-evalsha', '-eval');
      }
      if (seq === 2 * BATCH + 1) await redis.call('ACL', 'SETUSER', 'default', '+evalsha', '+eval');
    });
    name = doc.name;
    try {
      eut = await run([doc]);
      await waitFor(() => new Set(seqs()).size === 3 * BATCH, 'every event sent', 10_000);
      // The pause has run batch 3 and its (refused) settle has ended: both batches still pending.
      await new Promise((r) => setTimeout(r, 500));
      expect((await pendingSummary(redis, stream, doc.name)).count).toBe(2 * BATCH);
      eut.engine.resume(doc.name);
      await waitFor(async () => (await pendingSummary(redis, stream, doc.name)).count === 0, 'every event acknowledged after the resume', 5_000);
      // Batches 2 and 3 ran again (at least once), batch 1 did not.
      expect(seqs().slice(3 * BATCH)).toEqual(Array.from({ length: 2 * BATCH }, (_, i) => BATCH + i + 1));
      expect(await redis.exists(`${stream}:dlq`)).toBe(0);
    } finally {
      await redis.call('ACL', 'SETUSER', 'default', '+evalsha', '+eval');
      await hook.close();
    }
  });

  it('a hot reload during a backlog resolves once the old version\'s batch is acknowledged, its settle included', async () => {
    // The reload is asked for while batch 2 runs (v1); batch 2's settle is held (CLIENT PAUSE
    // WRITE). The swap may only take effect, and the reload resolve (closing v1's sinks), once
    // v1 has finished batch 2: run and acknowledged.
    let eut: EngineUnderTest | undefined;
    let reload: Promise<{ ok: boolean; batch2Pending: number }> | undefined;
    let stream = '';
    let group = '';
    let ids: string[] = [];
    const b = await backlog(3 * BATCH, async (seq) => {
      if (seq === BATCH + 1 && eut) {
        reload = eut.engine.reloadFile(eut.engine.handles.get(group)!.pipeline.file, { force: true, cause: 'test' })
          .then(async (r) => ({ ok: r.ok, batch2Pending: await pendingIn(stream, group, ids[BATCH]!, ids[2 * BATCH - 1]!) }));
      }
      if (seq === 2 * BATCH) await redis.call('CLIENT', 'PAUSE', 800, 'WRITE');
    });
    ({ stream, ids } = b);
    group = b.doc.name;
    try {
      eut = await run([b.doc]);
      await waitFor(() => reload !== undefined, 'the reload asked for', 10_000);
      expect(await reload).toEqual({ ok: true, batch2Pending: 0 });
      await waitFor(async () => (await pendingSummary(redis, stream, group)).count === 0 && b.hook.requests.length === 3 * BATCH, 'every event sent and acknowledged', 10_000);
    } finally {
      await redis.call('CLIENT', 'UNPAUSE');
      await b.hook.close();
    }
  });
});

describe('Redis out of memory (maxmemory, noeviction)', () => {
  it('burns no delivery and dead-letters no healthy event: the pipeline stalls, /ready says so, and every event flows once Redis has room', async () => {
    const fx = await startEngine2({
      ownRedis: true,
      pipelines: { oom: pipelineYaml({ name: 'oom', stream: 'oom-in', out: 'oom-out' }).replace('  batch: 100\n', '  batch: 100\n  max_deliveries: 2\n') },
    });
    try {
      const c = fx.client;
      const consumer = fx.engine.handles.get('oom')!.consumer!;
      // Paused once the read in flight has come back empty: the events wait in the stream.
      const idle = once(consumer, 'idle');
      expect(fx.engine.pause('oom')).toBe(true);
      await idle;
      const ids = await publish(c, 'oom-in', Array.from({ length: 20 }, (_, i) => ping(i)));
      await c.config('SET', 'maxmemory-policy', 'noeviction');
      await c.config('SET', 'maxmemory', '1');
      expect(fx.engine.resume('oom')).toBe(true);

      await waitFor(() => consumer.stalled, 'the pipeline stalled');
      expect(consumer.stalled!.reason).toMatch(/OOM command not allowed/);
      const ready = await fx.inject({ method: 'GET', url: '/ready' });
      expect(ready.statusCode).toBe(503);
      expect(ready.json()).toMatchObject({ status: 'not-ready', stalled: [{ pipeline: 'oom', reason: expect.stringMatching(/OOM/) }] });
      // Several rounds of back-off pass (100 + 200 + 400 ms …) without a delivery charged.
      await waitFor(() => Date.now() - Date.parse(consumer.stalled!.since) > 1500, 'a few rounds of back-off');
      const rows = (await c.xpending('oom-in', 'oom', '-', '+', 100)) as [string, string, number, number][];
      expect(rows.map((r) => r[0])).toEqual(ids);
      expect(rows.every((r) => Number(r[3]) === 1), `deliveries: ${rows.map((r) => r[3]).join(',')}`).toBe(true);

      await c.config('SET', 'maxmemory', '0');
      // n = 13 fails the transform (the suite's standard pipeline): its DLQ write was refused as
      // well, and lands now, at its own stage; the 19 others reach the sink, each once.
      await waitFor(async () => (await c.xlen('oom-out')) === 19 && (await c.xlen('oom-in:dlq')) === 1, 'the events in the output and the DLQ');
      await waitFor(async () => (await pendingSummary(c, 'oom-in', 'oom')).count === 0, 'nothing pending');
      expect((await payloads(c, 'oom-out')).map((p) => p.n)).toEqual(Array.from({ length: 20 }, (_, i) => i).filter((n) => n !== 13));
      expect((await readStream(c, 'oom-in:dlq')).map((e) => [e.fields.source_id, e.fields.stage, e.fields.attempts]))
        .toEqual([[ids[13], 'transform', '1']]);
      expect(consumer.stalled).toBeUndefined();
      expect((await fx.inject({ method: 'GET', url: '/ready' })).statusCode).toBe(200);
    } finally {
      await fx.client.config('SET', 'maxmemory', '0').catch(() => undefined);
      await fx.close();
    }
  });
});

describe('Redis out of memory, then refusing the settle script too', () => {
  it('the deferred entries stay in hand: they reach the sink once Redis accepts again, not left pending', async () => {
    // Stalled on the sink's refused writes (deferred entries), the settle script itself is then
    // refused (NOPERM). The consumer keeps every outcome in hand, the deferred ones included,
    // and runs them again once Redis accepts: none may be let go, pending and unhandled. n = 13
    // fails the transform: its DLQ write is what makes the settle call the script at all.
    const fx = await startEngine2({ ownRedis: true, pipelines: { oom2: pipelineYaml({ name: 'oom2', stream: 'oom2-in', out: 'oom2-out' }) } });
    try {
      const c = fx.client;
      const consumer = fx.engine.handles.get('oom2')!.consumer!;
      const idle = once(consumer, 'idle');
      expect(fx.engine.pause('oom2')).toBe(true);
      await idle;
      const ids = await publish(c, 'oom2-in', Array.from({ length: 14 }, (_, i) => ping(i)));
      await c.config('SET', 'maxmemory-policy', 'noeviction');
      await c.config('SET', 'maxmemory', '1');
      expect(fx.engine.resume('oom2')).toBe(true);
      await waitFor(() => consumer.stalled, 'the pipeline stalled');

      await c.call('ACL', 'SETUSER', 'default', '-evalsha', '-eval');
      try {
        await waitFor(() => /NOPERM/.test(consumer.lastError?.message ?? ''), 'the settle script refused', 10_000);
      } finally {
        await c.call('ACL', 'SETUSER', 'default', '+evalsha', '+eval');
      }
      expect(consumer.stalled).toBeDefined();
      await c.config('SET', 'maxmemory', '0');
      await waitFor(async () => (await c.xlen('oom2-out')) === 13 && (await c.xlen('oom2-in:dlq')) === 1, 'the events in the output and the DLQ');
      await waitFor(async () => (await pendingSummary(c, 'oom2-in', 'oom2')).count === 0, 'nothing pending');
      expect((await payloads(c, 'oom2-out')).map((p) => p.n)).toEqual(Array.from({ length: 13 }, (_, i) => i));
      expect((await readStream(c, 'oom2-in:dlq')).map((e) => [e.fields.source_id, e.fields.stage])).toEqual([[ids[13], 'transform']]);
      expect(consumer.stalled).toBeUndefined();
    } finally {
      await fx.client.config('SET', 'maxmemory', '0').catch(() => undefined);
      await fx.client.call('ACL', 'SETUSER', 'default', '+evalsha', '+eval').catch(() => undefined);
      await fx.close();
    }
  });
});

describe('a reload while a batch settles in the background', () => {
  it('the old version\'s stalled settle is not cut short by the swap: no healthy event is dead-lettered with a closed sink', async () => {
    // Batches of 10; Redis out of memory refuses the publish sink's writes: batch 1 is deferred,
    // its settle stalls in the background while batch 2 (read ahead) runs and is deferred too.
    // A reload (same stream) is asked for meanwhile; then Redis has room again. The old version's
    // settles must still run (and re-run deferred entries) on the old sinks: the swap may not
    // resolve, and close them, before its last settle has ended.
    const stream = testKey('in');
    const out = testKey('out');
    const doc = { ...ordersPipeline({ stream, out, source: { batch: 10 } }), retry: { attempts: 1, backoff: 'fixed', delay_ms: 10 } };
    const eut = await run([doc]);
    const consumer = eut.engine.handles.get(doc.name)!.consumer!;
    const idle = once(consumer, 'idle');
    eut.engine.pause(doc.name);
    await idle;
    const ids = await addEvents(redis, stream, Array.from({ length: 30 }, (_, i) => orderEvent(i + 1)));
    try {
      await redis.config('SET', 'maxmemory-policy', 'noeviction');
      await redis.config('SET', 'maxmemory', '1');
      eut.engine.resume(doc.name);
      await waitFor(() => consumer.stalled, 'the pipeline stalled');
      // Batch 2 is read and run (deferred) while batch 1's settle stalls.
      await new Promise((r) => setTimeout(r, 300));
      const reload = eut.engine.reloadFile(eut.engine.handles.get(doc.name)!.pipeline.file, { force: true, cause: 'test' });
      await new Promise((r) => setTimeout(r, 100));
      await redis.config('SET', 'maxmemory', '0');
      expect((await reload).ok).toBe(true);
      await waitFor(async () => (await pendingSummary(redis, stream, doc.name)).count === 0, 'nothing pending', 15_000);
      expect((await readStream(redis, `${stream}:dlq`)).map((e) => e.fields.error)).toEqual([]);
      expect((await readPayloads(redis, out)).map((p) => p.orderId).sort()).toEqual(ids.map((_, i) => `o-${i + 1}`).sort());
    } finally {
      await redis.config('SET', 'maxmemory', '0');
    }
  });
});

describe('a batch waiting for the previous one\'s stalled settle', () => {
  it('stays claimed, and so does the batch read ahead: their entries never look abandoned (idle past claim_idle_ms), nor run twice', async () => {
    // Batch 1 holds an invalid event whose DLQ write Redis refuses (the DLQ key is a string): its
    // settle stalls in the background. Batch 2, read ahead, runs meanwhile and reaches its sink,
    // then waits for batch 1's settle before its own. While it waits, its entries must be kept
    // ours, or another replica reclaims them after claim_idle_ms and runs them a second time.
    const stream = testKey('in');
    const out = testKey('out');
    const doc = ordersPipeline({ stream, out, source: { batch: 10, claim_idle_ms: 1000 } });
    const dlq = `${stream}:dlq`;
    await redis.set(dlq, 'not a stream');
    const invalid = JSON.stringify({ ...orderEvent(1), data: { orderId: 'o-1', amount: 'lots' } });
    const ids = await addEvents(redis, stream, [invalid, ...Array.from({ length: 29 }, (_, i) => orderEvent(i + 2))]);
    const eut = await run([doc]);
    const consumer = eut.engine.handles.get(doc.name)!.consumer!;
    await waitFor(() => consumer.stalled, 'the pipeline stalled on the refused DLQ write');
    await waitFor(async () => (await redis.xlen(out)) >= 19, 'batch 2 reached its sink');
    await new Promise((r) => setTimeout(r, 2500));
    // Batch 2's entries, and batch 3's, read ahead while batch 2 ran: kept under claim_idle_ms
    // by the in-flight refresh.
    const rows = (await redis.xpending(stream, doc.name, ids[10]!, ids[29]!, 100)) as [string, string, number, number][];
    expect(rows).toHaveLength(20);
    expect(rows.map((r) => Number(r[2])).filter((idle) => idle >= 1000)).toEqual([]);

    await redis.del(dlq);
    await waitFor(async () => (await pendingSummary(redis, stream, doc.name)).count === 0, 'nothing pending', 10_000);
    // Every healthy event reached its sink once: neither batch was reclaimed (by this consumer or
    // another) while it waited.
    const sent = (await readPayloads(redis, out)).map((p) => p.orderId);
    for (let seq = 2; seq <= 30; seq++) expect(sent.filter((o) => o === `o-${seq}`), `o-${seq}`).toHaveLength(1);
  });
});

describe('a sink Redis refuses while batches settle in the background', () => {
  it('entries deferred by the sink run again before the next batch runs: one batch at a time through the sink, in order', async () => {
    // Batches of 10, Redis out of memory: batch 1's publish writes are refused (deferred). Its
    // entries are run again in place; batch 2, read ahead, may not reach the sink before them
    // (nor run through the pipeline while they do: one runner runs one batch at a time).
    const stream = testKey('in');
    const out = testKey('out');
    const doc = { ...ordersPipeline({ stream, out, source: { batch: 10 } }), retry: { attempts: 1, backoff: 'fixed', delay_ms: 10 } };
    const eut = await run([doc]);
    const consumer = eut.engine.handles.get(doc.name)!.consumer!;
    const idle = once(consumer, 'idle');
    eut.engine.pause(doc.name);
    await idle;
    await addEvents(redis, stream, Array.from({ length: 30 }, (_, i) => orderEvent(i + 1)));
    try {
      await redis.config('SET', 'maxmemory-policy', 'noeviction');
      await redis.config('SET', 'maxmemory', '1');
      eut.engine.resume(doc.name);
      await waitFor(() => consumer.stalled, 'the pipeline stalled');
      await new Promise((r) => setTimeout(r, 300));
      await redis.config('SET', 'maxmemory', '0');
      await waitFor(async () => (await pendingSummary(redis, stream, doc.name)).count === 0, 'nothing pending', 15_000);
      expect((await readPayloads(redis, out)).map((p) => p.orderId)).toEqual(Array.from({ length: 30 }, (_, i) => `o-${i + 1}`));
      expect(await redis.exists(`${stream}:dlq`)).toBe(0);
    } finally {
      await redis.config('SET', 'maxmemory', '0');
    }
  });

  it('a batch with only some entries deferred stalls in the foreground: no batch read ahead reaches any sink meanwhile', async () => {
    // Odd seqs go to a publish sink (Redis is out of memory: deferred), even seqs to a webhook,
    // which accepts. Batch 1 is half deferred, so the consumer stalls on it; batch 2, read ahead,
    // may not run its webhook writes before batch 1's deferred entries have gone through.
    const hook = await startHttpRecorder(async () => ({ status: 200, body: { ok: true } }));
    const stream = testKey('in');
    const out = testKey('out');
    const { sink: _one, ...base } = ordersPipeline({ stream, out, source: { batch: 10 } });
    const doc = {
      ...base,
      retry: { attempts: 1, backoff: 'fixed', delay_ms: 10 },
      sinks: [
        { type: 'publish', when: 'seq % 2 = 1', with: { stream: out } },
        { type: 'http', when: 'seq % 2 = 0', with: { url: `${hook.url}/hook` } },
      ],
    };
    const eut = await run([doc]);
    const consumer = eut.engine.handles.get(doc.name)!.consumer!;
    const idle = once(consumer, 'idle');
    eut.engine.pause(doc.name);
    await idle;
    await addEvents(redis, stream, Array.from({ length: 30 }, (_, i) => orderEvent(i + 1)));
    // The webhook gets a batch's requests side by side: their order is not the events'.
    const hooked = () => hook.requests.map((r) => (r.json as { seq: number }).seq).sort((a, b) => a - b);
    try {
      await redis.config('SET', 'maxmemory-policy', 'noeviction');
      await redis.config('SET', 'maxmemory', '1');
      eut.engine.resume(doc.name);
      await waitFor(() => consumer.stalled, 'the pipeline stalled');
      // Several rounds of back-off (100, 200, 400 ms): only batch 1's webhook writes were made.
      await waitFor(() => Date.now() - Date.parse(consumer.stalled!.since) > 800, 'a few rounds of back-off');
      expect(hooked()).toEqual([2, 4, 6, 8, 10]);
      await redis.config('SET', 'maxmemory', '0');
      await waitFor(async () => (await pendingSummary(redis, stream, doc.name)).count === 0, 'nothing pending', 15_000);
      expect((await readPayloads(redis, out)).map((p) => p.seq)).toEqual(Array.from({ length: 15 }, (_, i) => 2 * i + 1));
      expect(hooked()).toEqual(Array.from({ length: 15 }, (_, i) => 2 * i + 2));
      expect(await redis.exists(`${stream}:dlq`)).toBe(0);
    } finally {
      await redis.config('SET', 'maxmemory', '0');
      await hook.close();
    }
  });
});
