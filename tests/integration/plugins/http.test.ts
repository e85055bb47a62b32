import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import type { Redis } from 'ioredis';
import { freePort } from '../../../engine/runtime/redis-server.ts';
import { diagnosticsOf, positionOf } from '../../helpers/config-errors.ts';
import { startHttpRecorder, type HttpRecorder } from '../../helpers/http-recorder.ts';
import { startEngine, type EngineUnderTest } from '../../helpers/in-process-engine.ts';
import { orderEvent, pipelineDirs, testKey, type PipelineDoc } from '../../helpers/pipelines.ts';
import { startTestRedis, waitFor, type TestRedis } from '../../helpers/redis.ts';
import { addEvents, groupSettledThrough, readStream, type Entry } from '../../helpers/streams.ts';

let server: TestRedis;
let redis: Redis;
const dirs = pipelineDirs();
let engines: EngineUnderTest[] = [];
let recorders: HttpRecorder[] = [];

beforeAll(async () => {
  server = await startTestRedis();
  redis = server.client();
});
afterEach(async () => {
  await Promise.all(engines.splice(0).map((e) => e.stop()));
  await Promise.all(recorders.splice(0).map((r) => r.close()));
});
afterAll(async () => {
  await dirs.cleanup();
  await server?.close();
});

async function recorder(...args: Parameters<typeof startHttpRecorder>): Promise<HttpRecorder> {
  const r = await startHttpRecorder(...args);
  recorders.push(r);
  return r;
}

/** An order stream → http pipeline; `with` is merged into the sink's with block. */
function httpPipeline(stream: string, withBlock: Record<string, unknown>, extra: Record<string, unknown> = {}): PipelineDoc {
  return {
    name: `http-${stream.slice(5, 13)}`,
    source: { stream, start: '0', block_ms: 100 },
    transform: '{ "orderId": data.orderId, "amount": data.amount }',
    sink: { type: 'http', with: { timeout_ms: 10_000, ...withBlock } },
    retry: { attempts: 3, backoff: 'fixed', delay_ms: 10 },
    ...extra,
  };
}

async function run(doc: PipelineDoc): Promise<EngineUnderTest> {
  const eut = await startEngine({ redisUrl: server.url, pipelines: await dirs.make([doc]) });
  engines.push(eut);
  return eut;
}

async function settled(stream: string, group: string, lastId: string): Promise<void> {
  await waitFor(() => groupSettledThrough(redis, stream, group, lastId), `${stream} settled through ${lastId}`);
}

async function dlqOf(stream: string, n: number): Promise<Entry[]> {
  return waitFor(async () => {
    const got = await readStream(redis, `${stream}:dlq`);
    return got.length >= n && got;
  }, `${n} DLQ entries of ${stream}`);
}

