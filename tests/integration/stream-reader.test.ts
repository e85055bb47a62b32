import { randomUUID } from 'node:crypto';
import type { Redis } from 'ioredis';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { StreamReader, toRecord } from '../../engine/runtime/stream-reader.ts';
import { startTestRedis, waitFor, type TestRedis } from '../helpers/redis.ts';

describe('StreamReader', () => {
  let server: TestRedis;
  let redis: Redis;

  beforeAll(async () => {
    server = await startTestRedis();
    redis = server.client();
  });
  afterAll(async () => server?.close());

  async function consumers(stream: string, group: string): Promise<Record<string, unknown>[]> {
    return ((await redis.xinfo('CONSUMERS', stream, group)) as unknown[][]).map(toRecord);
  }

  it('ensureGroup creates the group once, and passes on any refusal but "the group exists"', async () => {
    const stream = `test-${randomUUID()}`;
    const reader = new StreamReader(redis, redis, stream, 'g', 'me');
    await reader.ensureGroup('0');
    await reader.ensureGroup('$'); // BUSYGROUP: the group is there already
    expect(((await redis.xinfo('GROUPS', stream)) as unknown[][]).map(toRecord).map((g) => g.name)).toEqual(['g']);
    // The source key holds a string, not a stream: the engine must hear of it.
    const wrong = `test-${randomUUID()}`;
    await redis.set(wrong, 'not a stream');
    await expect(new StreamReader(redis, redis, wrong, 'g', 'me').ensureGroup('0')).rejects.toThrow(/^WRONGTYPE/);
  });

  it('removes idle consumers with nothing pending, and keeps itself and consumers holding entries', async () => {
    const stream = `test-${randomUUID()}`;
    const reader = new StreamReader(redis, redis, stream, 'g', 'me');
    await reader.ensureGroup('0');
    await redis.xadd(stream, '*', 'payload', '{}');
    // 'holder' takes the entry and never acks it; 'idle' reads nothing; 'me' is this process.
    await redis.xreadgroup('GROUP', 'g', 'holder', 'COUNT', 1, 'STREAMS', stream, '>');
    await redis.xgroup('CREATECONSUMER', stream, 'g', 'idle');
    await redis.xgroup('CREATECONSUMER', stream, 'g', 'me');
    await waitFor(async () => (await consumers(stream, 'g')).every((c) => Number(c.idle) > 20), 'the consumers to be idle a little');

    expect(await reader.removeIdleConsumers(20)).toEqual(['idle']);
    expect((await consumers(stream, 'g')).map((c) => c.name).sort()).toEqual(['holder', 'me']);
    // A day (the engine's threshold) has not passed for anyone: nothing more goes.
    expect(await reader.removeIdleConsumers(24 * 60 * 60 * 1000)).toEqual([]);
  });
});
