import { randomUUID } from 'node:crypto';
import type { Redis } from 'ioredis';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { silentLogger } from '../../engine/logger.ts';
import { EngineMetrics } from '../../engine/metrics.ts';
import { BROADCAST_CHANNEL, createSinkContext, xaddFields, xaddPayload } from '../../engine/runtime/sink-context.ts';
import { startTestRedis, waitFor, type TestRedis } from '../helpers/redis.ts';

// What a sink gets to reach Redis: publish (one or many, kept near a length), broadcast, queues,
// its own logger and counters.

let server: TestRedis;
let redis: Redis;
beforeAll(async () => {
  server = await startTestRedis();
  redis = server.client();
});
afterAll(async () => server?.close());

const key = (what: string) => `it-sink-context:${what}:${randomUUID().slice(0, 8)}`;

/**
 * A stream of 1,000 entries over the last ten seconds, to show a trim (it estimates the cut from
 * the ids' times, so entries written within one millisecond would not show it).
 */
async function long(stream: string): Promise<void> {
  const p = redis.pipeline();
  const from = Date.now() - 10_000;
  for (let i = 0; i < 1000; i++) p.xadd(stream, `${from + 10 * i}-0`, 'n', String(i));
  await p.exec();
}

describe('createSinkContext', () => {
  it('publish appends the envelope as `payload` and returns its id; with maxlen the stream is kept near it', async () => {
    const ctx = createSinkContext({ redis, logger: silentLogger }, 'p', 's');
    const stream = key('out');
    await long(stream);
    const id = await ctx.publish(stream, { event: 'e', data: { n: 1 } });
    expect(await redis.xrevrange(stream, '+', '-', 'COUNT', 1)).toEqual([[id, ['payload', '{"event":"e","data":{"n":1}}']]]);
    await ctx.publish(stream, { event: 'e' });
    await new Promise((r) => setTimeout(r, 200));
    expect(await redis.xlen(stream)).toBe(1002); // no maxlen: nothing trimmed
    await ctx.publish(stream, { event: 'e' }, { maxlen: 100 });
    await waitFor(async () => (await redis.xlen(stream)) < 400, 'the stream trimmed near 100');
  });

  it('publishMany appends each in one round trip: an id each, or the Error Redis gave; with maxlen the stream is kept near it', async () => {
    const ctx = createSinkContext({ redis, logger: silentLogger }, 'p', 's');
    const stream = key('many');
    await long(stream);
    const ids = await ctx.publishMany(stream, [{ n: 1 }, { n: 2 }]);
    expect((await redis.xrevrange(stream, '+', '-', 'COUNT', 2)).reverse()).toEqual([[ids[0], ['payload', '{"n":1}']], [ids[1], ['payload', '{"n":2}']]]);
    const wrong = key('wrong');
    await redis.set(wrong, 'not a stream');
    const refused = await ctx.publishMany(wrong, [{ n: 1 }]);
    expect(refused[0]).toBeInstanceOf(Error);
    expect(String(refused[0])).toMatch(/WRONGTYPE/);
    await new Promise((r) => setTimeout(r, 200));
    expect(await redis.xlen(stream)).toBe(1002); // no maxlen: nothing trimmed
    await ctx.publishMany(stream, [{ n: 3 }], { maxlen: 100 });
    await waitFor(async () => (await redis.xlen(stream)) < 400, 'the stream trimmed near 100');
  });

  it('xaddFields writes a flat field map, nested values as JSON; with maxlen the stream is kept near it', async () => {
    const stream = key('fields');
    await long(stream);
    const id = await xaddFields(redis, stream, { event: 'e', n: 1, data: { a: [1] } });
    expect(await redis.xrevrange(stream, '+', '-', 'COUNT', 1)).toEqual([[id, ['event', 'e', 'n', '1', 'data', '{"a":[1]}']]]);
    await new Promise((r) => setTimeout(r, 200));
    expect(await redis.xlen(stream)).toBe(1001); // no maxlen: nothing trimmed
    await xaddFields(redis, stream, { event: 'e' }, 100);
    await waitFor(async () => (await redis.xlen(stream)) < 400, 'the stream trimmed near 100');
    const other = key('payload');
    await long(other);
    await xaddPayload(redis, other, { event: 'e' }, 100);
    await waitFor(async () => (await redis.xlen(other)) < 400, 'the other stream trimmed near 100');
  });

  it('broadcast publishes {channel, message, audience} on the broadcast channel; no audience, no key', async () => {
    const ctx = createSinkContext({ redis, logger: silentLogger }, 'p', 's');
    const sub = server.client();
    const got: string[] = [];
    sub.on('message', (channel: string, raw: string) => got.push(`${channel} ${raw}`));
    await sub.subscribe(BROADCAST_CHANNEL);
    await ctx.broadcast('ops', { a: 1 });
    await ctx.broadcast('users', { b: 2 }, { audience: 'u1' });
    await waitFor(() => got.length === 2, 'both broadcasts');
    expect(got).toEqual([
      'synapse:broadcast {"channel":"ops","message":{"a":1}}',
      'synapse:broadcast {"channel":"users","message":{"b":2},"audience":"u1"}',
    ]);
  });

  it('a sink logs with its pipeline and id, and counts under them', async () => {
    const metrics = new EngineMetrics();
    const ctx = createSinkContext({ redis, logger: silentLogger, metrics }, 'orders', 'hook');
    expect(ctx.logger.bindings()).toMatchObject({ pipeline: 'orders', sink: 'hook' });
    expect([ctx.pipeline, ctx.sinkId]).toEqual(['orders', 'hook']);
    ctx.metrics.count('sent');
    ctx.metrics.count('sent', 2);
    const sample = (await metrics.plugin.get()).values.find((v) => v.labels.name === 'sent');
    expect(sample).toMatchObject({ value: 3, labels: { pipeline: 'orders', sink: 'hook', name: 'sent' } });
  });

  it('without Redis (a dry run) every Redis service says so; queues come from the engine', async () => {
    const ctx = createSinkContext({ logger: silentLogger }, 'p', 'hook');
    expect(() => ctx.redis).toThrow('sink hook needs RedisConnection, and this engine runs without it');
    expect(() => ctx.publish('s', {})).toThrow(/sink hook needs RedisConnection/);
    expect(() => ctx.queue('jobs')).toThrow('sink hook: queues need Redis');
    const queues: string[] = [];
    const withQueues = createSinkContext({ redis, logger: silentLogger, queue: (name) => (queues.push(name), { name } as never) }, 'p', 'q');
    expect(withQueues.queue('jobs')).toEqual({ name: 'jobs' });
    expect(queues).toEqual(['jobs']);
    expect(withQueues.redis).toBe(redis);
  });
});
