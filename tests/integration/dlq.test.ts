import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import type { Redis } from 'ioredis';
import { listDlqPage } from '../../engine/runtime/dlq.ts';
import { metricValue } from '../helpers/engine.ts';
import { startEngine, type EngineUnderTest } from '../helpers/in-process-engine.ts';
import { orderEvent, ordersPipeline, pipelineDirs, testKey, type PipelineDoc } from '../helpers/pipelines.ts';
import { startTestRedis, waitFor, type TestRedis } from '../helpers/redis.ts';
import { addEvents, groupSettledThrough, pendingSummary, readPayloads, readStream, type Entry } from '../helpers/streams.ts';

/** The fields of a DLQ entry, exactly (SPEC §4), sorted. */
const DLQ_FIELDS = ['attempts', 'error', 'failed_at', 'payload', 'pipeline', 'source_id', 'source_stream', 'stage'];

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

/** Checks a DLQ entry has exactly the SPEC's fields, pointing back at its source entry. */
function expectDlqEntry(e: Entry, want: { pipeline: string; stream: string; sourceId: string; stage: string; error: RegExp; attempts?: number }): void {
  expect(Object.keys(e.fields).sort()).toEqual(DLQ_FIELDS);
  expect(e.fields).toMatchObject({
    stage: want.stage,
    pipeline: want.pipeline,
    source_stream: want.stream,
    source_id: want.sourceId,
    attempts: String(want.attempts ?? 1),
  });
  expect(e.fields.error).toMatch(want.error);
  expect(new Date(e.fields.failed_at!).toISOString()).toBe(e.fields.failed_at);
}

/** Waits until `stream` has at least `n` entries and returns them. */
async function entriesOf(stream: string, n: number, what: string): Promise<Entry[]> {
  return waitFor(async () => {
    const entries = await readStream(redis, stream);
    return entries.length >= n && entries;
  }, `${n} entries in ${what}`);
}

