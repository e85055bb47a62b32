import { randomUUID } from 'node:crypto';
import type { Redis } from 'ioredis';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { retentionFloor, trimSafely } from '../../engine/runtime/retention.ts';
import { startTestRedis, type TestRedis } from '../helpers/redis.ts';

/** SPEC §11: a length cap never trims an entry a consumer group has not acknowledged. */
describe('stream retention', () => {
  let server: TestRedis;
  let redis: Redis;

  beforeAll(async () => {
    server = await startTestRedis();
    redis = server.client();
  });
  afterAll(async () => server?.close());

  /** 1,000 entries with evenly spread ids 1-0 .. 1000-0. */
  async function fill(): Promise<string> {
    const stream = `test-${randomUUID()}`;
    const p = redis.pipeline();
    for (let i = 1; i <= 1000; i++) p.xadd(stream, `${i}-0`, 'n', String(i));
    await p.exec();
    return stream;
  }

  async function readAs(stream: string, group: string, count: number): Promise<string[]> {
    const reply = (await redis.xreadgroup('GROUP', group, 'c1', 'COUNT', count, 'STREAMS', stream, '>')) as [string, [string, string[]][]][];
    return reply[0]![1].map(([id]) => id);
  }

  it('without consumer groups, trims to about maxlen', async () => {
    const stream = await fill();
    expect(await retentionFloor(redis, stream)).toBeUndefined();
    await trimSafely(redis, stream, 200);
    const length = await redis.xlen(stream);
    expect(length).toBeGreaterThanOrEqual(200);
    expect(length).toBeLessThan(400);
  });

  it('keeps everything a group has not been delivered yet', async () => {
    const stream = await fill();
    await redis.xgroup('CREATE', stream, 'g', '0');
    expect(await retentionFloor(redis, stream)).toBe('0-1');
    expect(await trimSafely(redis, stream, 200)).toBe(0);
    expect(await redis.xlen(stream)).toBe(1000);
  });

  it('keeps the pending entries and what follows them; trims what every group acknowledged', async () => {
    const stream = await fill();
    await redis.xgroup('CREATE', stream, 'a', '0');
    await redis.xgroup('CREATE', stream, 'b', '0');
    const readA = await readAs(stream, 'a', 900);
    await redis.xack(stream, 'a', ...readA);                 // a: all 900 acked, 100 undelivered
    const readB = await readAs(stream, 'b', 700);
    await redis.xack(stream, 'b', ...readB.slice(0, 600));   // b: 601..700 pending
    expect(await retentionFloor(redis, stream)).toBe('601-0');
    await trimSafely(redis, stream, 100);
    const oldest = (await redis.xrange(stream, '-', '+', 'COUNT', 1))[0]![0];
    // Approximate trimming removes whole nodes, so the oldest kept may be a little older than 601.
    expect(Number(oldest.split('-')[0])).toBeLessThanOrEqual(601);
    expect(Number(oldest.split('-')[0])).toBeGreaterThan(1);
    expect(await redis.xrange(stream, '601-0', '1000-0')).toHaveLength(400);
  });
});
