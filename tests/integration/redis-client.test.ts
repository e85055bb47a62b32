import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Redis } from 'ioredis';
import type { Logger } from 'pino';
import { afterAll, afterEach, beforeAll, describe, expect, it, vi } from 'vitest';
import {
  clusterOptions, connectRedis, duplicateConnection, isClusterUrl, openRedis, redisOptionsFromUrl, scanKeys, type RedisConnection,
} from '../../engine/runtime/redis-client.ts';
import { freePort, startRedisServer, type OwnedRedis } from '../../engine/runtime/redis-server.ts';
import { waitFor } from '../helpers/redis.ts';

// How the engine reaches Redis: telling a cluster node from a single server (and not waiting for
// ever on either), the options every connection gets, and what it logs of an outage.

let dir: string;
let single: OwnedRedis;
let clusterNode: OwnedRedis;
const opened: RedisConnection[] = [];

beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'synapse-redis-client-'));
  single = await startRedisServer({ dir: join(dir, 'single'), persistent: true });
  // A node with cluster mode on answers `cluster_enabled:1` before any slot is assigned.
  clusterNode = await startRedisServer({ dir: join(dir, 'cluster'), args: ['--cluster-enabled', 'yes'] });
});
afterEach(() => {
  for (const c of opened.splice(0)) c.disconnect();
});
afterAll(async () => {
  await single?.stop();
  await clusterNode?.stop();
  await rm(dir, { recursive: true, force: true });
});

describe('isClusterUrl', () => {
  it('asks the server: a single server is not a cluster, a node with cluster mode on is', async () => {
    expect(await isClusterUrl(single.url, {})).toBe(false);
    expect(await isClusterUrl(clusterNode.url, {})).toBe(true);
  });

  it('SYNAPSE_REDIS_CLUSTER decides without asking, in any case; another value asks', async () => {
    for (const yes of ['yes', 'TRUE', '1']) expect(await isClusterUrl(single.url, { SYNAPSE_REDIS_CLUSTER: yes }), yes).toBe(true);
    for (const no of ['No', 'false', '0']) expect(await isClusterUrl(clusterNode.url, { SYNAPSE_REDIS_CLUSTER: no }), no).toBe(false);
    expect(await isClusterUrl(clusterNode.url, { SYNAPSE_REDIS_CLUSTER: 'maybe' })).toBe(true);
  });

  it('nothing listening: not a cluster, and nothing printed (no ioredis "Unhandled error event")', async () => {
    const printed = vi.spyOn(console, 'error').mockImplementation(() => undefined);
    try {
      expect(await isClusterUrl(`redis://127.0.0.1:${await freePort()}`, {}, 1000)).toBe(false);
      await new Promise((r) => setTimeout(r, 200));
      expect(printed.mock.calls).toEqual([]);
    } finally {
      printed.mockRestore();
    }
  });

  it('the probe leaves no connection behind', async () => {
    const admin = new Redis(single.url);
    opened.push(admin);
    const clients = async () => String(await admin.client('LIST')).trim().split('\n').length;
    const before = await clients();
    expect(await isClusterUrl(single.url, {})).toBe(false);
    await waitFor(async () => (await clients()) === before, 'the probe connection closed', 2_000);
    // Still closed a moment later (a probe left open stays listed).
    await new Promise((r) => setTimeout(r, 200));
    expect(await clients()).toBe(before);
  });

  it('a server that accepts the connection and never answers is taken for a single server once its time limit has passed', async () => {
    const frozen = await startRedisServer({ dir: join(dir, 'frozen') });
    process.kill(frozen.pid, 'SIGSTOP');
    try {
      const answer = isClusterUrl(frozen.url, {}, 300);
      const never = new Promise((resolve) => setTimeout(() => resolve('no answer within 10 s'), 10_000).unref());
      expect(await Promise.race([answer, never])).toBe(false);
    } finally {
      process.kill(frozen.pid, 'SIGCONT');
      await frozen.stop();
    }
  });
});

