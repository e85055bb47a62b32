import { createHash } from 'node:crypto';
import type { RedisConnection } from './redis-client.ts';

/**
 * A Lua script run by its SHA1 (EVALSHA), sent whole (EVAL) only when the server does not have it
 * yet. Works on any connection as it is: unlike ioredis's defineCommand, nothing is added to the
 * connection, so an auto-pipelined call made before the first definition cannot miss the command.
 */
export class LuaScript {
  private readonly sha: string;

  constructor(readonly source: string) {
    this.sha = createHash('sha1').update(source).digest('hex');
  }

  /** Runs the script with `keys` as KEYS and `args` as ARGV. */
  async run<T>(redis: RedisConnection, keys: readonly string[], args: readonly (string | number)[]): Promise<T> {
    try {
      return (await redis.evalsha(this.sha, keys.length, ...keys, ...args)) as T;
    } catch (err) {
      if (!String((err as Error).message).startsWith('NOSCRIPT')) throw err;
      return (await redis.eval(this.source, keys.length, ...keys, ...args)) as T;
    }
  }
}
