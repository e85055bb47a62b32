/**
 * Turns what a person writes for a point in a stream into an XRANGE bound: a stream id
 * (`1732610000000-0`), a millisecond timestamp, `-`/`+`, or an ISO 8601 time.
 * Undefined when it is none of these.
 */
export function toStreamBound(value: string): string | undefined {
  const v = value.trim();
  if (v === '-' || v === '+' || /^[0-9]+(-[0-9]+)?$/.test(v)) return v;
  const ms = Date.parse(v);
  return Number.isNaN(ms) ? undefined : String(ms);
}

/** The time (ms since the epoch) a stream id was written at. */
export function idTime(id: string): number {
  return Number(id.split('-')[0]);
}

/** Orders two stream ids (`ms-seq`): negative, zero or positive. */
export function compareIds(a: string, b: string): number {
  const [am, as] = a.split('-').map(BigInt) as [bigint, bigint];
  const [bm, bs] = b.split('-').map(BigInt) as [bigint, bigint];
  return am === bm ? (as === bs ? 0 : as < bs ? -1 : 1) : am < bm ? -1 : 1;
}

/** The largest of some stream ids. */
export function maxId(ids: readonly string[]): string {
  let best = ids[0]!;
  for (const id of ids) if (compareIds(id, best) > 0) best = id;
  return best;
}

/** The id right after `id` (the smallest id greater than it). */
export function nextId(id: string): string {
  const [ms, seq] = id.split('-') as [string, string];
  return `${ms}-${BigInt(seq) + 1n}`;
}
