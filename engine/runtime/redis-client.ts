import { Redis, type RedisOptions } from 'ioredis';
import type { Logger } from 'pino';

/**
 * A connection that never gives up: it reconnects with back-off for as long as Redis is away,
 * and commands wait for it rather than fail (maxRetriesPerRequest: null), so an outage pauses
 * the engine instead of failing entries. Logs once when Redis goes away and once when it is back.
 */
export function connectRedis(url: string, logger: Logger, name: string, extra: RedisOptions = {}): Redis {
  const redis = new Redis(url, {
    maxRetriesPerRequest: null,
    enableAutoPipelining: true,
    connectionName: name,
    retryStrategy: (times) => Math.min(100 * 2 ** Math.min(times, 6), 5_000),
    ...extra,
  });
  watchConnection(redis, logger, name);
  return redis;
}

/** Logs a connection's outages (once each) instead of ioredis's unhandled-error noise. */
export function watchConnection(redis: Redis, logger: Logger, name: string): void {
  let down = false;
  redis.on('error', (err: Error) => {
    if (down) return;
    down = true;
    logger.warn({ connection: name, err: err.message }, 'redis unavailable; reconnecting with back-off');
  });
  redis.on('ready', () => {
    if (!down) return;
    down = false;
    logger.info({ connection: name }, 'redis connection restored');
  });
}

/**
 * Connection options for libraries that open (and close) their own connections, such as
 * BullMQ: host, port, credentials and db from a redis:// or rediss:// URL.
 */
export function redisOptionsFromUrl(url: string): RedisOptions {
  const u = new URL(url);
  return {
    host: u.hostname || '127.0.0.1',
    port: u.port ? Number(u.port) : 6379,
    ...(u.username ? { username: decodeURIComponent(u.username) } : {}),
    ...(u.password ? { password: decodeURIComponent(u.password) } : {}),
    ...(u.pathname && u.pathname.length > 1 ? { db: Number(u.pathname.slice(1)) } : {}),
    ...(u.protocol === 'rediss:' ? { tls: {} } : {}),
    maxRetriesPerRequest: null,
  };
}
