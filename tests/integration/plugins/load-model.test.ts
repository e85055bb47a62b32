import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import type { Redis } from 'ioredis';
import { freePort } from '../../../engine/runtime/redis-server.ts';
import { diagnosticsOf, positionOf } from '../../helpers/config-errors.ts';
import { startHttpRecorder, type HttpRecorder, type RecordedRequest } from '../../helpers/http-recorder.ts';
import { startEngine, type EngineUnderTest } from '../../helpers/in-process-engine.ts';
import { pipelineDirs, testKey, type PipelineDoc } from '../../helpers/pipelines.ts';
import { startTestRedis, waitFor, type TestRedis } from '../../helpers/redis.ts';
import { groupSettledThrough, readPayloads, readStream } from '../../helpers/streams.ts';

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
  // Recorders first: a held request would keep an engine's stop waiting.
  await Promise.all(recorders.splice(0).map((r) => r.close()));
  await Promise.all(engines.splice(0).map((e) => e.stop()));
});
afterAll(async () => {
  await dirs.cleanup();
  await server?.close();
});

interface Announcement {
  event: string;
  source: string;
  timestamp: string;
  data: Record<string, unknown>;
}

/** A model-ready stream (flat fields, as the seed producers write it) → load-model pipeline. */
function loadModelPipeline(stream: string, withBlock: Record<string, unknown>, extra: { source?: Record<string, unknown>; [k: string]: unknown } = {}): PipelineDoc & { registry: string; announce: string } {
  const registry = testKey('registry');
  const announce = testKey('model-events');
  const { source, ...rest } = extra;
  return {
    name: `load-${stream.slice(5, 13)}`,
    source: { stream, start: '0', block_ms: 100, codec: 'fields', ...source },
    filter: 'event = "model-ready"',
    transform: '{ "model_name": model_name, "version": version, "checkpoint_path": checkpoint_path }',
    sink: { type: 'load-model', with: { timeout_ms: 10_000, retries: 3, retry_delay_ms: 10, announce, registry, ...withBlock } },
    retry: { attempts: 3, backoff: 'fixed', delay_ms: 10 },
    ...rest,
    registry,
    announce,
  };
}

async function run(doc: PipelineDoc, consumer?: string): Promise<EngineUnderTest> {
  const { registry: _r, announce: _a, ...pipeline } = doc as PipelineDoc & { registry?: string; announce?: string };
  const eut = await startEngine({ redisUrl: server.url, pipelines: await dirs.make([pipeline as PipelineDoc]), consumer });
  engines.push(eut);
  return eut;
}

async function recorder(...args: Parameters<typeof startHttpRecorder>): Promise<HttpRecorder> {
  const r = await startHttpRecorder(...args);
  recorders.push(r);
  return r;
}

/** XADDs a model-ready event as flat fields; returns its entry id. */
async function modelReady(stream: string, name: string, version: string, extra: Record<string, string> = {}): Promise<string> {
  return (await redis.xadd(stream, '*', 'event', 'model-ready', 'model_name', name, 'version', version, 'checkpoint_path', `s3://models/${name}/${version}`, ...Object.entries(extra).flat()))!;
}

const loadsOf = (r: HttpRecorder, name: string, version: string): RecordedRequest[] =>
  r.requests.filter((q) => (q.json as { name?: string; version?: string }).name === name && (q.json as { version?: string }).version === version);

