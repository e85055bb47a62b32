import { rm } from 'node:fs/promises';
import { join } from 'node:path';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { Queue } from 'bullmq';
import type { Redis } from 'ioredis';
import { redisOptionsFromUrl } from '../../../engine/runtime/redis-client.ts';
import { diagnosticsOf, positionOf } from '../../helpers/config-errors.ts';
import { startEngine, type EngineUnderTest } from '../../helpers/in-process-engine.ts';
import { pipelineDirs, testKey, type PipelineDoc } from '../../helpers/pipelines.ts';
import { startTestRedis, waitFor, type TestRedis } from '../../helpers/redis.ts';
import { readPayloads, readStream } from '../../helpers/streams.ts';

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

function schedulePipeline(out: string, extra: Record<string, unknown> = {}): PipelineDoc {
  return {
    name: `tick-${out.slice(5, 13)}`,
    source: { schedule: '1s' },
    transform: '{ "event": "report-due", "tick": event, "at": timestamp }',
    sink: { type: 'publish', with: { stream: out } },
    retry: { attempts: 2, backoff: 'fixed', delay_ms: 10 },
    ...extra,
  };
}

async function run(dir: string, consumer?: string): Promise<EngineUnderTest> {
  const eut = await startEngine({ redisUrl: server.url, pipelines: dir, consumer });
  engines.push(eut);
  return eut;
}

interface Tick {
  event: string;
  tick: string;
  at: string;
}

describe('schedule source on a real Redis (BullMQ job scheduler)', () => {
  it('a `schedule: 1s` pipeline fires, running its transform and sink on a {event: "tick", timestamp} event', async () => {
    const out = testKey('ticks');
    const doc = schedulePipeline(out);
    const eut = await run(await dirs.make([doc]));
    const ticks = await waitFor(async () => {
      const got = await readPayloads<Tick>(redis, out);
      return got.length >= 2 && got;
    }, 'two ticks', 10_000);
    for (const t of ticks) {
      expect(t).toEqual({ event: 'report-due', tick: 'tick', at: expect.any(String) });
      expect(new Date(t.at).toISOString()).toBe(t.at);
    }
    const times = ticks.map((t) => Date.parse(t.at));
    expect(times).toEqual([...times].sort((a, b) => a - b));
    expect(new Set(times).size).toBe(times.length);
    expect(eut.tally(doc.name).sunk).toBeGreaterThanOrEqual(2);
  });

  /** The BullMQ queue of a schedule pipeline, closed after the test. */
  function scheduleQueue(pipeline: string): Queue {
    const q = new Queue(`synapse-schedule-${pipeline}`, { connection: redisOptionsFromUrl(server.url) });
    closers.push(() => q.close());
    return q;
  }

  it('two engines running the same schedule run each tick once', async () => {
    const out = testKey('ticks');
    const doc = schedulePipeline(out);
    const dir = await dirs.make([doc]);
    await Promise.all([run(dir, 'replica-a'), run(dir, 'replica-b')]);
    const q = scheduleQueue(doc.name);
    // Four ticks handled (BullMQ counts each job once, whichever replica's worker took it).
    await waitFor(async () => (await q.getCompletedCount()) >= 4, 'four ticks handled', 15_000);
    const [a, b] = engines;
    const handled = await q.getCompletedCount();
    await waitFor(async () => a!.tally(doc.name).sunk + b!.tally(doc.name).sunk >= handled, 'their outcomes settled');
    const ticks = await readPayloads<Tick>(redis, out);
    // Each tick reached the sink once: as many outputs as ticks, none twice.
    expect(ticks.length).toBe(a!.tally(doc.name).sunk + b!.tally(doc.name).sunk);
    expect(new Set(ticks.map((t) => t.at)).size).toBe(ticks.length);
    expect(ticks.length).toBeGreaterThanOrEqual(4);
  });

  it('a paused schedule pipeline skips its ticks; resumed, it runs them again', async () => {
    const out = testKey('ticks');
    const doc = schedulePipeline(out);
    const eut = await run(await dirs.make([doc]));
    const q = scheduleQueue(doc.name);
    await waitFor(async () => (await redis.xlen(out)) >= 1, 'a first tick');
    expect(eut.engine.pause(doc.name)).toBe(true);
    const handledAtPause = await q.getCompletedCount();
    const outAtPause = await redis.xlen(out);
    // Two more ticks come and go while paused; neither reaches the sink.
    await waitFor(async () => (await q.getCompletedCount()) >= handledAtPause + 2, 'two ticks while paused', 15_000);
    expect(await redis.xlen(out)).toBeLessThanOrEqual(outAtPause + 1); // at most the tick in hand at the pause
    const outPaused = await redis.xlen(out);
    expect(eut.engine.resume(doc.name)).toBe(true);
    await waitFor(async () => (await redis.xlen(out)) > outPaused, 'a tick after resuming', 15_000);
  });

  it('a tick whose sink keeps failing is retried, then goes to schedule:<pipeline>:dlq at stage sink', async () => {
    const out = testKey('ticks');
    await redis.set(out, 'a string, not a stream');
    const doc = schedulePipeline(out);
    await run(await dirs.make([doc]));
    const [entry] = await waitFor(async () => {
      const got = await readStream(redis, `schedule:${doc.name}:dlq`);
      return got.length > 0 && got;
    }, 'a DLQ entry', 10_000);
    expect(entry!.fields).toMatchObject({ stage: 'sink', pipeline: doc.name, source_stream: `schedule:${doc.name}`, attempts: '2' });
    expect(entry!.fields.error).toMatch(/WRONGTYPE/);
    expect(JSON.parse(entry!.fields.payload!)).toEqual({ event: 'tick', timestamp: expect.any(String) });
  });

  it('a `dlq:` key names where failed ticks go', async () => {
    const out = testKey('ticks');
    const dlq = testKey('dlq');
    await redis.set(out, 'a string, not a stream');
    const doc = schedulePipeline(out, { dlq });
    await run(await dirs.make([doc]));
    await waitFor(async () => (await redis.xlen(dlq)) > 0, 'a DLQ entry', 10_000);
    expect(await redis.exists(`schedule:${doc.name}:dlq`)).toBe(0);
  });

  it('deleting the pipeline file removes its job scheduler', async () => {
    const out = testKey('ticks');
    const doc = schedulePipeline(out);
    const dir = await dirs.make([doc]);
    const eut = await run(dir);
    const q = scheduleQueue(doc.name);
    await waitFor(async () => (await q.getJobSchedulersCount()) === 1, 'the job scheduler');
    const file = join(dir, `${doc.name}.yaml`);
    await rm(file);
    expect(await eut.engine.reloadFile(file)).toMatchObject({ ok: true, change: 'removed', name: doc.name });
    expect(await q.getJobSchedulersCount()).toBe(0);
  });
});