describe('entries a pipeline cannot process go to the DLQ, and the pipeline goes on', () => {
  it('malformed JSON, a missing payload, a non-object, an oversized event and a schema-invalid event', async () => {
    const stream = testKey('in');
    const out = testKey('out');
    const doc = ordersPipeline({ stream, out, extra: { max_event_bytes: 2048 } });
    await run([doc]);

    const malformed = '{"event": "order-placed", "data": ';
    const oversized = JSON.stringify({ ...orderEvent(3), data: { orderId: 'o-3', amount: 3, note: 'x'.repeat(4000) } });
    const invalid = JSON.stringify({ ...orderEvent(4), data: { orderId: 'o-4', amount: 'lots' } });
    const [malformedId, arrayId, oversizedId, invalidId] = await addEvents(redis, stream, [malformed, '[1, 2]', oversized, invalid]);
    const noPayloadId = (await redis.xadd(stream, '*', 'event', 'order-placed', 'note', 'flat fields'))!;

    const dlq = await entriesOf(`${stream}:dlq`, 5, 'the DLQ');
    expect(dlq).toHaveLength(5);
    const bySource = new Map(dlq.map((e) => [e.fields.source_id, e]));
    const cases = [
      { id: malformedId!, stage: 'decode', error: /^payload is not valid JSON: /, payload: malformed },
      { id: arrayId!, stage: 'decode', error: /^payload must be a JSON object, got an array$/, payload: '[1, 2]' },
      { id: oversizedId!, stage: 'decode', error: /^event is \d+ bytes, over max_event_bytes \(2048\)$/, payload: oversized },
      { id: invalidId!, stage: 'validate', error: /^schema https:\/\/synapse\.test\/schemas\/order-event\.json: data\.amount: must be number$/, payload: invalid },
      { id: noPayloadId, stage: 'decode', error: /^entry has no 'payload' field \(fields: event, note\)/, payload: undefined },
    ];
    for (const c of cases) {
      const e = bySource.get(c.id);
      expect(e, `DLQ entry for ${c.stage} ${c.error}`).toBeDefined();
      expectDlqEntry(e!, { pipeline: doc.name, stream, sourceId: c.id, stage: c.stage, error: c.error });
      if (c.payload !== undefined) expect(e!.fields.payload).toBe(c.payload);
      else expect(JSON.parse(e!.fields.payload!)).toEqual({ event: 'order-placed', note: 'flat fields' });
    }

    // The pipeline goes on: a good event after the bad ones reaches the sink.
    await addEvents(redis, stream, [orderEvent(7)]);
    await waitFor(async () => (await redis.xlen(out)) === 1, 'the good event in the output');
    expect(await readPayloads(redis, out)).toEqual([{ orderId: 'o-7', seq: 7, amount: 7 }]);
    await waitFor(async () => (await pendingSummary(redis, stream, doc.name)).count === 0, 'nothing pending');
  });

  const expressionCases: { name: string; stage: string; pipeline: Record<string, unknown>; bad: Record<string, unknown>; error: RegExp }[] = [
    {
      name: 'a transform doing arithmetic on a string',
      stage: 'transform',
      pipeline: { transform: '{ "orderId": data.orderId, "double": data.amount * 2 }' },
      bad: { amount: 'abc' },
      error: /The left side of the "\*" operator must evaluate to a number/,
    },
    {
      name: 'a filter casting a non-number',
      stage: 'filter',
      pipeline: { filter: '$number(data.amount) >= 0' },
      bad: { amount: 'abc' },
      error: /Unable to cast value to a number: "abc"/,
    },
    {
      name: 'a transform running past expression_timeout_ms',
      stage: 'transform',
      pipeline: {
        expression_timeout_ms: 20,
        transform: 'data.spin ? $reduce([1..300000], function($a, $b) { $a + $b }) : { "orderId": data.orderId }',
      },
      bad: { spin: true },
      error: /^timed out after 20 ms$/,
    },
    {
      name: 'a transform recursing without end',
      stage: 'transform',
      pipeline: { transform: '( $f := function($n) { $n <= 0 ? 0 : 1 + $f($n - 1) }; data.depth ? $f(data.depth) : { "orderId": data.orderId } )' },
      bad: { depth: 1000000 },
      error: /recursed too deep/,
    },
    {
      name: "a sink's when failing",
      stage: 'sink',
      pipeline: { transform: '{ "orderId": data.orderId, "amount": data.amount }', when: '$number(amount) >= 0' },
      bad: { amount: 'abc' },
      error: /^sink publish when: Unable to cast value to a number: "abc"/,
    },
  ];

  it.each(expressionCases)('an expression error: $name', async (c) => {
    const stream = testKey('in');
    const out = testKey('out');
    const { when, ...rest } = c.pipeline;
    const doc: PipelineDoc = {
      name: `expr-${stream.slice(5, 13)}`,
      source: { stream, start: '0', block_ms: 200 },
      transform: '{ "orderId": data.orderId }',
      sink: { type: 'publish', ...(when ? { when } : {}), with: { stream: out } },
      ...rest,
    };
    await run([doc]);

    const bad = JSON.stringify({ ...orderEvent(1), data: { orderId: 'o-1', amount: 1, ...c.bad } });
    const [badId] = await addEvents(redis, stream, [bad]);
    const [entry] = await entriesOf(`${stream}:dlq`, 1, 'the DLQ');
    expectDlqEntry(entry!, { pipeline: doc.name, stream, sourceId: badId!, stage: c.stage, error: c.error });
    expect(entry!.fields.payload).toBe(bad);

    // The pipeline goes on.
    await addEvents(redis, stream, [orderEvent(2)]);
    const [result] = await waitFor(async () => {
      const got = await readPayloads(redis, out);
      return got.length > 0 && got;
    }, 'the good event in the output');
    expect(result).toMatchObject({ orderId: 'o-2' });
    expect(await redis.xlen(`${stream}:dlq`)).toBe(1);
    await waitFor(async () => (await pendingSummary(redis, stream, doc.name)).count === 0, 'nothing pending');
  });

  // JSONata times an evaluation by wall clock from its start. Evaluations that ran side by side
  // (the sinks' `when`s, pipelines in one process) would each be charged for the others' work;
  // the engine runs them in turn so that each is charged only for itself. The heavy `when` takes
  // a few ms to tens of ms per event: far within the 1 s limit alone, even on a loaded machine,
  // but 50 of them charged together would be over it.
  it("a time-out is charged to the expression that ran long, not to one running beside it", async () => {
    const stream = testKey('in');
    const auditOut = testKey('audit');
    const mainOut = testKey('main');
    const doc: PipelineDoc = {
      name: `beside-${stream.slice(5, 13)}`,
      source: { stream, start: '0', block_ms: 200, batch: 50 },
      transform: '{ "orderId": data.orderId, "amount": data.amount }',
      sinks: [
        { id: 'audit', type: 'publish', when: '$length($string([1..50000])) > 0', with: { stream: auditOut } },
        { id: 'main', type: 'publish', when: '$sum([1..20]) * amount >= 0', with: { stream: mainOut } },
      ],
      expression_timeout_ms: 1000,
    };
    await run([doc]);

    const ids = await addEvents(redis, stream, Array.from({ length: 50 }, (_, i) => orderEvent(i)));
    await waitFor(() => groupSettledThrough(redis, stream, doc.name, ids.at(-1)!), 'every event settled');

    const dlq = (await readStream(redis, `${stream}:dlq`)).map((e) => `${e.fields.stage}: ${e.fields.error}`);
    expect(dlq, 'valid events sent to the DLQ').toEqual([]);
    expect(await redis.xlen(mainOut)).toBe(50);
    expect(await redis.xlen(auditOut)).toBe(50);
  });

  it('a publish sink that keeps failing (WRONGTYPE) is retried per retry, then DLQd at stage sink', async () => {
    const stream = testKey('in');
    const out = testKey('out');
    await redis.set(out, 'a plain string, not a stream');
    const doc = ordersPipeline({ stream, out, extra: { retry: { attempts: 4, backoff: 'fixed', delay_ms: 20 } } });
    await run([doc]);

    const [id] = await addEvents(redis, stream, [orderEvent(1)]);
    const [entry] = await entriesOf(`${stream}:dlq`, 1, 'the DLQ');
    expectDlqEntry(entry!, { pipeline: doc.name, stream, sourceId: id!, stage: 'sink', attempts: 4, error: /^sink publish: WRONGTYPE/ });
    expect(JSON.parse(entry!.fields.payload!)).toEqual(orderEvent(1));
    expect(await redis.get(out)).toBe('a plain string, not a stream');
    await waitFor(async () => (await pendingSummary(redis, stream, doc.name)).count === 0, 'nothing pending');
  });

  it('an entry delivered more than max_deliveries times goes to the DLQ unprocessed, at stage delivery', async () => {
    const stream = testKey('in');
    const out = testKey('out');
    const group = `g-${stream.slice(5, 13)}`;
    await redis.xgroup('CREATE', stream, group, '0', 'MKSTREAM');
    const [poisonId] = await addEvents(redis, stream, [orderEvent(1)]);
    // A consumer that reads the entry three times and then dies without acking it.
    await redis.xreadgroup('GROUP', group, 'ghost', 'COUNT', 10, 'STREAMS', stream, '>');
    await redis.xreadgroup('GROUP', group, 'ghost', 'COUNT', 10, 'STREAMS', stream, '0');
    await redis.xreadgroup('GROUP', group, 'ghost', 'COUNT', 10, 'STREAMS', stream, '0');
    const rows = (await redis.xpending(stream, group, '-', '+', 10)) as [id: string, consumer: string, idleMs: number, deliveries: number][];
    expect(rows.map((r) => [r[0], r[1], r[3]])).toEqual([[poisonId, 'ghost', 3]]);

    const doc = ordersPipeline({ stream, out, source: { group, claim_idle_ms: 1000, max_deliveries: 2 } });
    await run([doc]);
    await addEvents(redis, stream, [orderEvent(2)]);

    const [entry] = await entriesOf(`${stream}:dlq`, 1, 'the DLQ');
    expect(Object.keys(entry!.fields).sort()).toEqual(DLQ_FIELDS);
    expect(entry!.fields).toMatchObject({ stage: 'delivery', pipeline: doc.name, source_stream: stream, source_id: poisonId });
    expect(Number(entry!.fields.attempts)).toBeGreaterThan(2);
    expect(entry!.fields.error).toMatch(/^poison: delivered \d+ times, over max_deliveries \(2\)$/);
    expect(JSON.parse(entry!.fields.payload!)).toEqual(orderEvent(1));

    // Only the healthy entry was processed; nothing is left pending, the ghost's entry included.
    await waitFor(async () => (await redis.xlen(out)) === 1, 'the healthy event in the output');
    expect(await readPayloads(redis, out)).toEqual([{ orderId: 'o-2', seq: 2, amount: 2 }]);
    await waitFor(async () => (await pendingSummary(redis, stream, group)).count === 0, 'nothing pending');
  });
});

