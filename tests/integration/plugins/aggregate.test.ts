import { afterAll, afterEach, beforeAll, describe, expect, it, vi } from 'vitest';
import { Redis } from 'ioredis';
import type { FastifyInstance } from 'fastify';
import { buildAdminServer } from '../../../engine/admin/server.ts';
import type { Sink, SinkMessage } from '../../../engine/plugins/define-sink.ts';
import aggregate, { aggregateKeys, readAggregates, type WindowFigures } from '../../../plugins/sinks/aggregate.ts';
import { diagnosticsOf, positionOf } from '../../helpers/config-errors.ts';
import { startEngine, type EngineUnderTest } from '../../helpers/in-process-engine.ts';
import { pipelineDirs, testKey, type PipelineDoc } from '../../helpers/pipelines.ts';
import { realSinkContext, type RealSinkContext } from '../../helpers/real-sink-context.ts';
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
  vi.useRealTimers();
  await Promise.all(closers.splice(0).map((c) => c().catch(() => undefined)));
  await Promise.all(engines.splice(0).map((e) => e.stop()));
});
afterAll(async () => {
  await dirs.cleanup();
  await server?.close();
});

const HOUR = 3_600_000;
const MEASURES = { latency_ms: ['count', 'sum', 'min', 'max', 'avg', 'p50', 'p95', 'p99'], tokens_used: ['sum'], success: ['rate'] };

interface Alert {
  event: string;
  source: string;
  timestamp: string;
  data: WindowFigures & { rule: string; pipeline: string };
}

function aggregatePipeline(stream: string, withBlock: Record<string, unknown>, extra: Record<string, unknown> = {}): PipelineDoc {
  return {
    name: `agg-${stream.slice(5, 13)}`,
    source: { stream, start: '0', block_ms: 100 },
    filter: 'event = "inference-completed"',
    transform: '{ "model_name": data.model_name, "version": data.version, "latency_ms": data.latency_ms, "tokens_used": data.tokens_used, "success": data.success }',
    sink: { type: 'aggregate', with: { key: 'model_name & "@" & version', window: '1h', measures: MEASURES, ...withBlock } },
    retry: { attempts: 2, backoff: 'fixed', delay_ms: 10 },
    ...extra,
  };
}

async function run(doc: PipelineDoc, consumer?: string): Promise<EngineUnderTest> {
  const eut = await startEngine({ redisUrl: server.url, pipelines: await dirs.make([doc]), consumer });
  engines.push(eut);
  return eut;
}

function inference(at: number, model: string, version: string, latency: number, success: boolean, tokens = 2): Record<string, unknown> {
  return { event: 'inference-completed', source: 'model-gateway', timestamp: new Date(at).toISOString(), data: { model_name: model, version, latency_ms: latency, tokens_used: tokens, success } };
}

/** A deterministic shuffle, so events do not arrive sorted by the measured value. */
function shuffled<T>(items: T[]): T[] {
  const out = [...items];
  let seed = 42;
  for (let i = out.length - 1; i > 0; i--) {
    seed = (seed * 1103515245 + 12345) % 2 ** 31;
    const j = seed % (i + 1);
    [out[i], out[j]] = [out[j]!, out[i]!];
  }
  return out;
}

/** The known data set: m@1 has latencies 1..1000 (every 10th a failure), m@2 has 10, 20, ..., 1000. */
function dataSet(windowStart: number): Record<string, unknown>[] {
  const a = Array.from({ length: 1000 }, (_, i) => inference(windowStart + i, 'm', '1', i + 1, i % 10 !== 0));
  const b = Array.from({ length: 100 }, (_, i) => inference(windowStart + i, 'm', '2', (i + 1) * 10, i % 4 !== 0, 5));
  return shuffled([...a, ...b]);
}

function expectWithin(actual: unknown, expected: number, tolerance: number, what: string): void {
  expect(actual, what).toBeTypeOf('number');
  expect(Math.abs((actual as number) - expected) / expected, `${what}: ${String(actual)} vs ${expected}`).toBeLessThanOrEqual(tolerance);
}

