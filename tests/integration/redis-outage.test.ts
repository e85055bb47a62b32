import { randomUUID } from 'node:crypto';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { Redis } from 'ioredis';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { BROADCAST_CHANNEL } from '../../engine/runtime/sink-context.ts';
import { freePort, startRedisServer, type OwnedRedis } from '../../engine/runtime/redis-server.ts';
import { killEngines, spawnEngine, stopCleanly } from '../helpers/engine-process.ts';
import { FIXTURE_SCHEMAS, orderEvent, ordersPipeline, pipelineDirs, testKey } from '../helpers/pipelines.ts';
import { startTestRedis, waitFor, type TestRedis } from '../helpers/redis.ts';
import { addEvents, pendingSummary, readPayloads } from '../helpers/streams.ts';

let server: TestRedis;
let redis: Redis;
const dirs = pipelineDirs();

beforeAll(async () => {
  // A server of the suite's own, persistent, so the test can stop and restart it.
  server = await startTestRedis({ persistent: true, own: true });
  if (!server.owned) throw new Error('the outage test needs a redis-server it owns (redis-server on PATH)');
  redis = server.client();
});
afterEach(() => killEngines());
afterAll(async () => {
  await dirs.cleanup();
  await server?.close();
});

function range(from: number, to: number): number[] {
  return Array.from({ length: to - from }, (_, i) => from + i);
}

describe('Redis outage', () => {
  it('Redis stopped for a few seconds mid-stream: the engine stays up, resumes, loses nothing and prints nothing but its log', async () => {
    const N = 6000;
    const stream = testKey('in');
    const out = testKey('out');
    const doc = ordersPipeline({ stream, out, source: { batch: 50 } });
    const engine = await spawnEngine({
      pipelines: await dirs.make([doc]), schemas: FIXTURE_SCHEMAS, redisUrl: server.url, consumer: `it-outage-${randomUUID().slice(0, 8)}`,
    });

    await addEvents(redis, stream, range(0, N / 2).map((i) => orderEvent(i)));
    await waitFor(async () => (await redis.xlen(out)) >= 200, 'the engine mid-stream', 20_000, 10);
    const outputBeforeOutage = await redis.xlen(out);
    await server.owned!.stop();
    await engine.waitForLog((l) => l.msg === 'redis unavailable; reconnecting with back-off', 'that Redis is gone');
    // The outage itself: the scenario is "down for a few seconds", so this wait is the test's subject.
    await new Promise((r) => setTimeout(r, 3000));
    expect(engine.alive(), engine.report()).toBe(true);
    await server.owned!.restart();

    await engine.waitForLog((l) => l.msg === 'redis connection restored', 'that Redis is back');
    await addEvents(redis, stream, range(N / 2, N).map((i) => orderEvent(i)));
    const seqs = await waitFor(async () => {
      const got = (await readPayloads<{ seq: number }>(redis, out)).map((p) => p.seq);
      return new Set(got).size >= N && got;
    }, `all ${N} events in the output`, 40_000, 200);
    expect(new Set(seqs)).toEqual(new Set(range(0, N)));
    console.log(`Redis outage: stopped with ${outputBeforeOutage} of the first ${N / 2} events output; ${N} events, ${seqs.length - N} duplicated`);
    expect(engine.alive(), engine.report()).toBe(true);

    await waitFor(async () => (await pendingSummary(redis, stream, doc.name)).count === 0, 'nothing pending');
    await stopCleanly(engine);
    // The outage is in the log, once; no connection prints its errors to stderr (ioredis does,
    // as "Unhandled error event", for a connection without an error listener).
    expect(engine.stderr()).toBe('');
  }, 60_000);
});

describe('a stream deleted while its pipeline runs (its consumer group goes with it)', () => {
  it('the engine says so, creates the group again, backs off while it fails, and reads on', async () => {
    const stream = testKey('in');
    const out = testKey('out');
    const doc = ordersPipeline({ stream, out });
    const engine = await spawnEngine({
      pipelines: await dirs.make([doc]), schemas: FIXTURE_SCHEMAS, redisUrl: server.url, consumer: `it-deleted-${randomUUID().slice(0, 8)}`,
    });
    await addEvents(redis, stream, [orderEvent(1)]);
    await waitFor(async () => (await redis.xlen(out)) === 1, 'the first event through');

    await redis.del(stream);
    const failed = await engine.waitForLog((l) => l.msg === 'stream read failed; retrying', 'the read failing on the missing group');
    expect(String(failed.err)).toMatch(/NOGROUP|no longer exists/);
    expect(failed.retryInMs).toBe(100);
    await engine.waitForLog((l) => l.msg === 'reading again after errors', 'the loop reading again');
    // The group is back (created with the stream, from its start position: new entries only).
    await waitFor(async () => {
      const groups = (await redis.xinfo('GROUPS', stream).catch(() => [])) as unknown[];
      return groups.length === 1;
    }, 'the group created again');
    await addEvents(redis, stream, [orderEvent(2)]);
    await waitFor(async () => (await readPayloads<{ seq: number }>(redis, out)).some((p) => p.seq === 2), 'an event after the group came back');
    expect(engine.alive(), engine.report()).toBe(true);
  });
});

