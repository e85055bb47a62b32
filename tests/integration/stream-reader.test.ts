import { randomUUID } from 'node:crypto';
import type { Redis } from 'ioredis';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { StreamReader, toRecord } from '../../engine/runtime/stream-reader.ts';
import { startTestRedis, waitFor, type TestRedis } from '../helpers/redis.ts';

describe('StreamReader housekeeping', () => {
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
