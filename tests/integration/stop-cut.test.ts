import { randomUUID } from 'node:crypto';
import { createConnection, createServer, type AddressInfo, type Server, type Socket } from 'node:net';
import { setTimeout as delay } from 'node:timers/promises';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import type { Redis } from 'ioredis';
import { FIXTURE_SCHEMAS, orderEvent, ordersPipeline, pipelineDirs, testKey } from '../helpers/pipelines.ts';
import { killEngines, spawnEngine, stopCleanly } from '../helpers/engine-process.ts';
import { startEngine, type EngineUnderTest } from '../helpers/in-process-engine.ts';
import { startTestRedis, timed, waitFor, type TestRedis } from '../helpers/redis.ts';
import { addEvents, pendingSummary, readPayloads } from '../helpers/streams.ts';
import { gate, startHttpRecorder } from '../helpers/http-recorder.ts';
import { toRecord } from '../../engine/runtime/stream-reader.ts';

// A stop cuts a quiet consumer's waiting read (block_ms up to 60000) instead of sitting it out:
// also when Redis is away (the read waits on a reconnecting connection), and when the batch in
// hand at the stop was one reclaimed from a dead consumer.

let server: TestRedis;
let redis: Redis;
const dirs = pipelineDirs();
let open: EngineUnderTest[] = [];

beforeAll(async () => {
  // A server of the suite's own, persistent, so a test can stop and restart it.
  server = await startTestRedis({ persistent: true, own: true });
  if (!server.owned) throw new Error('this suite needs a redis-server it owns (redis-server on PATH)');
  redis = server.client();
});
afterEach(async () => {
  await killEngines();
  await Promise.all(open.splice(0).map((e) => e.stop()));
});
afterAll(async () => {
  await dirs.cleanup();
  await server?.close();
});

async function start(docs: Parameters<typeof dirs.make>[0], consumer = `it-cut-${randomUUID().slice(0, 8)}`): Promise<EngineUnderTest> {
  const e = await startEngine({ redisUrl: server.url, pipelines: await dirs.make(docs), consumer });
  open.push(e);
  return e;
}


/** Whether the pipeline's own connection is blocked (flag b) in XREADGROUP on the server. */
async function blockedInRead(name: string): Promise<boolean> {
  const list = String(await redis.client('LIST'));
  return list.split('\n').some((l) => l.includes(`name=synapse:${name} `) && /cmd=xreadgroup/.test(l) && /flags=\w*b/.test(l));
}

/**
 * A TCP proxy to the suite's Redis that delivers what Redis sends `delayMs` late (a distant
 * Redis): a reply is on its way for that long. What the client sends goes through at once.
 */
async function slowLink(delayMs: number): Promise<{ url: string; close(): Promise<void> }> {
  const target = new URL(server.url);
  const sockets = new Set<Socket>();
  // Half-open both ways: a client that has sent its FIN still receives what is on its way.
  const proxy: Server = createServer({ allowHalfOpen: true }, (client) => {
    const upstream = createConnection({ host: target.hostname, port: Number(target.port), allowHalfOpen: true });
    for (const s of [client, upstream]) {
      sockets.add(s);
      s.on('error', () => undefined);
      s.on('close', () => sockets.delete(s));
    }
    client.pipe(upstream);
    upstream.on('data', (chunk: Buffer) => void setTimeout(() => client.write(chunk), delayMs));
    upstream.on('end', () => void setTimeout(() => client.end(), delayMs));
  });
  proxy.listen(0, '127.0.0.1');
  await new Promise((r) => proxy.once('listening', r));
  return {
    url: `redis://127.0.0.1:${(proxy.address() as AddressInfo).port}`,
    async close() {
      for (const s of sockets) s.destroy();
      await new Promise((r) => proxy.close(r));
    },
  };
}