describe('http sink against a real HTTP server', () => {
  it('POSTs each transformed event as JSON with the configured method and headers and an Idempotency-Key per entry', async () => {
    const hook = await recorder();
    const stream = testKey('in');
    const doc = httpPipeline(stream, { url: `${hook.url}/hook`, method: 'PUT', headers: { authorization: 'Bearer t0ken', 'x-extra': 'yes' } });
    await run(doc);

    const ids = await addEvents(redis, stream, [orderEvent(1), orderEvent(2), orderEvent(3)]);
    await settled(stream, doc.name, ids[2]!);

    expect(hook.requests).toHaveLength(3);
    const byOrder = new Map(hook.requests.map((r) => [(r.json as { orderId: string }).orderId, r]));
    ids.forEach((id, i) => {
      const r = byOrder.get(`o-${i + 1}`)!;
      expect(r, `request for o-${i + 1}`).toBeDefined();
      expect(r.method).toBe('PUT');
      expect(r.url).toBe('/hook');
      expect(r.json).toEqual({ orderId: `o-${i + 1}`, amount: i + 1 });
      expect(r.headers['content-type']).toBe('application/json');
      expect(r.headers.authorization).toBe('Bearer t0ken');
      expect(r.headers['x-extra']).toBe('yes');
      expect(r.headers['idempotency-key']).toBe(`${doc.name}:${id}`);
    });
    expect(await redis.exists(`${stream}:dlq`)).toBe(0);
  });

  it('a redelivered entry is sent again with the same Idempotency-Key, so the receiver can drop it', async () => {
    const hook = await recorder();
    const stream = testKey('in');
    const doc = httpPipeline(stream, { url: hook.url });
    const eut = await run(doc);
    const [id] = await addEvents(redis, stream, [orderEvent(1)]);
    await settled(stream, doc.name, id!);
    expect(hook.requests).toHaveLength(1);

    // Make the group hand the same entry out again, as after a lost ack.
    await redis.xgroup('SETID', stream, doc.name, '0');
    await waitFor(() => eut.tally(doc.name).sunk === 2, 'the entry sunk a second time');
    expect(hook.requests.map((r) => r.headers['idempotency-key'])).toEqual([`${doc.name}:${id}`, `${doc.name}:${id}`]);
  });

  it('a 5xx is retried per retry, then the entry goes to the DLQ at stage sink with attempts = retry.attempts', async () => {
    const hook = await recorder(() => ({ status: 503, body: { error: 'overloaded' } }));
    const stream = testKey('in');
    const doc = httpPipeline(stream, { url: hook.url }, { retry: { attempts: 4, backoff: 'fixed', delay_ms: 10 } });
    await run(doc);
    const [id] = await addEvents(redis, stream, [orderEvent(1)]);

    const [dlq] = await dlqOf(stream, 1);
    expect(dlq!.fields).toMatchObject({ stage: 'sink', pipeline: doc.name, source_stream: stream, source_id: id, attempts: '4' });
    expect(dlq!.fields.error).toMatch(/HTTP 503/);
    expect(JSON.parse(dlq!.fields.payload!)).toEqual(orderEvent(1));
    expect(hook.requests).toHaveLength(4);
    // Every try of one entry carries the same key.
    expect(new Set(hook.requests.map((r) => r.headers['idempotency-key']))).toEqual(new Set([`${doc.name}:${id}`]));
    await settled(stream, doc.name, id!);
  });

  it('a 5xx that clears up is retried until it succeeds, and nothing goes to the DLQ', async () => {
    const hook = await recorder((req) => (req.n <= 2 ? { status: 500 } : { status: 204 }));
    const stream = testKey('in');
    const doc = httpPipeline(stream, { url: hook.url });
    const eut = await run(doc);
    const [id] = await addEvents(redis, stream, [orderEvent(1)]);
    await settled(stream, doc.name, id!);
    expect(hook.requests).toHaveLength(3);
    await waitFor(() => eut.tally(doc.name).total >= 1, 'the engine to record the outcomes');
    expect(eut.tally(doc.name)).toMatchObject({ sunk: 1, dlq: 0 });
    expect(await redis.exists(`${stream}:dlq`)).toBe(0);
  });

  it.each([408, 429])('HTTP %i is retried like a 5xx', async (status) => {
    const hook = await recorder(() => ({ status }));
    const stream = testKey('in');
    const doc = httpPipeline(stream, { url: hook.url });
    await run(doc);
    await addEvents(redis, stream, [orderEvent(1)]);
    const [dlq] = await dlqOf(stream, 1);
    expect(dlq!.fields).toMatchObject({ stage: 'sink', attempts: '3' });
    expect(dlq!.fields.error).toContain(`HTTP ${status}`);
    expect(hook.requests).toHaveLength(3);
  });

  it.each([400, 404, 422])('HTTP %i is not retried: the entry goes to the DLQ at once, with the status in the error', async (status) => {
    const hook = await recorder(() => ({ status, body: { error: 'no such hook' } }));
    const stream = testKey('in');
    const doc = httpPipeline(stream, { url: hook.url }, { retry: { attempts: 5, backoff: 'fixed', delay_ms: 10 } });
    await run(doc);
    const [id] = await addEvents(redis, stream, [orderEvent(1)]);
    const [dlq] = await dlqOf(stream, 1);
    expect(dlq!.fields).toMatchObject({ stage: 'sink', source_id: id, attempts: '1' });
    expect(dlq!.fields.error).toContain(`HTTP ${status}`);
    expect(dlq!.fields.error).toContain('no such hook');
    expect(hook.requests).toHaveLength(1);
  });

  it('a network error (nothing listening on the port) is retried, then DLQd with the cause', async () => {
    const port = await freePort();
    const stream = testKey('in');
    const doc = httpPipeline(stream, { url: `http://127.0.0.1:${port}/hook` });
    await run(doc);
    const [id] = await addEvents(redis, stream, [orderEvent(1)]);
    const [dlq] = await dlqOf(stream, 1);
    expect(dlq!.fields).toMatchObject({ stage: 'sink', source_id: id, attempts: '3' });
    expect(dlq!.fields.error).toMatch(/ECONNREFUSED/);
  });

  it('a network error that clears up (a reset connection, then an answer) delivers the entry', async () => {
    const stream = testKey('in');
    // A connection reset on the first try, then a real answer.
    const hook = await recorder((req) => (req.n === 1 ? 'reset' : { status: 200 }));
    const doc = httpPipeline(stream, { url: hook.url });
    const eut = await run(doc);
    const [id] = await addEvents(redis, stream, [orderEvent(1)]);
    await settled(stream, doc.name, id!);
    expect(hook.requests).toHaveLength(2);
    await waitFor(() => eut.tally(doc.name).total >= 1, 'the engine to record the outcomes');
    expect(eut.tally(doc.name)).toMatchObject({ sunk: 1, dlq: 0 });
  });

  it('a server that does not answer within timeout_ms is retried, then DLQd as a time-out', async () => {
    const hook = await recorder(() => 'hang');
    const stream = testKey('in');
    const doc = httpPipeline(stream, { url: hook.url, timeout_ms: 150 }, { retry: { attempts: 2, backoff: 'fixed', delay_ms: 10 } });
    await run(doc);
    await addEvents(redis, stream, [orderEvent(1)]);
    const [dlq] = await dlqOf(stream, 1);
    expect(dlq!.fields).toMatchObject({ stage: 'sink', attempts: '2' });
    expect(dlq!.fields.error).toMatch(/timed out after 150 ms/);
    expect(hook.requests).toHaveLength(2);
  });

  it('in one batch, only the events the server refuses go to the DLQ; the rest are delivered once', async () => {
    const hook = await recorder((req) => ((req.json as { orderId: string }).orderId === 'o-2' ? { status: 400 } : { status: 200 }));
    const stream = testKey('in');
    const doc = httpPipeline(stream, { url: hook.url });
    await run(doc);
    const ids = await addEvents(redis, stream, [orderEvent(1), orderEvent(2), orderEvent(3)]);
    await settled(stream, doc.name, ids[2]!);
    const dlq = await readStream(redis, `${stream}:dlq`);
    expect(dlq.map((e) => e.fields.source_id)).toEqual([ids[1]]);
    const delivered = hook.requests.map((r) => (r.json as { orderId: string }).orderId).sort();
    expect(delivered).toEqual(['o-1', 'o-2', 'o-3']);
  });
});