describe('load-model sink against a real model runtime (HTTP) and Redis', () => {
  it('asks the runtime to load the model, records the version and announces model-loaded', async () => {
    const runtime = await recorder(() => ({ status: 200, body: { loaded: true } }));
    const stream = testKey('in');
    const doc = loadModelPipeline(stream, { url: `${runtime.url}/models/load` });
    await run(doc);
    const id = await modelReady(stream, 'sentiment', '3');
    await waitFor(() => groupSettledThrough(redis, stream, doc.name, id), 'the entry settled');

    expect(runtime.requests).toHaveLength(1);
    expect(runtime.requests[0]!.url).toBe('/models/load');
    expect(runtime.requests[0]!.method).toBe('POST');
    expect(runtime.requests[0]!.json).toEqual({ name: 'sentiment', version: '3', checkpoint_path: 's3://models/sentiment/3' });
    const recorded = JSON.parse((await redis.hget(doc.registry, 'sentiment@3'))!);
    expect(recorded).toMatchObject({ model_name: 'sentiment', version: '3', entry: id });
    const [announced, ...more] = await readPayloads<Announcement>(redis, doc.announce);
    expect(more).toEqual([]);
    expect(announced).toMatchObject({ event: 'model-loaded', source: 'synapse', data: { model_name: 'sentiment', version: '3', checkpoint_path: 's3://models/sentiment/3' } });
    expect(announced!.data.load_time_ms).toBeTypeOf('number');
    expect(new Date(announced!.timestamp).toISOString()).toBe(announced!.timestamp);
  });

  it('a redelivered entry, and another model-ready for a loaded version, are skipped: the runtime is called once', async () => {
    const runtime = await recorder();
    const stream = testKey('in');
    const doc = loadModelPipeline(stream, { url: runtime.url });
    const eut = await run(doc);
    const first = await modelReady(stream, 'sentiment', '3');
    await waitFor(() => groupSettledThrough(redis, stream, doc.name, first), 'the entry settled');

    await redis.xgroup('SETID', stream, doc.name, '0');
    await waitFor(() => eut.tally(doc.name).sunk === 2, 'the entry sunk a second time');
    const again = await modelReady(stream, 'sentiment', '3');
    const next = await modelReady(stream, 'sentiment', '4');
    await waitFor(() => groupSettledThrough(redis, stream, doc.name, next), 'the later entries settled');

    expect(again).not.toBe(first);
    expect(loadsOf(runtime, 'sentiment', '3')).toHaveLength(1);
    expect(loadsOf(runtime, 'sentiment', '4')).toHaveLength(1);
    expect((await readPayloads<Announcement>(redis, doc.announce)).map((a) => `${a.event} ${a.data.version}`)).toEqual(['model-loaded 3', 'model-loaded 4']);
    await waitFor(() => eut.tally(doc.name).total >= 4, 'the engine to record the outcomes');
    expect(eut.tally(doc.name)).toMatchObject({ sunk: 4, dlq: 0 });
  });

  it('a runtime answering 500, then 200, loads the model after retries; nothing goes to the DLQ', async () => {
    const runtime = await recorder((req) => (req.n <= 2 ? { status: 500, body: { error: 'GPU busy' } } : { status: 200 }));
    const stream = testKey('in');
    const doc = loadModelPipeline(stream, { url: runtime.url, retries: 3 });
    const eut = await run(doc);
    const id = await modelReady(stream, 'ranker', '7');
    await waitFor(() => groupSettledThrough(redis, stream, doc.name, id), 'the entry settled');

    expect(runtime.requests).toHaveLength(3);
    expect(await redis.hexists(doc.registry, 'ranker@7')).toBe(1);
    expect((await readPayloads<Announcement>(redis, doc.announce)).map((a) => a.event)).toEqual(['model-loaded']);
    await waitFor(() => eut.tally(doc.name).total >= 1, 'the engine to record the outcomes');
    expect(eut.tally(doc.name)).toMatchObject({ sunk: 1, dlq: 0 });
    expect(await redis.exists(`${stream}:dlq`)).toBe(0);
  });

  it('a runtime always answering 500: retries spent, model-load-failed is announced and the entry goes to the DLQ', async () => {
    const runtime = await recorder(() => ({ status: 500, body: { error: 'out of memory' } }));
    const stream = testKey('in');
    const doc = loadModelPipeline(stream, { url: runtime.url, retries: 2 });
    await run(doc);
    const id = await modelReady(stream, 'ranker', '7');
    const [dlq] = await waitFor(async () => {
      const got = await readStream(redis, `${stream}:dlq`);
      return got.length > 0 && got;
    }, 'the DLQ entry');

    expect(dlq!.fields).toMatchObject({ stage: 'sink', source_id: id, pipeline: doc.name });
    expect(dlq!.fields.error).toMatch(/loading ranker@7 failed: .*HTTP 500/);
    // The sink retried on its own (retries + 1 calls); the pipeline does not retry it again.
    expect(runtime.requests).toHaveLength(3);
    const announced = await readPayloads<Announcement>(redis, doc.announce);
    expect(announced).toEqual([expect.objectContaining({ event: 'model-load-failed', source: 'synapse' })]);
    expect(announced[0]!.data).toMatchObject({ model_name: 'ranker', version: '7', attempts: 3 });
    expect(String(announced[0]!.data.error)).toMatch(/HTTP 500/);
    expect(await redis.hexists(doc.registry, 'ranker@7')).toBe(0);
    await waitFor(() => groupSettledThrough(redis, stream, doc.name, id), 'the entry settled');
  });

  it('a runtime answering 4xx is not retried: model-load-failed at once, and the DLQ', async () => {
    const runtime = await recorder(() => ({ status: 404, body: { error: 'no such checkpoint' } }));
    const stream = testKey('in');
    const doc = loadModelPipeline(stream, { url: runtime.url, retries: 3 });
    await run(doc);
    await modelReady(stream, 'ranker', '8');
    const [dlq] = await waitFor(async () => {
      const got = await readStream(redis, `${stream}:dlq`);
      return got.length > 0 && got;
    }, 'the DLQ entry');
    expect(dlq!.fields.error).toMatch(/HTTP 404/);
    expect(runtime.requests).toHaveLength(1);
    const announced = await readPayloads<Announcement>(redis, doc.announce);
    expect(announced.map((a) => [a.event, a.data.attempts])).toEqual([['model-load-failed', 1]]);
  });

  it('a runtime that is not listening is retried, then model-load-failed names the network error', async () => {
    const port = await freePort();
    const stream = testKey('in');
    const doc = loadModelPipeline(stream, { url: `http://127.0.0.1:${port}/models/load`, retries: 2 });
    await run(doc);
    await modelReady(stream, 'ranker', '9');
    const [dlq] = await waitFor(async () => {
      const got = await readStream(redis, `${stream}:dlq`);
      return got.length > 0 && got;
    }, 'the DLQ entry');
    expect(dlq!.fields.error).toMatch(/ECONNREFUSED/);
    const announced = await readPayloads<Announcement>(redis, doc.announce);
    expect(announced.map((a) => [a.event, a.data.attempts])).toEqual([['model-load-failed', 3]]);
  });

  // The version is recorded as loaded before model-loaded is announced. When the announcement
  // fails, the error is taken for a load failure (model-load-failed is attempted), and the retry
  // finds the version recorded and skips it: the entry is acknowledged as sunk, never announced.
  it('a model-loaded announcement that fails is retried and the entry DLQd, not dropped as already loaded', async () => {
    const runtime = await recorder();
    const stream = testKey('in');
    const doc = loadModelPipeline(stream, { url: runtime.url });
    await redis.set(doc.announce, 'not a stream');
    const eut = await run(doc);
    const id = await modelReady(stream, 'ranker', '11');
    await waitFor(() => groupSettledThrough(redis, stream, doc.name, id), 'the entry settled');
    expect(runtime.requests).toHaveLength(1);
    await waitFor(() => eut.tally(doc.name).total >= 1, 'the engine to record the outcomes');
    expect(eut.tally(doc.name), 'outcome of a load whose announcement could not be published').toMatchObject({ sunk: 0, dlq: 1 });
    const dlq = await readStream(redis, `${stream}:dlq`);
    expect(dlq[0]!.fields.error).toMatch(/WRONGTYPE/);
    expect(dlq[0]!.fields.error).not.toMatch(/loading ranker@11 failed/);
  });

  it('a model-ready without a version goes to the DLQ without calling the runtime', async () => {
    const runtime = await recorder();
    const stream = testKey('in');
    const doc = loadModelPipeline(stream, { url: runtime.url });
    await run(doc);
    const id = (await redis.xadd(stream, '*', 'event', 'model-ready', 'model_name', 'ranker'))!;
    const [dlq] = await waitFor(async () => {
      const got = await readStream(redis, `${stream}:dlq`);
      return got.length > 0 && got;
    }, 'the DLQ entry');
    expect(dlq!.fields).toMatchObject({ stage: 'sink', source_id: id, attempts: '1' });
    expect(dlq!.fields.error).toMatch(/needs model_name and version/);
    expect(runtime.requests).toHaveLength(0);
  });

  // A load can take longer than claim_idle_ms (the defaults: timeout_ms 30 s, 3 retries with
  // back-off, against claim_idle_ms 30 s). Another replica then reclaims the entry although its
  // consumer is alive and working on it (SPEC §4 reclaims from consumers that died): the version
  // is not "already loaded" yet, so it is loaded twice.
  it('a load still in flight when another replica reclaims the entry is not started a second time', async () => {
    let release: () => void = () => undefined;
    const held = new Promise<void>((r) => (release = r));
    // A slow load: the first request is answered only once the test has seen the other replica
    // look for idle entries after this one had been in flight longer than claim_idle_ms.
    const runtime = await recorder(async (req) => {
      if (req.n === 1) await held;
      return { status: 200 };
    });
    const monitor = await redis.monitor();
    const scansByB: number[] = [];
    monitor.on('monitor', (_time: string, args: string[]) => {
      if (args[0]?.toLowerCase() === 'xautoclaim' && args[3] === 'replica-b') scansByB.push(Date.now());
    });
    try {
      const stream = testKey('in');
      const claimIdleMs = 1000;
      const doc = loadModelPipeline(stream, { url: runtime.url, timeout_ms: 60_000 }, { source: { claim_idle_ms: claimIdleMs } });
      const a = await run(doc, 'replica-a');
      const id = await modelReady(stream, 'llm', '70b');
      await waitFor(() => runtime.requests.length >= 1, 'replica a to start loading');
      const loadStarted = Date.now();
      const b = await run(doc, 'replica-b');
      await waitFor(() => scansByB.filter((t) => t > loadStarted + claimIdleMs).length >= 2,
        'replica b to look for idle entries twice after the load had been in flight for claim_idle_ms', 15_000);
      release();
      await waitFor(() => groupSettledThrough(redis, stream, doc.name, id), 'the entry settled', 15_000);
      expect(loadsOf(runtime, 'llm', '70b'), 'load requests for llm@70b').toHaveLength(1);
      // Settled by replica a, which kept the entry claimed while it worked; b never took it.
      expect(a.tally(doc.name)).toMatchObject({ sunk: 1, total: 1 });
      expect(b.tally(doc.name).total).toBe(0);
    } finally {
      release();
      monitor.disconnect();
    }
  });
});

