import { randomUUID } from 'node:crypto';
import type { Redis } from 'ioredis';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import { TRIM_INTERVAL_MS, requestTrim, retentionFloor, trimSafely } from '../../engine/runtime/retention.ts';
import { startTestRedis, waitFor, type TestRedis } from '../helpers/redis.ts';

/** SPEC §11: a length cap never trims an entry a consumer group has not acknowledged. */
describe('stream retention', () => {
  let server: TestRedis;
  let redis: Redis;

  beforeAll(async () => {
    // A server of its own: the trim tests count its commands.
    server = await startTestRedis({ own: true });
    redis = server.client();
  });
  afterAll(async () => server?.close());

  /** 1,000 entries with evenly spread ids <from+1>-0 .. <from+1000>-0. */
  async function fill(from = 0, stream = `test-${randomUUID()}`): Promise<string> {
    const p = redis.pipeline();
    for (let i = from + 1; i <= from + 1000; i++) p.xadd(stream, `${i}-0`, 'n', String(i));
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

  it('with ids as producers make them (milliseconds since 1970), trims to about maxlen too', async () => {
    const stream = await fill(1_764_000_000_000);
    await trimSafely(redis, stream, 200);
    const length = await redis.xlen(stream);
    expect(length).toBeGreaterThanOrEqual(200);
    expect(length).toBeLessThan(400);
  });

  it('trims what every group has acknowledged down to about maxlen, not further', async () => {
    const stream = await fill();
    await redis.xgroup('CREATE', stream, 'done', '0');
    await redis.xack(stream, 'done', ...(await readAs(stream, 'done', 1000)));
    expect(await retentionFloor(redis, stream)).toBe('1000-1');
    await trimSafely(redis, stream, 200);
    const length = await redis.xlen(stream);
    expect(length).toBeGreaterThanOrEqual(200);
    expect(length).toBeLessThan(400);
  });

  it('the floor is the oldest need of any group, whichever group it is', async () => {
    const stream = await fill();
    for (const g of ['a', 'b', 'c']) await redis.xgroup('CREATE', stream, g, '0');
    await readAs(stream, 'a', 300); // a: 1..300 pending
    await redis.xack(stream, 'b', ...(await readAs(stream, 'b', 900))); // b: needs 901 on
    await redis.xack(stream, 'c', ...(await readAs(stream, 'c', 950))); // c: needs 951 on
    expect(await retentionFloor(redis, stream)).toBe('1-0');
    expect(await trimSafely(redis, stream, 100)).toBe(0);
  });

  it('a stream within maxlen is left alone, an empty one too', async () => {
    const stream = await fill();
    expect(await trimSafely(redis, stream, 1000)).toBe(0);
    expect(await redis.xlen(stream)).toBe(1000);
    await redis.xtrim(stream, 'MAXLEN', 0);
    expect(await trimSafely(redis, stream, 1)).toBe(0);
  });

  it('requestTrim trims in the background, at most once per interval and stream; a failed trim is tried again at the next call', async () => {
    // The interval is read from Date.now(): the clock is held still and moved by hand (timers and
    // Redis run as usual). A trim's first command is XINFO STREAM, sent as requestTrim is called;
    // a PING on the same connection answers after it, so its count is read exactly.
    vi.useFakeTimers({ toFake: ['Date'] });
    try {
      const t0 = Date.now();
      const own = server.client(); // the interval is kept per connection
      const trimsStarted = async () => {
        await own.ping();
        return Number(/^cmdstat_xinfo\|stream:calls=(\d+)/m.exec(await redis.info('commandstats'))?.[1] ?? 0);
      };
      const base = await trimsStarted();
      const stream = await fill();
      requestTrim(own, stream, 100);
      requestTrim(own, stream, 100);
      expect(await trimsStarted()).toBe(base + 1);
      await waitFor(async () => (await redis.xlen(stream)) < 1000, 'the trim, in the background');
      requestTrim(own, await fill(), 100); // another stream is not held back
      expect(await trimsStarted()).toBe(base + 2);
      vi.setSystemTime(t0 + TRIM_INTERVAL_MS - 1);
      requestTrim(own, stream, 100);
      expect(await trimsStarted()).toBe(base + 2);
      vi.setSystemTime(t0 + TRIM_INTERVAL_MS);
      requestTrim(own, stream, 100);
      expect(await trimsStarted()).toBe(base + 3);

      // A key that is no stream: the trim fails (WRONGTYPE), and the next call tries again at
      // once, though the clock has not moved.
      const wrong = `test-${randomUUID()}`;
      await redis.set(wrong, 'not a stream');
      requestTrim(own, wrong, 100);
      expect(await trimsStarted()).toBe(base + 4);
      await waitFor(async () => {
        requestTrim(own, wrong, 100);
        return (await trimsStarted()) > base + 4;
      }, 'a trim tried again', 5000);
    } finally {
      vi.useRealTimers();
    }
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
