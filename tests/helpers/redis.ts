import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Redis } from 'ioredis';
import { redisServerOnPath, startRedisServer, type OwnedRedis } from '../../engine/runtime/redis-server.ts';

/** A Redis for a test suite, and how to get rid of it. */
export interface TestRedis {
  url: string;
  /** Present when the helper started the server itself: the test may stop, kill and restart it. */
  owned?: OwnedRedis;
  /** A new client (closed by `close()`). */
  client(): Redis;
  close(): Promise<void>;
}

/**
 * A real Redis for integration tests (STYLE.md): REDIS_URL when set; else a redis-server started
 * on a free port in a temp dir (persistent when asked, so a test can kill and restart it); else
 * testcontainers' Redis module when a Docker engine answers; else it fails and says why — a
 * skipped integration test proves nothing.
 */
export async function startTestRedis(opts: { persistent?: boolean; own?: boolean } = {}): Promise<TestRedis> {
  const clients: Redis[] = [];
  const make = (url: string, cleanup: () => Promise<void>, owned?: OwnedRedis): TestRedis => ({
    url,
    owned,
    client() {
      const c = new Redis(url, { maxRetriesPerRequest: null });
      c.on('error', () => undefined);
      clients.push(c);
      return c;
    },
    async close() {
      for (const c of clients) c.disconnect();
      await cleanup();
    },
  });

  if (process.env.REDIS_URL && !opts.own) return make(process.env.REDIS_URL, async () => undefined);

  if (await redisServerOnPath()) {
    const dir = await mkdtemp(join(tmpdir(), 'synapse-redis-'));
    const owned = await startRedisServer({ dir, persistent: opts.persistent });
    return make(owned.url, async () => {
      await owned.stop();
      await rm(dir, { recursive: true, force: true });
    }, owned);
  }

  try {
    const { RedisContainer } = await import('@testcontainers/redis');
    const container = await new RedisContainer('redis:7').start();
    return make(container.getConnectionUrl(), async () => {
      await container.stop();
    });
  } catch (err) {
    throw new Error(
      'integration tests need Redis: set REDIS_URL, or put redis-server on PATH (apt-get install redis-server), ' +
      `or run a Docker engine for testcontainers (${(err as Error).message})`,
    );
  }
}

/** Polls `cond` until it holds or `timeoutMs` passes (then throws with `what`, which a function can make say where things stood). */
export async function waitFor<T>(cond: () => Promise<T | undefined | false> | T | undefined | false, what: string | (() => string), timeoutMs = 20_000, everyMs = 50): Promise<T> {
  // A monotonic clock: a test may hold Date still (vi.useFakeTimers({ toFake: ['Date'] })).
  const deadline = performance.now() + timeoutMs;
  let last: unknown;
  for (;;) {
    try {
      const v = await cond();
      if (v) return v as T;
    } catch (err) {
      last = err;
    }
    if (performance.now() > deadline) throw new Error(`timed out waiting for ${typeof what === 'function' ? what() : what}${last ? `: ${(last as Error).message}` : ''}`);
    await new Promise((r) => setTimeout(r, everyMs));
  }
}

/**
 * Resolves with how long `p` took in ms, or with Infinity once `ms` have passed without it: a bound
 * on a hang (a stop that sits out a 60 s read), not a measure of speed.
 */
export async function timed(p: Promise<unknown>, ms: number): Promise<number> {
  const t0 = performance.now();
  let timer: NodeJS.Timeout | undefined;
  const limit = new Promise<number>((resolve) => (timer = setTimeout(() => resolve(Infinity), ms)));
  return Promise.race([p.then(() => performance.now() - t0), limit]).finally(() => clearTimeout(timer));
}

/** Under CLIENT PAUSE … WRITE: waits until some client is held on an XADD (the write the test stopped). */
export async function heldOnXadd(client: { call(...args: string[]): Promise<unknown> }, what = 'a write held by the paused writes'): Promise<void> {
  await waitFor(async () => String(await client.call('CLIENT', 'LIST')).split('\n').some((c) => / flags=b .* cmd=xadd /.test(c)), what);
}
