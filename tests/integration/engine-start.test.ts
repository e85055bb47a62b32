import { hostname } from 'node:os';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { randomUUID } from 'node:crypto';
import { Queue } from 'bullmq';
import type { Redis } from 'ioredis';
import { pino, type Logger } from 'pino';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { buildAdminServer } from '../../engine/admin/server.ts';
import { defaultConsumerName, Engine } from '../../engine/runtime/engine.ts';
import { redisOptionsFromUrl } from '../../engine/runtime/redis-client.ts';
import { metricValue } from '../helpers/engine.ts';
import { FIXTURE_SCHEMAS, testKey } from '../helpers/pipelines.ts';
import { startTestRedis, waitFor, type TestRedis } from '../helpers/redis.ts';

// What an engine is before and while it starts, and what its start leaves in place: the log
// lines that say so, its named connections, each group ready, a rejected file listed and logged,
// a schedule pipeline started (or, with Redis away, started once Redis comes).

let server: TestRedis;
let redis: Redis;
const temp: string[] = [];
const engines: Engine[] = [];
const closers: (() => Promise<unknown>)[] = [];

beforeAll(async () => {
  // A server of its own: a test holds its writes (CLIENT PAUSE).
  server = await startTestRedis({ own: true });
  redis = server.client();
});
afterEach(async () => {
  await Promise.all(closers.splice(0).map((c) => c().catch(() => undefined)));
  await Promise.all(engines.splice(0).map((e) => e.stop()));
});
afterAll(async () => {
  await Promise.all(temp.map((d) => rm(d, { recursive: true, force: true })));
  redis?.disconnect();
  await server?.close();
});

type Line = { level: number; msg: string } & Record<string, unknown>;

/** A directory holding `files` (name → text), and an engine over it logging into `lines`. */
async function engineOver(files: Record<string, string>, redisUrl = server.url): Promise<{ engine: Engine; lines: Line[]; logger: Logger; dir: string }> {
  const dir = await mkdtemp(join(tmpdir(), 'synapse-start-'));
  temp.push(dir);
  for (const [name, text] of Object.entries(files)) await writeFile(join(dir, name), text);
  const lines: Line[] = [];
  const logger = pino({ level: 'info' }, { write: (line: string) => void lines.push(JSON.parse(line) as Line) });
  const engine = new Engine({ redisUrl, pipelinesDir: dir, schemasDir: FIXTURE_SCHEMAS, logger, consumer: `start-${randomUUID().slice(0, 8)}` });
  engines.push(engine);
  return { engine, lines, logger, dir };
}

const streamPipeline = (name: string, stream: string, source = '') =>
  `name: ${name}\nsource:\n  stream: ${stream}\n  start: $\n  block_ms: 100\n${source}sink: { type: publish, with: { stream: ${stream}-out } }\n`;
const schedulePipeline = (name: string) =>
  `name: ${name}\nsource: { schedule: 1s }\nsink: { type: publish, with: { stream: ${testKey('ticks')} } }\n`;

function scheduleQueue(pipeline: string): Queue {
  const q = new Queue(`synapse-schedule-${pipeline}`, { connection: redisOptionsFromUrl(server.url) });
  closers.push(() => q.close());
  return q;
}

describe('an engine before its start', () => {
  it('is named after SYNAPSE_CONSUMER, or else after its host and process', () => {
    expect(defaultConsumerName({ SYNAPSE_CONSUMER: 'worker-7' })).toBe('worker-7');
    expect(defaultConsumerName({})).toBe(`${hostname()}-${process.pid}`);
  });

  it('has no connection (asking for it says so): its Redis status says it is not connected', async () => {
    const { engine } = await engineOver({});
    expect(() => engine.connection).toThrow('engine not started');
    expect(engine.redisStatus).toBe('not-connected');
    expect(engine.started).toBe(false);
  });
});