describe('schedule source config is checked at load, errors as FILE:LINE:COL', () => {
  const sink = 'sink: { type: publish, with: { stream: out } }\n';
  const cases: { name: string; text: string; needle: string; offset?: number; message: string }[] = [
    { name: 'an interval that is not a duration', text: `name: t\nsource: { schedule: often }\n${sink}`, needle: 'often', message: 'must match pattern' },
    { name: 'a stream-only key beside schedule:', text: `name: t\nsource:\n  schedule: 1s\n  group: g\n${sink}`, needle: 'group', message: "'source.group' applies to stream sources, not to schedule:" },
    { name: 'both stream: and schedule:', text: `name: t\nsource:\n  stream: s\n  schedule: 1s\n${sink}`, needle: 'schedule', message: 'source has both stream: and schedule:' },
    { name: 'validate: on a schedule', text: `name: t\nsource: { schedule: 1s }\nvalidate: { schema: https://synapse.test/schemas/order-event.json }\n${sink}`, needle: '{ schema', message: 'a schedule source produces tick events; validate: does not apply' },
  ];
  it.each(cases)('$name', async (c) => {
    const diagnostics = await diagnosticsOf(c.text);
    expect(diagnostics.map((d) => d.message)).toHaveLength(1);
    expect(diagnostics[0]!.message).toContain(c.message);
    expect({ line: diagnostics[0]!.line, col: diagnostics[0]!.col }).toEqual(positionOf(c.text, c.needle, c.offset ?? 0));
  });
});
