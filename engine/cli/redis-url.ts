import { resolve } from 'node:path';
import type { Logger } from 'pino';
import { RedisUnavailableError } from '../errors.ts';
import { redisAnswers, redisServerOnPath, startManagedRedis, type OwnedRedis } from '../runtime/redis-server.ts';

export const DEFAULT_REDIS_URL = 'redis://127.0.0.1:6379';

/** The Redis URL a command uses: --redis, else REDIS_URL, else the default. */
export function redisUrlFrom(opts: { redis?: string }): string {
  return opts.redis ?? process.env.REDIS_URL ?? DEFAULT_REDIS_URL;
}

/**
 * Redis for `synapse run` (SPEC §7): --redis or REDIS_URL when given; else 127.0.0.1:6379 when
 * something answers there; else a redis-server of our own with its data under `.synapse/`;
 * else a RedisUnavailableError saying how to get Redis.
 */
export async function resolveRunRedis(opts: { redis?: string }, logger: Logger): Promise<{ url: string; owned?: OwnedRedis }> {
  const given = opts.redis ?? process.env.REDIS_URL;
  if (given) return { url: given };
  if (await redisAnswers('127.0.0.1', 6379)) return { url: DEFAULT_REDIS_URL };
  if (!(await redisServerOnPath())) {
    throw new RedisUnavailableError([
      'no Redis: nothing answers on 127.0.0.1:6379, REDIS_URL is not set, and redis-server is not on PATH.',
      'Either install Redis (Debian/Ubuntu: sudo apt-get install redis-server; macOS: brew install redis),',
      'or point Synapse at one: REDIS_URL=redis://host:6379 npm start (or --redis URL).',
    ].join('\n'));
  }
  const root = resolve(process.env.SYNAPSE_HOME ?? '.synapse');
  const managed = await startManagedRedis(root);
  logger.info({ url: managed.url, dir: `${root}/redis`, reused: !managed.owned }, managed.owned
    ? 'no Redis on 127.0.0.1:6379: started a redis-server of our own (persistent, data under .synapse/)'
    : 'using the redis-server started by an earlier run');
  return managed;
}
