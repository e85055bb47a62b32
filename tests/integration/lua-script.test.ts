import type { Redis } from 'ioredis';
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { LuaScript } from '../../engine/runtime/lua-script.ts';
import { startTestRedis, type TestRedis } from '../helpers/redis.ts';

/** Calls of each scripting command since the last CONFIG RESETSTAT. */
async function scriptCalls(redis: Redis): Promise<{ eval: number; evalsha: number }> {
  const info = await redis.info('commandstats');
  const calls = (command: string): number => Number(new RegExp(`^cmdstat_${command}:calls=(\\d+)`, 'm').exec(info)?.[1] ?? 0);
  return { eval: calls('eval'), evalsha: calls('evalsha') };
}

// The settle and redrive scripts run through LuaScript: by SHA1 once the server knows the script,
// whole only when it does not, and exactly once per call whatever the script answers.
describe('LuaScript', () => {
  let server: TestRedis;
  let redis: Redis;

  beforeAll(async () => {
    // A server of its own: its command counters see only this file.
    server = await startTestRedis({ own: true });
    redis = server.client();
  });
  afterAll(async () => server?.close());
  beforeEach(async () => {
    await redis.script('FLUSH');
    await redis.config('RESETSTAT');
  });

  it('sends the script whole once, then runs it by its SHA1', async () => {
    const script = new LuaScript("return redis.call('INCR', KEYS[1]) + tonumber(ARGV[1])");
    const key = 'lua-script:count';
    expect(await script.run<number>(redis, [key], [10])).toBe(11);
    expect(await script.run<number>(redis, [key], [10])).toBe(12);
    expect(await scriptCalls(redis)).toEqual({ evalsha: 2, eval: 1 });
    // After the server forgets it (a restart, SCRIPT FLUSH), the next call sends it whole again.
    await redis.script('FLUSH');
    expect(await script.run<number>(redis, [key], [0])).toBe(3);
    expect(await scriptCalls(redis)).toEqual({ evalsha: 3, eval: 2 });
  });

  it('runs a script that fails once: the error is the caller\'s, not a reason to send it again', async () => {
    // A script may fail after it wrote (Redis keeps what a script did before its error): running
    // it again would write twice.
    const script = new LuaScript("redis.call('INCR', KEYS[1]); return redis.error_reply('REFUSED by the script')");
    const key = 'lua-script:failing';
    await expect(script.run(redis, [key], [])).rejects.toThrow(/^REFUSED by the script/);
    expect(await redis.get(key)).toBe('1');
    // Now the server knows it: the failing EVALSHA is not followed by an EVAL.
    await expect(script.run(redis, [key], [])).rejects.toThrow(/^REFUSED by the script/);
    expect(await redis.get(key)).toBe('2');
    expect(await scriptCalls(redis)).toEqual({ evalsha: 2, eval: 1 });
  });
});