describe('stop cuts a waiting read', () => {
  it('Redis away while a quiet pipeline waits on its read: removing the pipeline does not wait for Redis, and nothing is lost', async () => {
    const stream = testKey('in');
    const out = testKey('out');
    const consumer = `it-cut-away-${randomUUID().slice(0, 8)}`;
    const doc = ordersPipeline({ stream, out, source: { block_ms: 60_000 } });
    const e = await start([doc], consumer);
    await addEvents(redis, stream, [orderEvent(1)]);
    await waitFor(async () => (await redis.xlen(out)) === 1, 'the event through');
    await waitFor(() => blockedInRead(doc.name), 'the pipeline waiting on its read');

    await server.owned!.stop();
    const blocking = e.engine.handles.get(doc.name)!.blocking!;
    await waitFor(() => blocking.status === 'reconnecting', 'its connection reconnecting');
    try {
      // Nothing in hand: nothing to finish or acknowledge, so nothing to wait for.
      const took = await timed(e.engine.removePipeline(doc.name), 5_000);
      expect(took).toBeLessThan(5_000);
    } finally {
      await server.owned!.restart();
    }

    // What the group holds is there for the next consumer of the same name.
    await addEvents(redis, stream, [orderEvent(2)]);
    const again = await start([doc], consumer);
    await waitFor(async () => (await redis.xlen(out)) === 2, 'the next event through, after a restart');
    expect((await readPayloads<{ seq: number }>(redis, out)).map((p) => p.seq)).toEqual([1, 2]);
    await waitFor(async () => (await pendingSummary(redis, stream, doc.name)).count === 0, 'nothing pending');
    void again;
  }, 40_000);

  it('a read Redis has already answered when the stop comes is still handled, not dropped', async () => {
    const link = await slowLink(300);
    try {
      const stream = testKey('in');
      const out = testKey('out');
      const doc = ordersPipeline({ stream, out, source: { block_ms: 60_000 } });
      const e = await startEngine({ redisUrl: link.url, pipelines: await dirs.make([doc]), consumer: `it-cut-late-${randomUUID().slice(0, 8)}` });
      open.push(e);
      await waitFor(() => blockedInRead(doc.name), 'the pipeline waiting on its read');
      // Redis hands event 1 to the waiting read at once; the answer takes 300 ms to arrive.
      await addEvents(redis, stream, [orderEvent(1)]);
      await e.engine.removePipeline(doc.name);
      expect((await readPayloads<{ seq: number }>(redis, out)).map((p) => p.seq)).toEqual([1]);
      expect((await pendingSummary(redis, stream, doc.name)).count).toBe(0);
    } finally {
      await link.close();
    }
  }, 40_000);

  it('Redis away at a stop: the engine stops within its time limit even with a command of its own still waiting on the shared connection', async () => {
    const stream = testKey('in');
    const out = testKey('out');
    const doc = ordersPipeline({ stream, out, source: { block_ms: 60_000 } });
    const e = await start([doc]);
    await addEvents(redis, stream, [orderEvent(1)]);
    await waitFor(async () => (await redis.xlen(out)) === 1, 'the event through');
    await waitFor(() => blockedInRead(doc.name), 'the pipeline waiting on its read');

    await server.owned!.stop();
    const shared = e.engine.connection;
    await waitFor(() => shared.status === 'reconnecting', 'the shared connection reconnecting');
    // What an admin request or a DLQ trim sent meanwhile waits for Redis on the shared connection.
    void shared.xlen(out).catch(() => undefined);
    await delay(50); // the shared connection pipelines automatically: the command is queued on the next tick
    try {
      const took = await timed(e.engine.stop(2_000), 8_000);
      expect(took).toBeLessThan(8_000);
    } finally {
      await server.owned!.restart();
    }
  }, 40_000);

  it('SIGTERM with Redis away: the process exits 0 within its time limit, and the next start reads on, nothing pending', async () => {
    const stream = testKey('in');
    const out = testKey('out');
    const consumer = `it-cut-term-${randomUUID().slice(0, 8)}`;
    const doc = ordersPipeline({ stream, out, source: { block_ms: 60_000 } });
    const pipelines = await dirs.make([doc]);
    const engine = await spawnEngine({ pipelines, schemas: FIXTURE_SCHEMAS, redisUrl: server.url, consumer, env: { SYNAPSE_SHUTDOWN_TIMEOUT_MS: '3000' } });
    await addEvents(redis, stream, [orderEvent(1)]);
    await waitFor(async () => (await redis.xlen(out)) === 1, 'the event through');
    await waitFor(() => blockedInRead(doc.name), 'the pipeline waiting on its read');

    await server.owned!.stop();
    try {
      await engine.waitForLog((l) => l.msg === 'redis unavailable; reconnecting with back-off', 'that Redis is gone');
      const t0 = performance.now();
      const exit = await engine.stop('SIGTERM', 15_000);
      expect(exit, engine.report()).toEqual({ code: 0, signal: null });
      expect(performance.now() - t0).toBeLessThan(8_000);
    } finally {
      await server.owned!.restart();
    }
    await addEvents(redis, stream, [orderEvent(2)]);
    const again = await spawnEngine({ pipelines, schemas: FIXTURE_SCHEMAS, redisUrl: server.url, consumer });
    await waitFor(async () => (await redis.xlen(out)) === 2, 'the next event through, after a restart');
    await waitFor(async () => (await pendingSummary(redis, stream, doc.name)).count === 0, 'nothing pending');
    await stopCleanly(again);
  }, 60_000);

  it('stopped as it starts: it claims nothing from a dead consumer on its way out', async () => {
    const hook = await startHttpRecorder();
    try {
      const stream = testKey('in');
      const doc = {
        ...ordersPipeline({ stream, out: 'unused', source: { block_ms: 60_000, claim_idle_ms: 1_000 } }),
        sink: { type: 'http', with: { url: `${hook.url}/hook` } },
      };
      // A dead consumer read event 1 and never acknowledged it; it is idle past claim_idle_ms.
      await redis.xgroup('CREATE', stream, doc.name, '0', 'MKSTREAM');
      const [id1] = await addEvents(redis, stream, [orderEvent(1)]);
      await redis.xreadgroup('GROUP', doc.name, 'dead', 'COUNT', 10, 'STREAMS', stream, '>');
      await delay(1_200);
      // Started means its group is there; its first look around (metrics, then reclaim) follows.
      const e = await start([doc]);
      await e.engine.stop(20_000);
      // Stopping, it reads nothing: event 1 is still the dead consumer's, for another to reclaim.
      expect((await pendingSummary(redis, stream, doc.name)).consumers).toEqual({ dead: 1 });
      expect(hook.requests).toEqual([]);
      void id1;
    } finally {
      await hook.close();
    }
  });

  it('stopped while a batch reclaimed from a dead consumer is in hand: it is finished and acknowledged, and the stop does not then sit out block_ms', async () => {
    const { held, release } = gate();
    // The webhook holds the reclaimed event (seq 1) until released; others pass at once.
    const hook = await startHttpRecorder(async (req) => {
      if (req.body.includes('"o-1"')) await held;
      return { status: 200, body: { ok: true } };
    });
    try {
      const stream = testKey('in');
      const doc = {
        ...ordersPipeline({ stream, out: 'unused', source: { block_ms: 60_000, claim_idle_ms: 2_000 } }),
        sink: { type: 'http', with: { url: `${hook.url}/hook` } },
      };
      // A dead consumer read event 1 and never acknowledged it.
      await redis.xgroup('CREATE', stream, doc.name, '0', 'MKSTREAM');
      const [id1] = await addEvents(redis, stream, [orderEvent(1)]);
      await redis.xreadgroup('GROUP', doc.name, 'dead', 'COUNT', 10, 'STREAMS', stream, '>');
      const e = await start([doc]);
      // Its first reclaim came too early (event 1 not idle for 2 s yet); it now waits on a read.
      await waitFor(() => blockedInRead(doc.name), 'the pipeline waiting on its read');
      await delay(2_500);
      // Event 2 ends the read; the reclaim after it takes event 1, which the webhook holds.
      await addEvents(redis, stream, [orderEvent(2)]);
      await waitFor(() => hook.requests.some((r) => r.body.includes('"o-1"')), 'the reclaimed event at the webhook', 10_000);

      const stopping = e.engine.stop(30_000);
      // Event 3 comes after the stop: a stopping consumer reads nothing new, so it stays in the
      // stream for the group, handed to no one.
      const [id3] = await addEvents(redis, stream, [orderEvent(3)]);
      await delay(200);
      release();
      const took = await timed(stopping, 20_000);
      expect(took).toBeLessThan(5_000);
      // The batch in hand was finished and acknowledged: nothing pending, under any name.
      expect((await pendingSummary(redis, stream, doc.name)).count).toBe(0);
      expect(hook.requests.filter((r) => r.body.includes('"o-1"'))).toHaveLength(1);
      expect(hook.requests.some((r) => r.body.includes('"o-3"'))).toBe(false);
      const group = ((await redis.xinfo('GROUPS', stream)) as unknown[][]).map(toRecord).find((g) => g.name === doc.name)!;
      expect(String(group['last-delivered-id'])).not.toBe(id3);
      void id1;
    } finally {
      release();
      await hook.close();
    }
  }, 40_000);
});

