import type { RedisConnection } from './redis-client.ts';
import { toRecord } from './stream-reader.ts';
import { compareIds, nextId } from './stream-ids.ts';

/** At most one trim per stream per this interval, whatever the write rate. */
export const TRIM_INTERVAL_MS = 1000;

/**
 * The oldest entry some consumer group of `stream` still needs: its oldest pending entry, or
 * the first entry after what it was last delivered. Undefined when no group reads the stream.
 */
export async function retentionFloor(redis: RedisConnection, stream: string): Promise<string | undefined> {
  let floor: string | undefined;
  const groups = (await redis.xinfo('GROUPS', stream)) as unknown[][];
  for (const row of groups) {
    const g = toRecord(row);
    let needed = nextId(String(g['last-delivered-id']));
    if (Number(g.pending) > 0) {
      const summary = (await redis.xpending(stream, String(g.name))) as [number, string | null, string | null, unknown];
      if (summary[1] && compareIds(summary[1], needed) < 0) needed = summary[1];
    }
    if (!floor || compareIds(needed, floor) < 0) floor = needed;
  }
  return floor;
}

/**
 * Trims `stream` to about `maxlen` entries without ever removing an entry a consumer group has
 * not acknowledged (SPEC §11). The cut is estimated from the stream's first and last ids (entries
 * are assumed spread evenly in time), then held back to the retention floor; XTRIM MINID ~ keeps
 * it cheap. Returns how many entries were removed.
 */
export async function trimSafely(redis: RedisConnection, stream: string, maxlen: number): Promise<number> {
  const info = toRecord((await redis.xinfo('STREAM', stream)) as unknown[]);
  const length = Number(info.length);
  if (length <= maxlen) return 0;
  const first = (info['first-entry'] as [string, unknown] | null)?.[0];
  const last = (info['last-entry'] as [string, unknown] | null)?.[0];
  if (!first || !last) return 0;
  const [f, l] = [Number(first.split('-')[0]), Number(last.split('-')[0])];
  const cutMs = Math.floor(f + ((l - f) * (length - maxlen)) / length);
  let cut = `${cutMs}-0`;
  const floor = await retentionFloor(redis, stream);
  if (floor && compareIds(floor, cut) < 0) cut = floor;
  return Number(await redis.xtrim(stream, 'MINID', '~', cut));
}

const lastTrim = new WeakMap<RedisConnection, Map<string, number>>();

/**
 * Asks for `stream` to be kept near `maxlen`: trims at most once a second per stream and
 * connection, in the background; a failed trim is retried on a later call.
 */
export function requestTrim(redis: RedisConnection, stream: string, maxlen: number): void {
  let streams = lastTrim.get(redis);
  if (!streams) lastTrim.set(redis, (streams = new Map()));
  const now = Date.now();
  if (now - (streams.get(stream) ?? 0) < TRIM_INTERVAL_MS) return;
  streams.set(stream, now);
  trimSafely(redis, stream, maxlen).catch(() => streams!.delete(stream));
}