describe('http sink config is checked at load, errors as FILE:LINE:COL', () => {
  const cases: { name: string; with: string; needle: string; offset?: number; message: string }[] = [
    // A missing key is reported where the with: block starts.
    { name: 'no url', with: '    method: POST\n', needle: 'method', message: "http sink 'with' is missing required key 'url'" },
    { name: 'a url that is not http(s)', with: '    url: ftp://example.com/x\n', needle: 'ftp://', message: "http sink 'with'.url must match pattern" },
    { name: 'a method outside its enum', with: '    url: http://127.0.0.1:9/x\n    method: GET\n', needle: 'GET', message: "http sink 'with'.method must be one of" },
    { name: 'an unknown key', with: '    url: http://127.0.0.1:9/x\n    timeout: 5\n', needle: 'timeout', message: "unknown key 'timeout' in http sink 'with'" },
    { name: 'a header that is not a string', with: '    url: http://127.0.0.1:9/x\n    headers: { x-n: [1] }\n', needle: '[1]', message: "http sink 'with'.headers.x-n must be string" },
    { name: 'concurrency out of range', with: '    url: http://127.0.0.1:9/x\n    concurrency: 0\n', needle: 'concurrency: 0', offset: 13, message: "http sink 'with'.concurrency must be >= 1" },
  ];
  it.each(cases)('$name', async (c) => {
    const text = `name: bad-http\nsource: { stream: s }\nsink:\n  type: http\n  with:\n${c.with}`;
    const diagnostics = await diagnosticsOf(text);
    expect(diagnostics).toHaveLength(1);
    const want = positionOf(text, c.needle, c.offset ?? 0);
    expect(diagnostics[0]!.message).toContain(c.message);
    expect({ line: diagnostics[0]!.line, col: diagnostics[0]!.col }).toEqual(want);
    expect(diagnostics[0]!.file).toMatch(/under-test\.yaml$/);
  });
});