describe("a read's stop guard, while no stop comes", () => {
  it('cuts no read, however long it waits, and leaves nothing behind: no abort listener piles up over many reads', async () => {
    // Each read races a guard that fires only once a stop has begun. Many short reads (block_ms
    // 50) must not pile up listeners on the consumer's abort signal (Node warns past ten), and a
    // read waiting longer than the guard's grace (block_ms 2500) must not be cut.
    const [shortIn, shortOut, longIn, longOut] = [testKey('in'), testKey('out'), testKey('in'), testKey('out')];
    const short = ordersPipeline({ stream: shortIn, out: shortOut, source: { block_ms: 50 } });
    const long = ordersPipeline({ stream: longIn, out: longOut, source: { block_ms: 2500 } });
    const engine = await spawnEngine({ pipelines: await dirs.make([short, long]), schemas: FIXTURE_SCHEMAS, redisUrl: server.url, consumer: `it-guard-${randomUUID().slice(0, 8)}` });
    await engine.waitForLog((l) => l.msg === 'engine started', 'the engine started');
    await delay(3500); // some 70 short reads, and a long one past its first second
    await addEvents(redis, shortIn, [orderEvent(1)]);
    await addEvents(redis, longIn, [orderEvent(2)]);
    await waitFor(async () => (await redis.xlen(shortOut)) === 1 && (await redis.xlen(longOut)) === 1, 'both events through');
    expect(engine.logs.filter((l) => l.msg === 'stream read failed; retrying'), engine.report()).toEqual([]);
    expect(engine.stderr()).not.toMatch(/MaxListenersExceeded|memory leak/);
    await stopCleanly(engine);
  });
});