describe('max_deliveries: the boundary, on reclaimed entries and on a consumer\'s own pending re-read', () => {
  /** Entries read by `holder` and left pending, each with the delivery count given (XCLAIM RETRYCOUNT). */
  async function pendingWithCounts(stream: string, group: string, holder: string, counts: number[]): Promise<string[]> {
    await redis.xgroup('CREATE', stream, group, '0', 'MKSTREAM');
    const ids = await addEvents(redis, stream, counts.map((_, i) => orderEvent(i + 1)));
    await redis.xreadgroup('GROUP', group, holder, 'COUNT', counts.length, 'STREAMS', stream, '>');
    for (const [i, id] of ids.entries()) await redis.xclaim(stream, group, holder, 0, id, 'RETRYCOUNT', counts[i]!, 'JUSTID');
    const rows = (await redis.xpending(stream, group, '-', '+', 10)) as [string, string, number, number][];
    expect(rows.map((r) => [r[0], r[1], Number(r[3])])).toEqual(ids.map((id, i) => [id, holder, counts[i]]));
    return ids;
  }

  async function expectOnlyPoison(eut: EngineUnderTest, stream: string, out: string, group: string, processed: string[], poisonId: string, deliveries: number): Promise<void> {
    const [entry] = await entriesOf(`${stream}:dlq`, 1, 'the DLQ');
    expect(entry!.fields).toMatchObject({ stage: 'delivery', source_id: poisonId, attempts: String(deliveries) });
    expect(entry!.fields.error).toBe(`poison: delivered ${deliveries} times, over max_deliveries (2)`);
    await waitFor(async () => (await redis.xlen(out)) === processed.length, 'the entries within the limit in the output');
    await waitFor(async () => (await pendingSummary(redis, stream, group)).count === 0, 'nothing pending');
    expect((await readPayloads(redis, out)).map((p) => p.orderId)).toEqual(processed);
    expect(await redis.xlen(`${stream}:dlq`)).toBe(1);
    // Counted once each: the poison entry as a DLQ outcome at stage delivery, the others as sunk.
    const pipeline = [...eut.engine.pipelineStates()][0]!.pipeline;
    const metrics = await eut.engine.metrics.registry.metrics();
    const events = (outcome: string) => metricValue(metrics, 'synapse_events_total', { pipeline, outcome });
    const dlq = (stage: string) => metricValue(metrics, 'synapse_dlq_total', { pipeline, stage });
    expect(events('dlq')).toBe(1);
    expect(events('sunk')).toBe(processed.length);
    expect([events('filtered'), events('dropped')]).toEqual([undefined, undefined]);
    expect(dlq('delivery')).toBe(1);
    expect(['decode', 'validate', 'filter', 'transform', 'sink'].map(dlq)).toEqual(Array(5).fill(undefined));
  }

  it('reclaimed from a dead consumer: delivered exactly max_deliveries times is processed, one more is poison', async () => {
    const stream = testKey('in');
    const out = testKey('out');
    const group = `g-${stream.slice(5, 13)}`;
    // The reclaim adds a delivery: these become 2 (= max) and 3 (max + 1).
    const [, poisonId] = await pendingWithCounts(stream, group, 'ghost', [1, 2]);
    const eut = await run([ordersPipeline({ stream, out, source: { group, claim_idle_ms: 1000, max_deliveries: 2 } })]);
    await expectOnlyPoison(eut, stream, out, group, ['o-1'], poisonId!, 3);
  });

  it('a stable-named consumer that keeps crashing on an entry re-reads it as its own, and dead-letters it past the limit', async () => {
    const stream = testKey('in');
    const out = testKey('out');
    const group = `g-${stream.slice(5, 13)}`;
    const name = `stable-${stream.slice(5, 13)}`;
    // What a consumer named `name` leaves behind when it dies with these entries in hand; its
    // re-read at start adds a delivery: 2 (= max) and 3 (max + 1).
    const [, poisonId] = await pendingWithCounts(stream, group, name, [1, 2]);
    const eut = await run([ordersPipeline({ stream, out, source: { group, claim_idle_ms: 600_000, max_deliveries: 2 } })], name);
    await expectOnlyPoison(eut, stream, out, group, ['o-1'], poisonId!, 3);
  });
});