function expectKnownFigures(windows: WindowFigures[], windowStart: number): void {
  const byKey = new Map(windows.map((w) => [w.key, w]));
  expect([...byKey.keys()].sort()).toEqual(['m@1', 'm@2']);
  const a = byKey.get('m@1')!;
  expect(a).toMatchObject({
    window_start: new Date(windowStart).toISOString(),
    window_end: new Date(windowStart + HOUR).toISOString(),
    count: 1000, latency_ms_count: 1000, latency_ms_sum: 500500, latency_ms_min: 1, latency_ms_max: 1000, latency_ms_avg: 500.5,
    tokens_used_sum: 2000, success_rate: 0.9,
  });
  expectWithin(a.latency_ms_p50, 500, 0.05, 'm@1 p50');
  expectWithin(a.latency_ms_p95, 950, 0.05, 'm@1 p95');
  expectWithin(a.latency_ms_p99, 990, 0.05, 'm@1 p99');
  const b = byKey.get('m@2')!;
  expect(b).toMatchObject({
    count: 100, latency_ms_count: 100, latency_ms_sum: 50500, latency_ms_min: 10, latency_ms_max: 1000, latency_ms_avg: 505,
    tokens_used_sum: 500, success_rate: 0.75,
  });
  expectWithin(b.latency_ms_p50, 500, 0.05, 'm@2 p50');
  expectWithin(b.latency_ms_p95, 950, 0.05, 'm@2 p95');
  expectWithin(b.latency_ms_p99, 990, 0.05, 'm@2 p99');
}