describe('options from a URL', () => {
  it('redisOptionsFromUrl: host, port, decoded credentials, db and TLS; defaults for what the URL leaves out', () => {
    expect(redisOptionsFromUrl('rediss://us%40r:p%3Ass@cache.internal:6380/3')).toEqual({
      host: 'cache.internal', port: 6380, username: 'us@r', password: 'p:ss', db: 3, tls: {}, maxRetriesPerRequest: null,
    });
    expect(redisOptionsFromUrl('redis://cache.internal')).toEqual({ host: 'cache.internal', port: 6379, maxRetriesPerRequest: null });
    expect(redisOptionsFromUrl('redis://:secret@10.0.0.5:7000/')).toEqual({ host: '10.0.0.5', port: 7000, password: 'secret', maxRetriesPerRequest: null });
    expect(redisOptionsFromUrl('redis://')).toEqual({ host: '127.0.0.1', port: 6379, maxRetriesPerRequest: null });
  });

  it('clusterOptions: the node named is where it starts; every node gets its credentials and TLS', () => {
    const { nodes, options } = clusterOptions('rediss://u:p@node-1:7001', { connectionName: 'synapse' });
    expect(nodes).toEqual([{ host: 'node-1', port: 7001 }]);
    expect(options.redisOptions).toMatchObject({ username: 'u', password: 'p', tls: {}, maxRetriesPerRequest: null, connectionName: 'synapse' });
    expect(options.enableAutoPipelining).toBe(true);
    expect(options.maxRedirections).toBeGreaterThan(16); // ioredis's default gives up during a resharding
    const plain = clusterOptions('redis://node-2:7002', { enableAutoPipelining: false });
    expect(plain.options.enableAutoPipelining).toBe(false);
    expect(plain.options.redisOptions).not.toHaveProperty('password');
    expect(plain.options.redisOptions).not.toHaveProperty('tls');
    // Reconnecting backs off, up to 5 s, and never gives up.
    const retry = plain.options.clusterRetryStrategy!;
    expect([1, 2, 3, 6, 7, 100].map((n) => retry(n, undefined as never))).toEqual([200, 400, 800, 5000, 5000, 5000]);
  });
});

describe('connections', () => {
  it('scanKeys walks every page of the keyspace; duplicateConnection reaches the same server with its own options', async () => {
    const redis = new Redis(single.url);
    opened.push(redis);
    await redis.flushall();
    const pipeline = redis.pipeline();
    for (let i = 0; i < 1200; i++) pipeline.set(`scan:${i}`, '1');
    pipeline.set('other', '1');
    await pipeline.exec();
    const keys = await scanKeys(redis, 'scan:*');
    expect(new Set(keys).size).toBe(1200);
    expect(keys.every((k) => k.startsWith('scan:'))).toBe(true);

    const twin = duplicateConnection(redis, { connectionName: 'twin' });
    opened.push(twin);
    expect(await twin.get('other')).toBe('1');
    expect(await twin.client('GETNAME')).toBe('twin');
  });

  it('openRedis opens a plain connection to a single server, with the options given', async () => {
    const redis = await openRedis(single.url, { connectionName: 'it-open', maxRetriesPerRequest: 3 });
    opened.push(redis);
    expect(redis).toBeInstanceOf(Redis);
    expect(await redis.client('GETNAME')).toBe('it-open');
    expect((redis as Redis).options.maxRetriesPerRequest).toBe(3);
  });

  it('connectRedis to a Redis that cannot say whether it is a cluster node warns that it takes it for a single server', async () => {
    const lines: { fields: Record<string, unknown>; msg: string }[] = [];
    const logger = { warn: (fields: Record<string, unknown>, msg: string) => lines.push({ fields, msg }), info: () => undefined } as unknown as Logger;
    const redis = await connectRedis(`redis://127.0.0.1:${await freePort()}`, logger, 'it-nothing');
    opened.push(redis);
    expect(lines[0]).toEqual({
      fields: { connection: 'it-nothing', timeoutMs: 5000 },
      msg: 'redis did not answer whether it is a cluster node: taking it for a single server (set SYNAPSE_REDIS_CLUSTER=yes for a cluster)',
    });
    expect(redis).toBeInstanceOf(Redis);
  });

  it('connectRedis logs each outage once, and once more when Redis is back; commands wait for it', async () => {
    const lines: { level: string; fields: Record<string, unknown>; msg: string }[] = [];
    const at = (level: string) => (fields: Record<string, unknown>, msg: string) => lines.push({ level, fields, msg });
    const logger = { warn: at('warn'), info: at('info') } as unknown as Logger;
    const redis = await connectRedis(single.url, logger, 'it-conn');
    opened.push(redis);
    await redis.set('outage', 'before');
    expect(await redis.client('GETNAME')).toBe('it-conn');
    expect(redis.options).toMatchObject({ enableAutoPipelining: true, maxRetriesPerRequest: null });
    await single.stop();
    await waitFor(() => lines.length > 0, 'the outage logged');
    // Reconnect attempts fail again and again meanwhile: still one line.
    await new Promise((r) => setTimeout(r, 700));
    const waiting = redis.get('outage');
    await single.restart();
    expect(await waiting).toBe('before');
    await waitFor(() => lines.length === 2, 'the return logged');
    expect(lines).toEqual([
      { level: 'warn', fields: { connection: 'it-conn', err: expect.stringMatching(/ECONNREFUSED|ECONNRESET|Connection is closed/) }, msg: 'redis unavailable; reconnecting with back-off' },
      { level: 'info', fields: { connection: 'it-conn' }, msg: 'redis connection restored' },
    ]);
    // A second outage is logged as the first was.
    await single.stop();
    await waitFor(() => lines.length === 3, 'the second outage logged');
    await single.restart();
    expect(await redis.get('outage')).toBe('before');
    await waitFor(() => lines.length === 4, 'the second return logged');
    expect(lines.slice(2).map((l) => `${l.level} ${l.msg}`)).toEqual(['warn redis unavailable; reconnecting with back-off', 'info redis connection restored']);
  });
});