describe('codec: fields', () => {
  it('decodes a flat field map (metrics as a JSON string) and it reaches the sink', async () => {
    const stream = testKey('in');
    const out = testKey('out');
    const doc: PipelineDoc = {
      name: `fields-${stream.slice(5, 13)}`,
      source: { stream, start: '0', block_ms: 200, codec: 'fields' },
      validate: { schema: 'https://synapse.test/schemas/model-event.json' },
      transform: '{ "model": model_name, "accuracy": metrics.accuracy, "tags": tags, "note": note }',
      sink: { type: 'publish', with: { stream: out } },
    };
    await run([doc]);

    // What redis-cli (or Python's xadd(stream, {...})) writes: every value a string.
    await redis.xadd(stream, '*',
      'event', 'model-trained', 'source', 'trainer', 'timestamp', '2026-11-26T10:00:00Z',
      'model_name', 'resnet-50', 'metrics', '{"accuracy": 0.93, "loss": 0.2}', 'tags', '["vision","prod"]', 'note', '{not json');
    // metrics that is not a JSON object stays a string, so the schema refuses it.
    const badId = await redis.xadd(stream, '*', 'event', 'model-trained', 'source', 'trainer', 'model_name', 'm2', 'metrics', 'high');

    await waitFor(async () => (await redis.xlen(out)) === 1, 'the decoded event in the output');
    expect(await readPayloads(redis, out)).toEqual([{ model: 'resnet-50', accuracy: 0.93, tags: ['vision', 'prod'], note: '{not json' }]);

    const [entry] = await entriesOf(`${stream}:dlq`, 1, 'the DLQ');
    expectDlqEntry(entry!, { pipeline: doc.name, stream, sourceId: badId!, stage: 'validate', error: /metrics: must be object/ });
    expect(JSON.parse(entry!.fields.payload!)).toEqual({ event: 'model-trained', source: 'trainer', model_name: 'm2', metrics: 'high' });
    await waitFor(async () => (await pendingSummary(redis, stream, doc.name)).count === 0, 'nothing pending');
  });
});

