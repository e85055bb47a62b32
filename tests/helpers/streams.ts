import type { RedisConnection as Redis } from '../../engine/runtime/redis-client.ts';

/** One stream entry, its fields as an object. */
export interface Entry {
  id: string;
  fields: Record<string, string>;
}

function toFields(flat: string[]): Record<string, string> {
  const out: Record<string, string> = {};
  for (let i = 0; i < flat.length; i += 2) out[flat[i]!] = flat[i + 1]!;
  return out;
}

/** Every entry of a stream, oldest first (read in pages, so long streams are fine). */
export async function readStream(redis: Redis, stream: string, page = 2000): Promise<Entry[]> {
  const out: Entry[] = [];
  let start = '-';
  for (;;) {
    const rows = (await redis.xrange(stream, start, '+', 'COUNT', page)) as [string, string[]][];
    for (const [id, flat] of rows) out.push({ id, fields: toFields(flat) });
    if (rows.length < page) return out;
    start = `(${rows[rows.length - 1]![0]}`;
  }
}

/** The JSON `payload` of every entry of a stream (what the publish sink writes). */
export async function readPayloads<T = Record<string, unknown>>(redis: Redis, stream: string): Promise<T[]> {
  return (await readStream(redis, stream)).map((e) => JSON.parse(e.fields.payload!) as T);
}

/** XADDs each event as a `payload` field, pipelined `chunk` at a time; returns the entry ids. */
export async function addEvents(redis: Redis, stream: string, events: readonly (Record<string, unknown> | string)[], chunk = 1000): Promise<string[]> {
  const ids: string[] = [];
  for (let i = 0; i < events.length; i += chunk) {
    const multi = redis.pipeline();
    for (const e of events.slice(i, i + chunk)) multi.xadd(stream, '*', 'payload', typeof e === 'string' ? e : JSON.stringify(e));
    const results = (await multi.exec()) ?? [];
    for (const [err, id] of results) {
      if (err) throw err;
      ids.push(id as string);
    }
  }
  return ids;
}

/** The group's pending entries: total and per consumer (XPENDING summary form). */
export async function pendingSummary(redis: Redis, stream: string, group: string): Promise<{ count: number; consumers: Record<string, number> }> {
  const reply = (await redis.xpending(stream, group)) as [number, string | null, string | null, [string, string][] | null];
  const consumers: Record<string, number> = {};
  for (const [name, n] of reply[3] ?? []) consumers[name] = Number(n);
  return { count: Number(reply[0]), consumers };
}

/** The consumers of a group, as XINFO CONSUMERS lists them. */
export async function groupConsumers(redis: Redis, stream: string, group: string): Promise<{ name: string; pending: number }[]> {
  const rows = (await redis.xinfo('CONSUMERS', stream, group)) as unknown[][];
  return rows.map((row) => {
    const info: Record<string, unknown> = {};
    for (let i = 0; i < row.length; i += 2) info[String(row[i])] = row[i + 1];
    return { name: String(info.name), pending: Number(info.pending) };
  });
}

/** How many times each value occurs in `values` beyond the first: { distinct, duplicates }. */
export function countDuplicates(values: readonly (string | number)[]): { distinct: number; duplicates: number } {
  const distinct = new Set(values).size;
  return { distinct, duplicates: values.length - distinct };
}

/** Whether the group has been handed every entry up to `lastId` and has acknowledged them all. */
export async function groupSettledThrough(redis: Redis, stream: string, group: string, lastId: string): Promise<boolean> {
  const rows = (await redis.xinfo('GROUPS', stream)) as unknown[][];
  for (const row of rows) {
    const info: Record<string, unknown> = {};
    for (let i = 0; i < row.length; i += 2) info[String(row[i])] = row[i + 1];
    if (info.name !== group) continue;
    const [dm, ds] = String(info['last-delivered-id']).split('-').map(BigInt) as [bigint, bigint];
    const [lm, ls] = lastId.split('-').map(BigInt) as [bigint, bigint];
    const delivered = dm > lm || (dm === lm && ds >= ls);
    return delivered && Number(info.pending) === 0;
  }
  return false;
}