describe('aggregate sink over a real pipeline and Redis', () => {
  it('computes count, sum, min, max, avg, rate and p50/p95/p99 per key for a known data set', async () => {
    const stream = testKey('in');
    const doc = aggregatePipeline(stream, {});
    const eut = await run(doc);
    const windowStart = Math.floor(Date.now() / HOUR) * HOUR;
    const ids = await addEvents(redis, stream, dataSet(windowStart));
    await waitFor(() => groupSettledThrough(redis, stream, doc.name, ids.at(-1)!), 'every entry settled');
    await waitFor(() => eut.tally(doc.name).total >= 1100, 'the engine to record the outcomes');
    expect(eut.tally(doc.name)).toMatchObject({ sunk: 1100, dlq: 0 });

    const windows = await readAggregates(redis, doc.name, 'aggregate', { window: '1h', measures: MEASURES as never });
    expect(windows).toHaveLength(2);
    expectKnownFigures(windows, windowStart);
    // One key only.
    expect((await readAggregates(redis, doc.name, 'aggregate', { window: '1h', measures: MEASURES as never }, { key: 'm@2' })).map((w) => w.key)).toEqual(['m@2']);
  });

  it('GET /aggregates/:pipeline serves the same figures, and filters by key and time', async () => {
    const stream = testKey('in');
    const doc = aggregatePipeline(stream, {});
    const eut = await run(doc);
    const app: FastifyInstance = await buildAdminServer({ engine: eut.engine });
    closers.push(() => app.close());
    const windowStart = Math.floor(Date.now() / HOUR) * HOUR;
    const ids = await addEvents(redis, stream, dataSet(windowStart));
    await waitFor(() => groupSettledThrough(redis, stream, doc.name, ids.at(-1)!), 'every entry settled');

    const res = await app.inject({ method: 'GET', url: `/aggregates/${doc.name}` });
    expect(res.statusCode).toBe(200);
    const body = res.json() as { pipeline: string; sinks: { id: string; window: string; windows: WindowFigures[] }[] };
    expect(body.pipeline).toBe(doc.name);
    expect(body.sinks).toHaveLength(1);
    expect(body.sinks[0]).toMatchObject({ id: 'aggregate', window: '1h' });
    expectKnownFigures(body.sinks[0]!.windows, windowStart);

    const one = (await app.inject({ method: 'GET', url: `/aggregates/${doc.name}?key=${encodeURIComponent('m@1')}` })).json() as typeof body;
    expect(one.sinks[0]!.windows.map((w) => w.key)).toEqual(['m@1']);
    const later = (await app.inject({ method: 'GET', url: `/aggregates/${doc.name}?from=${new Date(windowStart + 2 * HOUR).toISOString()}` })).json() as typeof body;
    expect(later.sinks[0]!.windows).toEqual([]);
    const earlier = (await app.inject({ method: 'GET', url: `/aggregates/${doc.name}?to=${windowStart - 1}` })).json() as typeof body;
    expect(earlier.sinks[0]!.windows).toEqual([]);
    const inside = (await app.inject({ method: 'GET', url: `/aggregates/${doc.name}?from=${windowStart + 10}&to=${windowStart + 20}` })).json() as typeof body;
    expect(inside.sinks[0]!.windows).toHaveLength(2);

    expect((await app.inject({ method: 'GET', url: '/aggregates/no-such-pipeline' })).statusCode).toBe(404);
    expect((await app.inject({ method: 'GET', url: `/aggregates/${doc.name}?from=yesterday` })).statusCode).toBe(422);
  });

  it('GET /aggregates/:pipeline?key= finds that key however many other keys share the window', async () => {
    const stream = testKey('in');
    const doc = aggregatePipeline(stream, { key: 'model_name' });
    const eut = await run(doc);
    const app: FastifyInstance = await buildAdminServer({ engine: eut.engine });
    closers.push(() => app.close());
    const windowStart = Math.floor(Date.now() / HOUR) * HOUR;
    // 150 keys in one window; the route reads at most `limit` (default 100) windows.
    const models = Array.from({ length: 150 }, (_, i) => `model-${String(i).padStart(3, '0')}`);
    const ids = await addEvents(redis, stream, models.map((m, i) => inference(windowStart + i, m, '1', 10, true)));
    await waitFor(() => groupSettledThrough(redis, stream, doc.name, ids.at(-1)!), 'every entry settled');

    for (const model of [models[0]!, models[75]!, models[149]!]) {
      const res = await app.inject({ method: 'GET', url: `/aggregates/${doc.name}?key=${model}` });
      const body = res.json() as { sinks: { windows: WindowFigures[] }[] };
      expect(body.sinks[0]!.windows.map((w) => [w.key, w.count]), `windows of ${model}`).toEqual([[model, 1]]);
    }
  });

  it('a redelivered entry counts once', async () => {
    const stream = testKey('in');
    const doc = aggregatePipeline(stream, {});
    const eut = await run(doc);
    const windowStart = Math.floor(Date.now() / HOUR) * HOUR;
    const ids = await addEvents(redis, stream, [inference(windowStart + 1, 'm', '1', 100, true), inference(windowStart + 2, 'm', '1', 300, false)]);
    await waitFor(() => groupSettledThrough(redis, stream, doc.name, ids[1]!), 'both entries settled');

    await redis.xgroup('SETID', stream, doc.name, '0');
    await waitFor(() => eut.tally(doc.name).sunk === 4, 'both entries sunk a second time');
    await waitFor(() => groupSettledThrough(redis, stream, doc.name, ids[1]!), 'the redelivery settled');

    const [w] = await readAggregates(redis, doc.name, 'aggregate', { window: '1h', measures: MEASURES as never });
    expect(w).toMatchObject({ key: 'm@1', count: 2, latency_ms_sum: 400, latency_ms_avg: 200, success_rate: 0.5, tokens_used_sum: 4 });
  });

  // The update script adds the entry id to the window's seen-set first, then updates the hash.
  // Redis does not undo a script's writes when a later command fails, so a failed update leaves
  // the id marked as seen: the retry returns "duplicate" and the entry is never counted.
  it('an update that fails (the window hash holds another type) is retried and DLQd, not marked as counted', async () => {
    const stream = testKey('in');
    const doc = aggregatePipeline(stream, {}, { retry: { attempts: 3, backoff: 'fixed', delay_ms: 10 } });
    const windowStart = Math.floor(Date.now() / HOUR) * HOUR;
    await redis.set(aggregateKeys(doc.name, 'aggregate').window(windowStart, 'm@1'), 'not a hash');
    const eut = await run(doc);
    const [id] = await addEvents(redis, stream, [inference(windowStart + 1, 'm', '1', 100, true)]);
    // The engine's own record of the outcome (it follows the acknowledgement Redis already shows).
    await waitFor(() => eut.tally(doc.name).total === 1, 'the entry settled');
    expect(eut.tally(doc.name), 'outcome of an entry that could not be counted').toMatchObject({ sunk: 0, dlq: 1 });
    const dlq = await readStream(redis, `${stream}:dlq`);
    expect(dlq.map((e) => [e.fields.source_id, e.fields.stage, e.fields.attempts])).toEqual([[id, 'sink', '3']]);
    expect(dlq[0]!.fields.error).toMatch(/WRONGTYPE/);
  });

  it('an event whose key gives nothing goes to the DLQ; the rest are counted', async () => {
    const stream = testKey('in');
    const doc = aggregatePipeline(stream, { key: 'model_name' });
    await run(doc);
    const windowStart = Math.floor(Date.now() / HOUR) * HOUR;
    const nameless = { ...inference(windowStart, 'm', '1', 5, true), data: { latency_ms: 5 } };
    const ids = await addEvents(redis, stream, [inference(windowStart, 'm', '1', 5, true), nameless]);
    await waitFor(() => groupSettledThrough(redis, stream, doc.name, ids[1]!), 'both settled');
    const dlq = await readStream(redis, `${stream}:dlq`);
    expect(dlq.map((e) => [e.fields.source_id, e.fields.stage])).toEqual([[ids[1], 'sink']]);
    expect(dlq[0]!.fields.error).toMatch(/aggregate key gave/);
    const [w] = await readAggregates(redis, doc.name, 'aggregate', { window: '1h', measures: MEASURES as never });
    expect(w).toMatchObject({ key: 'm', count: 1 });
  });
});