describe('a DLQ write Redis refuses (the DLQ key is not a stream)', () => {
  it('the engine logs the stall, naming the entries and the next try, and logs when Redis accepts again', async () => {
    const stream = testKey('in');
    const out = testKey('out');
    const doc = ordersPipeline({ stream, out });
    const dlq = `${stream}:dlq`;
    await redis.set(dlq, 'not a stream');
    const engine = await spawnEngine({
      pipelines: await dirs.make([doc]), schemas: FIXTURE_SCHEMAS, redisUrl: server.url, consumer: `it-stall-${randomUUID().slice(0, 8)}`,
    });
    const [badId] = await addEvents(redis, stream, [JSON.stringify({ ...orderEvent(1), data: { orderId: 'o-1', amount: 'x' } })]);

    const stalled = await engine.waitForLog((l) => l.msg === 'Redis refused a write; the entries stay pending and are tried again', 'the stall');
    expect(stalled).toMatchObject({ entries: [badId], retryInMs: 100 });
    expect(String(stalled.err)).toMatch(new RegExp(`^Redis refused the DLQ write to ${dlq}: .*WRONGTYPE`));

    await redis.del(dlq);
    const accepted = await engine.waitForLog((l) => l.msg === 'Redis accepts the writes again; reading on', 'the stall over');
    expect(String(accepted.stalledSince)).toMatch(/^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$/);
    await waitFor(async () => (await redis.xlen(dlq)) === 1 && (await pendingSummary(redis, stream, doc.name)).count === 0, 'the entry dead-lettered');
    await stopCleanly(engine);
  });
});

describe('Redis not there yet when the engine starts', () => {
  let later: OwnedRedis | undefined;
  let dir = '';
  afterEach(async () => {
    await later?.stop();
    later = undefined;
    if (dir) await rm(dir, { recursive: true, force: true });
  });

  it('the engine starts and serves its admin API, says Redis is away (and prints nothing else), and reads once Redis comes', async () => {
    // As in a deployment where the engine's container is up before Redis's.
    const port = await freePort();
    const stream = testKey('in');
    const out = testKey('out');
    const doc = ordersPipeline({ stream, out });
    // A schedule pipeline too: its job scheduler is written to Redis, which the start does not wait for.
    const ticks = testKey('ticks');
    const schedule = {
      name: `tick-${randomUUID().slice(0, 8)}`, source: { schedule: '1s' },
      transform: '{ "tick": event }', sink: { type: 'publish', with: { stream: ticks } },
    };
    const engine = await spawnEngine({
      pipelines: await dirs.make([doc, schedule]), schemas: FIXTURE_SCHEMAS, redisUrl: `redis://127.0.0.1:${port}`,
      consumer: `it-later-${randomUUID().slice(0, 8)}`,
    });
    await engine.waitForLog((l) => l.msg === 'admin API listening', 'its admin API up');
    const admin = `http://127.0.0.1:${engine.adminPort}`;
    const ready = await fetch(`${admin}/ready`);
    expect(ready.status).toBe(503);
    expect(await ready.json()).toMatchObject({ status: 'not-ready', redis: expect.not.stringMatching(/^ready$/) });

    dir = await mkdtemp(join(tmpdir(), 'synapse-later-'));
    later = await startRedisServer({ port, dir });
    const client = new Redis(later.url);
    try {
      await engine.waitForLog((l) => l.msg === 'redis connection restored', 'that Redis is there');
      await waitFor(async () => (await fetch(`${admin}/ready`)).status === 200, 'GET /ready to answer 200');
      // The group is created once Redis is there, from the start of the stream (start: '0').
      await addEvents(client, stream, range(1, 6).map((i) => orderEvent(i)));
      await waitFor(async () => (await client.xlen(out)) === 5, 'the five events in the output');
      expect((await readPayloads<{ seq: number }>(client, out)).map((p) => p.seq)).toEqual([1, 2, 3, 4, 5]);
      await waitFor(async () => (await readPayloads<{ tick: string }>(client, ticks)).some((p) => p.tick === 'tick'), 'a tick of the schedule');
      // The broadcast channel's subscription, made while Redis was away, followed it.
      await waitFor(async () => (await client.pubsub('NUMSUB', BROADCAST_CHANNEL))[1] === 1, 'the broadcast subscription');
      await stopCleanly(engine);
      // The outage is in the log once, and nothing else is printed (a connection error BullMQ
      // has no listener for would be, as a stack trace per attempt).
      expect(engine.stderr()).toBe('');
    } finally {
      client.disconnect();
    }
  }, 60_000);

  it('a stop while the engine still waits on a Redis that accepts connections and never answers exits within its time limit', async () => {
    // A real redis-server, frozen (SIGSTOP): connections are accepted and nothing answers. The
    // start waits on it for seconds; SIGTERM comes before it is done, with a time limit of one
    // second: the process exits 1 once that limit has passed, without waiting for the start.
    dir = await mkdtemp(join(tmpdir(), 'synapse-frozen-'));
    later = await startRedisServer({ dir });
    process.kill(later.pid, 'SIGSTOP');
    try {
      const engine = await spawnEngine({
        pipelines: await dirs.make([ordersPipeline({ stream: testKey('in'), out: testKey('out') })]), schemas: FIXTURE_SCHEMAS,
        redisUrl: later.url, consumer: `it-frozen-${randomUUID().slice(0, 8)}`, env: { SYNAPSE_SHUTDOWN_TIMEOUT_MS: '1000' }, waitStarted: false,
      });
      await engine.waitForLog((l) => l.msg === 'connecting to redis', 'that it connects');
      const exit = await engine.stop('SIGTERM', 20_000);
      expect(exit, engine.report()).toEqual({ code: 1, signal: null });
      expect(engine.logs.find((l) => l.msg === 'the start did not finish within the time limit of the stop: exiting now'), engine.report()).toMatchObject({ timeoutMs: 1000 });
      expect(engine.logs.some((l) => l.msg === 'engine started'), engine.report()).toBe(false);
    } finally {
      process.kill(later.pid, 'SIGCONT');
    }
  }, 60_000);
});