describe('listing a DLQ in pages (listDlqPage)', () => {
  /** DLQ entries of `payload` + `error` bytes each: what a page's byte budget counts. */
  async function dlqOf(n: number, payloadBytes: number, errorBytes: number): Promise<{ dlq: string; ids: string[] }> {
    const dlq = testKey('dlq');
    const ids: string[] = [];
    for (let i = 0; i < n; i++) {
      ids.push((await redis.xadd(dlq, '*', 'payload', 'p'.repeat(payloadBytes), 'error', 'é'.repeat(errorBytes / 2), 'stage', 'sink',
        'pipeline', 'p', 'source_stream', 's', 'source_id', `${i + 1}-0`, 'attempts', '1', 'failed_at', new Date(0).toISOString()))!);
    }
    return { dlq, ids };
  }

  it('fills a page up to its byte budget exactly (payload and error bytes), and names the entry the next page starts at', async () => {
    // 100 bytes each (60 of payload, 40 of error in 20 two-byte characters): two fit 200 exactly.
    const { dlq, ids } = await dlqOf(3, 60, 40);
    const page = await listDlqPage(redis, dlq, { maxBytes: 200 });
    expect(page.entries.map((e) => e.id)).toEqual(ids.slice(0, 2));
    expect(page.next).toBe(ids[2]);
    expect((await listDlqPage(redis, dlq, { maxBytes: 199 })).entries.map((e) => e.id)).toEqual(ids.slice(0, 1));
    const rest = await listDlqPage(redis, dlq, { from: page.next!, maxBytes: 200 });
    expect(rest).toEqual({ entries: [expect.objectContaining({ id: ids[2], source_id: '3-0', attempts: 1 })], next: null });
  });

  it('lists an entry missing fields (written by hand) with empty defaults, not undefined', async () => {
    const dlq = testKey('dlq');
    const id = await redis.xadd(dlq, '*', 'note', 'hand-written');
    expect((await listDlqPage(redis, dlq)).entries).toEqual([{ id, payload: '', error: '', stage: '', pipeline: '', source_stream: '',
      source_id: '', attempts: 0, failed_at: '' }]);
    const cut = await redis.xadd(dlq, '*', 'payload', 'x', 'payload_truncated', 'true');
    expect((await listDlqPage(redis, dlq, { from: cut! })).entries[0]).toMatchObject({ payload_truncated: true, payload_bytes: 0, payload_sha256: '' });
    // Only a payload that is not UTF-8 is shown as base64; another field's bytes stay that field's.
    const binaryError = await redis.xadd(dlq, '*', 'payload', '{"ok":true}', 'error', Buffer.from([0xff, 0xfe, 0x41]));
    const [listed] = (await listDlqPage(redis, dlq, { from: binaryError! })).entries;
    expect(listed).toMatchObject({ payload: '{"ok":true}', error: Buffer.from([0xff, 0xfe, 0x41]).toString() });
    expect(listed!.payload_encoding).toBeUndefined();
  });

  it('a page holds at least one entry, however far over the budget', async () => {
    const { dlq, ids } = await dlqOf(2, 5000, 0);
    expect(await listDlqPage(redis, dlq, { maxBytes: 10 })).toEqual({ entries: [expect.objectContaining({ id: ids[0] })], next: ids[1] });
  });

  it('reads on past its first chunk: a page of 25 small entries holds all 25, then says there is no more', async () => {
    const { dlq, ids } = await dlqOf(25, 10, 10);
    const page = await listDlqPage(redis, dlq, { count: 100 });
    expect(page.entries.map((e) => e.id)).toEqual(ids);
    expect(page.next).toBeNull();
    const five = await listDlqPage(redis, dlq, { count: 5 });
    expect(five.entries.map((e) => e.id)).toEqual(ids.slice(0, 5));
    expect(five.next).toBe(ids[5]);
  });
});