/**
 * The connections (client addresses) that try to take closed-markers (`SET ... NX`), seen through
 * MONITOR, per marker: each replica that evaluates a window's close shows up once it tried.
 * Started before the engines, so that the window can be chosen after they are up.
 */
async function closeContenders(): Promise<(marker: string) => Set<string>> {
  const monitor = await redis.monitor();
  closers.push(async () => monitor.disconnect());
  const byMarker = new Map<string, Set<string>>();
  monitor.on('monitor', (_time: string, args: string[], source: string) => {
    if (args[0]?.toLowerCase() !== 'set' || !args[1]) return;
    const set = byMarker.get(args[1]) ?? new Set<string>();
    set.add(source);
    byMarker.set(args[1], set);
  });
  return (marker) => {
    if (!byMarker.has(marker)) byMarker.set(marker, new Set());
    return byMarker.get(marker)!;
  };
}

describe('aggregate window-close alerts', () => {
  /**
   * The start of the next 1 s window: events stamped in it are processed before it closes (at its
   * end plus the 200 ms grace). Chosen once the engines are up, so a slow start cannot close it early.
   */
  const nextSecond = () => Math.floor(Date.now() / 1000) * 1000 + 1000;
  const ALERT = (stream: string) => [{ when: 'success_rate < 0.9', publish: { stream, event: 'model-health-alert' } }];

  it('when a window closes, the rule is evaluated per key: published where it holds, not where it does not', async () => {
    const stream = testKey('in');
    const alerts = testKey('alerts');
    const doc = aggregatePipeline(stream, { key: 'model_name', window: '1s', grace: '200ms', measures: { success: ['rate'], latency_ms: ['avg'] }, alerts: ALERT(alerts) });
    await run(doc);
    const ws = nextSecond();
    // a-healthy sorts before b-sick: a window's keys are closed in that order, so once b-sick's
    // alert is out, a-healthy's rule has been evaluated too.
    const events = [
      ...Array.from({ length: 10 }, (_, i) => inference(ws + i, 'a-healthy', '1', 100, true)),
      ...Array.from({ length: 10 }, (_, i) => inference(ws + i, 'b-sick', '1', 400, i % 2 === 0)),
    ];
    const ids = await addEvents(redis, stream, events);
    await waitFor(() => groupSettledThrough(redis, stream, doc.name, ids.at(-1)!), 'every entry settled');

    const published = await waitFor(async () => {
      const got = await readPayloads<Alert>(redis, alerts);
      return got.length > 0 && got;
    }, 'the alert of b-sick', 10_000);
    const keys = aggregateKeys(doc.name, 'aggregate');
    expect(await redis.exists(keys.closed(`${ws}|a-healthy`), keys.closed(`${ws}|b-sick`))).toBe(2);
    expect(published).toHaveLength(1);
    expect(published[0]).toMatchObject({
      event: 'model-health-alert',
      source: 'synapse',
      data: {
        pipeline: doc.name, rule: 'success_rate < 0.9', key: 'b-sick', count: 10, success_rate: 0.5, latency_ms_avg: 400,
        window_start: new Date(ws).toISOString(), window_end: new Date(ws + 1000).toISOString(),
      },
    });
    expect(new Date(published[0]!.timestamp).getTime()).toBeGreaterThanOrEqual(ws + 1200);
  });

  it('an event arriving after its window closed still counts, but raises no alert', async () => {
    const stream = testKey('in');
    const alerts = testKey('alerts');
    const doc = aggregatePipeline(stream, { key: 'model_name', window: '1s', grace: '200ms', measures: { success: ['rate'] }, alerts: ALERT(alerts) });
    await run(doc);
    const keys = aggregateKeys(doc.name, 'aggregate');
    const w1 = nextSecond();
    const first = await addEvents(redis, stream, [inference(w1, 'late', '1', 1, true), inference(w1 + 1, 'late', '1', 1, true)]);
    await waitFor(() => groupSettledThrough(redis, stream, doc.name, first[1]!), 'the on-time entries settled');
    await waitFor(async () => (await redis.exists(keys.closed(`${w1}|late`))) === 1, 'the first window closed', 10_000);

    // Late: makes the closed window's rule hold (rate 2/5).
    const late = await addEvents(redis, stream, [0, 1, 2].map((i) => inference(w1 + 10 + i, 'late', '1', 1, false)));
    await waitFor(() => groupSettledThrough(redis, stream, doc.name, late[2]!), 'the late entries settled');
    // A later window whose rule holds: once its alert is out, the first window has been
    // looked at again after the late entries were counted.
    const w2 = nextSecond();
    const last = await addEvents(redis, stream, [inference(w2, 'later', '1', 1, false)]);
    await waitFor(() => groupSettledThrough(redis, stream, doc.name, last[0]!), 'the later entry settled');
    const published = await waitFor(async () => {
      const got = await readPayloads<Alert>(redis, alerts);
      return got.length > 0 && got;
    }, 'the alert of the later window', 10_000);

    expect(published.map((a) => [a.data.key, a.data.window_start])).toEqual([['later', new Date(w2).toISOString()]]);
    const windows = await readAggregates(redis, doc.name, 'aggregate', { window: '1s', measures: { success: ['rate'] } }, { key: 'late' });
    expect(windows).toHaveLength(1);
    expect(windows[0]).toMatchObject({ count: 5, success_rate: 0.4 });
  });

  it('with two engines running the pipeline, a window-close alert is published once', async () => {
    const stream = testKey('in');
    const alerts = testKey('alerts');
    const doc = aggregatePipeline(stream, { key: 'model_name', window: '1s', grace: '200ms', measures: { success: ['rate'] }, alerts: ALERT(alerts) });
    const keys = aggregateKeys(doc.name, 'aggregate');
    const contendersOf = await closeContenders();
    await Promise.all([run(doc, 'replica-a'), run(doc, 'replica-b')]);
    const ws = nextSecond();
    const contenders = contendersOf(keys.closed(`${ws}|sick`));
    const ids = await addEvents(redis, stream, Array.from({ length: 20 }, (_, i) => inference(ws + i, 'sick', '1', 1, i % 2 === 0)));
    await waitFor(() => groupSettledThrough(redis, stream, doc.name, ids.at(-1)!), 'every entry settled');

    await waitFor(async () => contenders.size >= 2 && (await redis.xlen(alerts)) >= 1, 'both replicas to try closing the window, and the alert', 10_000);
    const published = await readPayloads<Alert>(redis, alerts);
    expect(published).toHaveLength(1);
    expect(published[0]!.data).toMatchObject({ key: 'sick', count: 20, success_rate: 0.5 });
  });

  it('with four sink instances of one pipeline racing to close a window, its alert is published once', async () => {
    const pipeline = testKey('agg');
    const alerts = testKey('alerts');
    const config = { key: 'model_name', window: '1s', retention: '7d', grace: '200ms', measures: { success: ['rate'] }, alerts: ALERT(alerts) };
    const contendersOf = await closeContenders();
    const instances: { sink: Sink; real: RealSinkContext; conn: Redis }[] = [];
    for (let i = 0; i < 4; i++) {
      const conn = new Redis(server.url);
      const real = realSinkContext({ redis: conn, redisUrl: server.url, pipeline, sinkId: 'aggregate' });
      const sink = aggregate.create(structuredClone(config) as never, real.ctx);
      await sink.connect!();
      instances.push({ sink, real, conn });
      closers.push(async () => {
        await sink.close();
        await real.close();
        conn.disconnect();
      });
    }
    const ws = nextSecond();
    const contenders = contendersOf(aggregateKeys(pipeline, 'aggregate').closed(`${ws}|shared`));
    const batch: SinkMessage[] = Array.from({ length: 8 }, (_, i) => {
      const event = inference(ws + i, 'shared', '1', 1, i % 2 === 0);
      return { id: `${ws}-${i}`, value: event.data, event, attempt: 1 };
    });
    // Each message written by two instances (a redelivery to another replica): still counted once.
    await Promise.all(instances.map((x, i) => x.sink.write(batch.filter((_, j) => j % 2 === i % 2))));

    await waitFor(async () => contenders.size >= 4 && (await redis.xlen(alerts)) >= 1, 'every instance to try closing the window, and the alert', 10_000);
    const published = await readPayloads<Alert>(redis, alerts);
    expect(published).toHaveLength(1);
    expect(published[0]!.data).toMatchObject({ key: 'shared', count: 8, success_rate: 0.5 });
  });

  it('connect() twice then close() leaves no window-closing timer running', async () => {
    vi.useFakeTimers({ toFake: ['setInterval', 'clearInterval'] });
    const pipeline = testKey('agg');
    const real = realSinkContext({ redis, redisUrl: server.url, pipeline });
    closers.push(() => real.close());
    const sink = aggregate.create({ key: 'k', window: '1s', retention: '7d', grace: '200ms', measures: { v: ['sum'] }, alerts: [] } as never, real.ctx);
    const before = vi.getTimerCount();
    await sink.connect!();
    await sink.connect!();
    await sink.close();
    expect(vi.getTimerCount() - before, 'intervals left running after close()').toBe(0);
  });
});