describe('load-model sink config is checked at load, errors as FILE:LINE:COL', () => {
  const cases: { name: string; with: string; needle: string; offset?: number; message: string }[] = [
    { name: 'no url', with: '    retries: 2\n', needle: 'retries', message: "load-model sink 'with' is missing required key 'url'" },
    { name: 'a url that is not http(s)', with: '    url: cyrex:8000/models/load\n', needle: 'cyrex:', message: "load-model sink 'with'.url must match pattern" },
    { name: 'retries above 20', with: '    url: http://127.0.0.1:8000/load\n    retries: 50\n', needle: '50', message: "load-model sink 'with'.retries must be <= 20" },
    { name: 'an unknown key', with: '    url: http://127.0.0.1:8000/load\n    announce_stream: x\n', needle: 'announce_stream', message: "unknown key 'announce_stream' in load-model sink 'with'" },
    { name: 'a timeout that is not an integer', with: '    url: http://127.0.0.1:8000/load\n    timeout_ms: 1.5\n', needle: '1.5', message: "load-model sink 'with'.timeout_ms must be integer" },
  ];
  it.each(cases)('$name', async (c) => {
    const text = `name: bad-load\nsource: { stream: s }\nsink:\n  type: load-model\n  with:\n${c.with}`;
    const diagnostics = await diagnosticsOf(text);
    expect(diagnostics).toHaveLength(1);
    expect(diagnostics[0]!.message).toContain(c.message);
    expect({ line: diagnostics[0]!.line, col: diagnostics[0]!.col }).toEqual(positionOf(text, c.needle, c.offset ?? 0));
  });
});
