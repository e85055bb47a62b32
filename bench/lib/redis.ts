import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Redis } from 'ioredis';
import { startRedisServer } from '../../engine/runtime/redis-server.ts';
import { toRecord } from '../../engine/runtime/stream-reader.ts';

/** The Redis a bench run uses, and how to let go of it. */
export interface BenchRedis {
  url: string;
  /** True when the bench started this server itself (and will stop it). */
  owned: boolean;
  /** `redis_version` from INFO server. */
  version: string;
  /** A control connection for loading, copying and checking (not used by either side under test). */
  control: Redis;
  /** Closes the control connection; stops and removes the server when the bench owns it. */
  close(): Promise<void>;
}

/**
 * REDIS_URL when set; otherwise a non-persistent redis-server of our own on a free 127.0.0.1
 * port, its files in a temp dir that is removed afterwards.
 */
export async function acquireRedis(env: NodeJS.ProcessEnv = process.env): Promise<BenchRedis> {
  let url = env.REDIS_URL;
  let cleanup = async () => undefined as void;
  if (!url) {
    const dir = await mkdtemp(join(tmpdir(), 'synapse-bench-redis-'));
    const server = await startRedisServer({ dir, persistent: false });
    url = server.url;
    cleanup = async () => {
      await server.stop();
      await rm(dir, { recursive: true, force: true });
    };
  }
  const control = new Redis(url, { maxRetriesPerRequest: 3, connectionName: 'synapse-bench:control' });
  const info = await control.info('server');
  const version = /redis_version:(\S+)/.exec(info)?.[1] ?? 'unknown';
  return {
    url,
    owned: !env.REDIS_URL,
    version,
    control,
    async close() {
      control.disconnect();
      await cleanup();
    },
  };
}

/** CPU seconds (user + system) the Redis server has used since it started, from INFO cpu. */
export async function redisCpuSeconds(redis: Redis): Promise<number> {
  const info = await redis.info('cpu');
  const field = (name: string) => Number(new RegExp(`^${name}:([0-9.]+)`, 'm').exec(info)?.[1] ?? 0);
  return field('used_cpu_user') + field('used_cpu_sys');
}

/** A consumer group's progress, from XINFO GROUPS. */
export interface GroupState {
  /** Entries not yet delivered to the group (null when Redis cannot tell). */
  lag: number | null;
  /** Entries delivered but not acknowledged. */
  pending: number;
  /** Entries the group has read so far (Redis ≥ 7). */
  entriesRead: number | null;
}

/** The state of `group` on `stream`, or undefined when the group does not exist. */
export async function groupState(redis: Redis, stream: string, group: string): Promise<GroupState | undefined> {
  const rows = (await redis.xinfo('GROUPS', stream)) as unknown[][];
  for (const row of rows) {
    const info = toRecord(row);
    if (info['name'] !== group) continue;
    const num = (v: unknown) => (v === null || v === undefined ? null : Number(v));
    return { lag: num(info['lag']), pending: Number(info['pending']), entriesRead: num(info['entries-read']) };
  }
  return undefined;
}

/** Whether the group has read all of `total` entries and acknowledged every one. */
export function isDrained(state: GroupState | undefined, total: number): boolean {
  if (!state) return false;
  const allRead = state.entriesRead !== null ? state.entriesRead >= total : state.lag === 0;
  return allRead && state.lag === 0 && state.pending === 0;
}

/** Deletes every key starting with `prefix` (the bench's own keys only, never a FLUSH). */
export async function deleteKeys(redis: Redis, prefix: string): Promise<number> {
  let cursor = '0';
  let deleted = 0;
  do {
    const [next, keys] = await redis.scan(cursor, 'MATCH', `${prefix}*`, 'COUNT', 1000);
    cursor = next;
    if (keys.length) deleted += await redis.unlink(...keys);
  } while (cursor !== '0');
  return deleted;
}
