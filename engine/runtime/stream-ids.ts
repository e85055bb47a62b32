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