describe('aggregate sink config is checked at load, errors as FILE:LINE:COL', () => {
  const head = 'name: bad-agg\nsource: { stream: s }\nsink:\n  type: aggregate\n  with:\n';
  const base = { key: '    key: model_name\n', window: '    window: 1m\n', measures: '    measures: { latency_ms: [avg] }\n' };
  const text = (parts: Partial<Record<keyof typeof base | 'more', string>>) =>
    head + (parts.key ?? base.key) + (parts.window ?? base.window) + (parts.measures ?? base.measures) + (parts.more ?? '');

  const cases: { name: string; text: string; needle: string; offset?: number; message: string }[] = [
    {
      name: 'a JSONata syntax error in key points inside the expression',
      text: text({ key: '    key: model_name & & "@" & version\n' }),
      needle: 'model_name & & "@"', offset: 13,
      message: "aggregate sink 'with.key': invalid JSONata: The symbol \"&\" cannot be used as a unary operator",
    },
    {
      name: "a JSONata syntax error in an alert's when points inside the expression",
      text: text({ more: '    alerts:\n      - when: success_rate < 0.9 and and latency_ms_avg > 5\n        publish: { stream: alerts, event: slow }\n' }),
      // JSONata reads the second `and` as a field name; the token after it is the error.
      needle: 'latency_ms_avg > 5',
      message: "aggregate sink 'with.alerts.0.when': invalid JSONata: Syntax error: \"latency_ms_avg\"",
    },
    {
      name: 'a JSONata error in a quoted time points inside the quotes',
      text: text({ more: '    time: "$toMillis(at"\n' }),
      needle: '"$toMillis(at"', offset: 13,
      message: "aggregate sink 'with.time': invalid JSONata: Expected \")\" before end of expression",
    },
    { name: 'no measures', text: head + base.key + base.window, needle: 'key:', message: "aggregate sink 'with' is missing required key 'measures'" },
    { name: 'an unknown measure', text: text({ measures: '    measures: { latency_ms: [avg, p90] }\n' }), needle: 'p90', message: "aggregate sink 'with'.measures.latency_ms.1 must be one of" },
    { name: 'a window that is not a duration', text: text({ window: '    window: 1 minute\n' }), needle: '1 minute', message: "aggregate sink 'with'.window must match pattern" },
    { name: 'retention shorter than the window', text: text({ more: '    retention: 30s\n' }), needle: '30s', message: "aggregate sink 'with.retention': retention must be at least one window" },
    { name: 'an unknown key', text: text({ more: '    group_by: model_name\n' }), needle: 'group_by', message: "unknown key 'group_by' in aggregate sink 'with'" },
    {
      name: 'an alert without publish',
      text: text({ more: '    alerts:\n      - when: count > 5\n' }),
      needle: 'when: count', message: "aggregate sink 'with'.alerts.0 is missing required key 'publish'",
    },
  ];
  it.each(cases)('$name', async (c) => {
    const diagnostics = await diagnosticsOf(c.text);
    expect(diagnostics.map((d) => d.message)).toHaveLength(1);
    expect(diagnostics[0]!.message).toContain(c.message);
    expect({ line: diagnostics[0]!.line, col: diagnostics[0]!.col }).toEqual(positionOf(c.text, c.needle, c.offset ?? 0));
  });
});