describe('an engine starting', () => {
  it('logs where it connects and what it started; names its connections; each group exists when start returns; a rejected .yml file is logged and listed under its name', async () => {
    const alpha = `alpha-${randomUUID().slice(0, 8)}`;
    const stream = testKey('in');
    const { engine, lines } = await engineOver({
      [`${alpha}.yaml`]: streamPipeline(alpha, stream),
      'broken.yml': 'name: broken\nsource: { stream: s }\nsink: { type: nosuch }\n',
    });
    await engine.start();
    // The group is there when start returns: an event written now is read.
    const groups = await redis.xinfo('GROUPS', stream) as unknown[][];
    expect(groups.map((g) => g[1])).toEqual([alpha]);

    expect(lines.find((l) => l.msg === 'connecting to redis')).toMatchObject({ redis: server.url });
    expect(lines.find((l) => l.msg === 'engine started')).toMatchObject({ consumer: engine.consumerName, pipelines: [alpha], redis: server.url });
    const rejected = lines.filter((l) => String(l.msg).startsWith('pipeline rejected: '));
    expect(rejected).toEqual([expect.objectContaining({ file: join(engineDir(engine), 'broken.yml'), msg: expect.stringContaining('nosuch') })]);
    expect([...engine.pipelineStates()]).toEqual([
      { pipeline: alpha, state: 'running', loadError: false },
      { pipeline: 'broken', state: 'invalid', loadError: true },
    ]);

    // The shared connection and each pipeline's blocking one are named in CLIENT LIST.
    const names = async () => String(await redis.client('LIST')).split('\n').map((l) => /name=(\S*)/.exec(l)?.[1]);
    await waitFor(async () => (await names()).includes(`synapse:${alpha}`), `a connection named synapse:${alpha}`);
    expect(await names()).toContain('synapse');
    // A blocking read is never pipelined with other commands.
    expect((engine.handles.get(alpha)!.blocking as Redis).options.enableAutoPipelining).toBe(false);
  });

  it("a pipeline's consumer logs with the pipeline's name", async () => {
    const beta = `beta-${randomUUID().slice(0, 8)}`;
    const stream = testKey('in');
    // An entry another consumer read and left pending: the engine's consumer reclaims it.
    await redis.xgroup('CREATE', stream, beta, '0', 'MKSTREAM');
    await redis.xadd(stream, '*', 'payload', JSON.stringify({ event: 'x' }));
    await redis.xreadgroup('GROUP', beta, 'gone', 'COUNT', 1, 'STREAMS', stream, '>');
    await new Promise((r) => setTimeout(r, 1_100));
    const { engine, lines } = await engineOver({ [`${beta}.yaml`]: streamPipeline(beta, stream, '  claim_idle_ms: 1000\n') });
    await engine.start();
    expect(engine.rejected.size).toBe(0);
    const line = await waitFor(() => lines.find((l) => l.msg === 'reclaimed entries left pending by another consumer'), 'the reclaim logged');
    expect(line).toMatchObject({ pipeline: beta, stream, count: 1 });
  });

  it('a schedule pipeline: its job scheduler is in Redis and it is up when start returns; the state gauges list it running', async () => {
    const name = `sched-${randomUUID().slice(0, 8)}`;
    const { engine, logger } = await engineOver({ [`${name}.yaml`]: schedulePipeline(name) });
    const began = performance.now();
    await engine.start();
    // With Redis there, the start waits for the schedule, not for the 5 s it gives a Redis away.
    expect(performance.now() - began).toBeLessThan(5_000);
    // Read before anything else is awaited: up was set before start returned.
    const up = await engine.metrics.up.get();
    expect(up.values.find((v) => v.labels.pipeline === name)?.value).toBe(1);
    expect(await scheduleQueue(name).getJobSchedulersCount()).toBe(1);
    const app = await buildAdminServer({ engine, logger });
    closers.push(() => app.close());
    const text = (await app.inject({ method: 'GET', url: '/metrics' })).body;
    expect(metricValue(text, 'synapse_pipeline_up', { pipeline: name })).toBe(1);
    expect(metricValue(text, 'synapse_pipeline_state', { pipeline: name, state: 'running' })).toBe(1);
  });
});

/** The pipelines directory an engine was given. */
function engineDir(engine: Engine): string {
  return engine.options.pipelinesDir;
}

describe('an engine starting with Redis away', () => {
  it('finishes its start after its time limit, and a schedule pipeline starts once Redis is there', async () => {
    const own = await startTestRedis({ own: true });
    closers.push(() => own.close());
    const name = `away-${randomUUID().slice(0, 8)}`;
    const { engine } = await engineOver({ [`${name}.yaml`]: schedulePipeline(name) }, own.url);
    await own.owned!.stop();
    const started = engine.start().then(() => 'started');
    const hung = new Promise((r) => setTimeout(() => r('still starting after 20 s'), 20_000).unref());
    expect(await Promise.race([started, hung])).toBe('started');
    await own.owned!.restart();
    const q = new Queue(`synapse-schedule-${name}`, { connection: redisOptionsFromUrl(own.url) });
    closers.unshift(() => q.close());
    await waitFor(async () => (await q.getJobSchedulersCount()) === 1, 'the job scheduler written once Redis is back', 20_000);
  }, 40_000);
});
