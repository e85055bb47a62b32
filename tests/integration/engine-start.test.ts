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
import { FIXTURE_SCHEMAS, REPO_ROOT, testKey } from '../helpers/pipelines.ts';
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

/** Starts `engine` with the sink fixtures of tests/fixtures/plugins-sticky (`sticky`, `held`). */
async function startWithFixtureSinks(engine: Engine): Promise<void> {
  process.env.SYNAPSE_PLUGINS = join(REPO_ROOT, 'tests', 'fixtures', 'plugins-sticky');
  try {
    await engine.start();
  } finally {
    delete process.env.SYNAPSE_PLUGINS;
  }
}

/** What the `held` sink fixture shows a test: its connect waits for `hold`. */
type HeldSinks = { hold?: Promise<void>; connecting: number; closed: number };

/**
 * Reloads a new pipeline `name` (in `dir`) whose `held` sink holds its connect, and answers once
 * the reload waits there: `reload` is the reload's answer, `release()` lets the connect go on.
 */
async function heldReload(engine: Engine, dir: string, name: string): Promise<{ held: HeldSinks; reload: Promise<unknown>; release: () => void }> {
  const held = (globalThis as { synapseHeldSink?: HeldSinks }).synapseHeldSink!;
  let letGo!: () => void;
  held.hold = new Promise<void>((r) => (letGo = r));
  const connecting = held.connecting;
  const file = join(dir, `${name}.yaml`);
  await writeFile(file, `name: ${name}\nsource: { stream: ${testKey('in')}, block_ms: 100 }\nsink: { type: held }\n`);
  const reload = engine.reloadFile(file);
  await waitFor(() => held.connecting === connecting + 1, "the reload's sink connecting");
  const release = () => {
    held.hold = undefined;
    letGo();
  };
  return { held, reload, release };
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
    expect(() => engine.loadContext).toThrow('engine not started');
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

describe('an engine running, reloading and stopping', () => {
  const up = async (engine: Engine, name: string) => (await engine.metrics.up.get()).values.find((v) => v.labels.pipeline === name)?.value;
  const clientNames = async () => String(await redis.client('LIST')).split('\n').map((l) => /name=(\S*)/.exec(l)?.[1]);
  const clientIds = async () => new Set(String(await redis.client('LIST')).split('\n').flatMap((l) => /^id=(\d+)/.exec(l)?.[1] ?? []));

  it('pauses and resumes a running pipeline (state and gauge); an unknown or disabled one cannot be', async () => {
    const name = `pr-${randomUUID().slice(0, 8)}`;
    const { engine } = await engineOver({
      [`${name}.yaml`]: streamPipeline(name, testKey('in')),
      'off.yaml': `${streamPipeline('off', testKey('in'))}enabled: false\n`,
    });
    await engine.start();
    expect([engine.pause('nosuch'), engine.resume('nosuch')]).toEqual([false, false]);
    expect([engine.pause('off'), engine.resume('off')]).toEqual([false, false]);
    expect(engine.handles.get('off')!.status).toBe('disabled');

    expect(engine.pause(name)).toBe(true);
    expect(engine.handles.get(name)!.status).toBe('paused');
    expect(await up(engine, name)).toBe(0);
    expect(engine.resume(name)).toBe(true);
    expect(engine.handles.get(name)!.status).toBe('running');
    expect(await up(engine, name)).toBe(1);
  });

  it('a reload onto another stream restarts a paused pipeline paused, keeping its last DLQ entry; one on the same stream swaps in place', async () => {
    const name = `mv-${randomUUID().slice(0, 8)}`;
    const [first, second] = [testKey('in'), testKey('in')];
    const { engine, dir } = await engineOver({ [`${name}.yaml`]: streamPipeline(name, first) });
    const file = join(dir, `${name}.yaml`);
    await engine.start();
    await redis.xadd(first, '*', 'payload', '{not json');
    const dead = await waitFor(() => engine.handles.get(name)!.lastDlq, 'the entry dead-lettered');
    engine.pause(name);

    await writeFile(file, streamPipeline(name, second));
    expect((await engine.reloadFile(file)).ok).toBe(true);
    const moved = engine.handles.get(name)!;
    expect(moved.pipeline.source).toMatchObject({ stream: second });
    expect(moved).toMatchObject({ status: 'paused', generation: 2, lastDlq: dead });
    expect(await up(engine, name)).toBe(0);
    // Its group on the new stream (start: $) exists when the reload answers, though the pipeline
    // reads nothing while paused: an event written during the pause is handled on resume.
    expect((await redis.xinfo('GROUPS', second) as unknown[][]).map((g) => g[1])).toEqual([name]);
    await redis.xadd(second, '*', 'payload', JSON.stringify({ event: 'moved' }));
    engine.resume(name);
    await waitFor(async () => (await redis.xlen(`${second}-out`)) === 1, 'the event on the new stream delivered');

    const loadedAt = moved.loadedAt;
    await new Promise((r) => setTimeout(r, 5));
    await writeFile(file, streamPipeline(name, second).replace(`${second}-out`, `${second}-other`));
    expect((await engine.reloadFile(file)).ok).toBe(true);
    // The same handle, its consumer kept: a swap at the next batch boundary.
    expect(engine.handles.get(name)).toBe(moved);
    expect(moved).toMatchObject({ generation: 3, status: 'running', lastDlq: dead });
    expect(moved.loadedAt > loadedAt).toBe(true);
    await redis.xadd(second, '*', 'payload', JSON.stringify({ event: 'swapped' }));
    await waitFor(async () => (await redis.xlen(`${second}-other`)) === 1, 'the event delivered by the swapped-in version');
  });

  it('a renamed pipeline on the same stream and group restarts under its new name; removing an unknown pipeline does nothing', async () => {
    const [name, renamed] = [`old-${randomUUID().slice(0, 8)}`, `new-${randomUUID().slice(0, 8)}`];
    const stream = testKey('in');
    const group = `g-${randomUUID().slice(0, 8)}`;
    const { engine, dir } = await engineOver({ 'p.yaml': streamPipeline(name, stream, `  group: ${group}\n`) });
    await engine.start();
    await writeFile(join(dir, 'p.yaml'), streamPipeline(renamed, stream, `  group: ${group}\n`));
    expect(await engine.reloadFile(join(dir, 'p.yaml'))).toMatchObject({ ok: true, name: renamed });
    expect([...engine.handles.keys()]).toEqual([renamed]);
    expect(engine.handles.get(renamed)).toMatchObject({ generation: 2, status: 'running' });
    await waitFor(async () => (await clientNames()).includes(`synapse:${renamed}`), `a connection named synapse:${renamed}`);
    expect(await up(engine, name)).toBe(0);
    await expect(engine.removePipeline('nosuch')).resolves.toBeUndefined();
  });

  it('a reload adds a disabled pipeline and a schedule pipeline; a deleted schedule pipeline is down and its job scheduler gone', async () => {
    const sched = `sch-${randomUUID().slice(0, 8)}`;
    const { engine, dir } = await engineOver({});
    await engine.start();
    await writeFile(join(dir, 'off.yaml'), `${streamPipeline('off', testKey('in'))}enabled: false\n`);
    expect(await engine.reloadFile(join(dir, 'off.yaml'))).toMatchObject({ ok: true, name: 'off' });
    expect(engine.handles.get('off')!.status).toBe('disabled');
    await writeFile(join(dir, `${sched}.yaml`), schedulePipeline(sched));
    expect(await engine.reloadFile(join(dir, `${sched}.yaml`))).toMatchObject({ ok: true, name: sched });
    const q = scheduleQueue(sched);
    await waitFor(async () => (await q.getJobSchedulersCount()) === 1, 'the job scheduler written');
    await waitFor(async () => (await up(engine, sched)) === 1, 'the schedule pipeline up');
    // Paused and resumed, its gauge follows (it has no consumer to set it).
    expect(engine.pause(sched)).toBe(true);
    expect(await up(engine, sched)).toBe(0);
    expect(engine.resume(sched)).toBe(true);
    expect(await up(engine, sched)).toBe(1);

    await rm(join(dir, `${sched}.yaml`));
    await engine.reloadFile(join(dir, `${sched}.yaml`));
    expect(engine.handles.has(sched)).toBe(false);
    expect(await up(engine, sched)).toBe(0);
    expect(await q.getJobSchedulersCount()).toBe(0);
  });

  it('a reload that moves a paused pipeline waits for its new group; a resume meanwhile stands', async () => {
    const name = `rs-${randomUUID().slice(0, 8)}`;
    const [first, second] = [testKey('in'), testKey('in')];
    const { engine, dir } = await engineOver({ [`${name}.yaml`]: streamPipeline(name, first) });
    const file = join(dir, `${name}.yaml`);
    await engine.start();
    engine.pause(name);
    // XGROUP refused for now: the new group cannot be created yet.
    await redis.call('ACL', 'SETUSER', 'default', '-xgroup');
    closers.push(() => redis.call('ACL', 'SETUSER', 'default', '+@all'));
    await writeFile(file, streamPipeline(name, second));
    let answered = false;
    const reload = engine.reloadFile(file).finally(() => (answered = true));
    // The new version is in place, paused as the old one was; the reload waits for its group.
    const moved = await waitFor(() => {
      const h = engine.handles.get(name);
      return h?.pipeline.source.kind === 'stream' && h.pipeline.source.stream === second && h;
    }, 'the moved pipeline in place');
    expect(moved.status).toBe('paused');
    expect(engine.resume(name)).toBe(true);
    await new Promise((r) => setTimeout(r, 300));
    expect(answered).toBe(false);
    await redis.call('ACL', 'SETUSER', 'default', '+xgroup');
    expect((await reload).ok).toBe(true);
    expect(engine.handles.get(name)!.status).toBe('running');
    expect((await redis.xinfo('GROUPS', second) as unknown[][]).map((g) => g[1])).toEqual([name]);
  });

  it('a reload waiting for a new group with Redis away ends when the engine stops', async () => {
    const own = await startTestRedis({ own: true });
    closers.push(() => own.close());
    const { engine, dir } = await engineOver({}, own.url);
    await engine.start();
    await own.owned!.stop();
    const file = join(dir, 'later.yaml');
    await writeFile(file, streamPipeline('later', testKey('in')));
    const reload = engine.reloadFile(file).then(() => 'reloaded');
    // Its consumer has started: the reload waits for its group (at most 5 s with Redis away).
    await waitFor(() => engine.handles.get('later')?.consumer, 'the consumer started');
    const stopped = engine.stop(1_000);
    const waiting = new Promise((r) => setTimeout(() => r('still waiting after 3 s'), 3_000).unref());
    expect(await Promise.race([reload, waiting])).toBe('reloaded');
    await stopped;
  });

  it('a sink whose close fails is logged at warn, and neither removing its pipeline nor stopping the engine stops there', async () => {
    const name = `st-${randomUUID().slice(0, 8)}`;
    const other = `st2-${randomUUID().slice(0, 8)}`;
    const sticky = (n: string) => `name: ${n}\nsource: { stream: ${testKey('in')}, block_ms: 100 }\nsink: { type: sticky }\n`;
    const { engine, lines, dir } = await engineOver({ [`${name}.yaml`]: sticky(name), [`${other}.yaml`]: sticky(other) });
    await startWithFixtureSinks(engine);
    expect(engine.rejected.size).toBe(0);
    await waitFor(async () => (await clientNames()).includes(`synapse:${name}`), `a connection named synapse:${name}`);

    // Its file deleted: the pipeline is stopped and forgotten, its reading connection closed.
    await rm(join(dir, `${name}.yaml`));
    await engine.reloadFile(join(dir, `${name}.yaml`));
    expect(engine.handles.has(name)).toBe(false);
    expect(await up(engine, name)).toBe(0);
    await waitFor(async () => !(await clientNames()).includes(`synapse:${name}`), `the connection synapse:${name} closed`);
    expect(lines.filter((l) => l.msg === 'sink close failed')).toEqual([expect.objectContaining({ level: 40, err: 'sticky will not close' })]);

    // stop() is one stop however often it is called.
    const stopped = engine.stop();
    expect(engine.stop()).toBe(stopped);
    expect(engine.stopping).toBe(true);
    await stopped;
    expect(lines.filter((l) => l.msg === 'sink close failed')).toHaveLength(2);
    expect(lines.filter((l) => l.msg === 'engine stopped')).toHaveLength(1);
    expect(lines.at(-1)!.msg).toBe('engine stopped');
    // A stopped engine reloads nothing.
    await writeFile(join(dir, 'late.yaml'), sticky('late'));
    expect(await engine.reloadFile(join(dir, 'late.yaml'))).toEqual({ ok: false, diagnostics: [] });
    expect(engine.handles.has('late')).toBe(false);
  });

  it('a reload in flight when the engine stops starts no consumer: the sinks it made are closed', async () => {
    const name = `held-${randomUUID().slice(0, 8)}`;
    const { engine, dir } = await engineOver({});
    await startWithFixtureSinks(engine);
    const { held, reload, release } = await heldReload(engine, dir, name);
    const closed = held.closed;
    const stopped = engine.stop();
    release();
    await reload;
    await stopped;
    expect(engine.handles.get(name)?.consumer).toBeUndefined();
    expect(engine.handles.get(name)?.sinks.size).toBe(0);
    expect(held.closed).toBe(closed + 1);
    expect(await clientNames()).not.toContain(`synapse:${name}`);
  });

  it('one BullMQ queue (one connection) per queue name, however many events go to it', async () => {
    const name = `q-${randomUUID().slice(0, 8)}`;
    const stream = testKey('in');
    const queue = `jobs-${randomUUID().slice(0, 8)}`;
    const { engine } = await engineOver({
      [`${name}.yaml`]: `name: ${name}\nsource: { stream: ${stream}, start: $, block_ms: 100 }\nsink: { type: queue, with: { queue: ${queue}, job: j } }\n`,
    });
    const q = new Queue(queue, { connection: redisOptionsFromUrl(server.url) });
    closers.push(() => q.close());
    await q.waitUntilReady();
    const before = await clientIds();
    await engine.start();
    const sunk = (n: number) => waitFor(() => engine.handles.get(name)!.counters.sunk === n, `${n} events sunk`);
    await redis.xadd(stream, '*', 'payload', JSON.stringify({ event: 'a' }));
    await sunk(1);
    const clients = (await clientNames()).length;
    for (let i = 0; i < 4; i++) {
      await redis.xadd(stream, '*', 'payload', JSON.stringify({ event: `b${i}` }));
      await sunk(2 + i);
    }
    expect(await q.getJobCountByTypes('waiting')).toBe(5);
    expect((await clientNames()).length).toBe(clients);
    // Its stop closes every connection it opened, the queue's among them.
    const opened = [...(await clientIds())].filter((id) => !before.has(id));
    expect(opened.length).toBeGreaterThanOrEqual(3); // shared, blocking, the queue's
    await engine.stop();
    await waitFor(async () => {
      const open = await clientIds();
      return opened.every((id) => !open.has(id));
    }, 'every connection of the engine closed');
  });

  it('a stop with Redis away and a command waiting on the connection ends within its limit; the connection never comes back', async () => {
    const own = await startTestRedis({ own: true });
    closers.push(() => own.close());
    const { engine, lines } = await engineOver({}, own.url);
    await engine.start();
    await own.owned!.stop();
    await waitFor(() => engine.redisStatus !== 'ready', 'the engine seeing Redis away');
    // Queued until Redis is back: a QUIT sent now would wait behind it for good.
    // INFO is one of the commands ioredis never auto-pipelines: it is queued at once, not a turn
    // of the event loop later (a QUIT sent before it would find nothing queued and close at once).
    const queued = engine.connection.info('server').then(() => 'answered', () => 'refused');
    const stopped = engine.stop(1_000).then(() => 'stopped');
    const late = new Promise((r) => setTimeout(() => r('still stopping after 5 s'), 5_000).unref());
    expect(await Promise.race([stopped, late])).toBe('stopped');
    expect(lines.at(-1)!.msg).toBe('engine stopped');
    // Closed for good: it does not connect again once Redis is back (its retries come at most
    // 5 s apart), and the command it held is never answered. (ioredis, cut while reconnecting,
    // neither refuses that command nor says `end`: the status stays `reconnecting`, with no retry.)
    const reconnected = new Promise((r) => engine.connection.once('ready', () => r('reconnected')));
    await own.owned!.restart();
    const quiet = new Promise((r) => setTimeout(() => r('not reconnected'), 5_500).unref());
    expect(await Promise.race([reconnected, queued, quiet])).toMatch(/^(not reconnected|refused)$/);
  });

  it('a stop that times out closes the connection all the same', async () => {
    const name = `held-${randomUUID().slice(0, 8)}`;
    const { engine, dir, lines } = await engineOver({});
    await startWithFixtureSinks(engine);
    const { reload, release } = await heldReload(engine, dir, name);
    try {
      // The stop waits for the reload, which its sink holds past the stop's limit.
      await engine.stop(300);
      expect(lines.filter((l) => l.msg.startsWith('shutdown timed out'))).toEqual([expect.objectContaining({ level: 40, timeoutMs: 300 })]);
      await waitFor(() => engine.redisStatus === 'end', 'the connection closed');
    } finally {
      release();
      await reload;
    }
  });
});
