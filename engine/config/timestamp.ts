/**
 * Event timestamps as the platform's producers write them: ISO 8601 date-times, with an offset
 * (`new Date().toISOString()`: `2026-12-01T14:05:00.123Z`) or without one (Python's
 * `datetime.utcnow().isoformat()`: `2026-12-01T14:05:00.123456`). A timestamp without an offset
 * is taken as UTC, which is what `utcnow()` means.
 */

/** The `format` name schemas use for such timestamps (common.json `$defs/timestamp`). */
export const TIMESTAMP_FORMAT = 'iso-timestamp';

const TIMESTAMP = /^(\d{4})-(\d{2})-(\d{2})[Tt](\d{2}):(\d{2}):(\d{2})(\.\d+)?([Zz]|[+-]\d{2}:?\d{2})?$/;

/** Whether `s` is an ISO 8601 date-time, with or without an offset, naming a real instant. */
export function isTimestamp(s: string): boolean {
  const m = TIMESTAMP.exec(s);
  if (!m) return false;
  const [, y, mo, d, h, mi, sec, , offset] = m;
  const month = Number(mo), day = Number(d);
  if (month < 1 || month > 12 || day < 1 || day > daysIn(Number(y), month)) return false;
  if (Number(h) > 23 || Number(mi) > 59 || Number(sec) > 60) return false;
  if (offset && offset.length > 1) {
    const digits = offset.replace(':', '');
    if (Number(digits.slice(1, 3)) > 23 || Number(digits.slice(3, 5)) > 59) return false;
  }
  return true;
}

/** The timestamp with an offset: `Z` appended when it has none (taken as UTC); else unchanged. */
export function normalizeTimestamp(s: string): string {
  const m = TIMESTAMP.exec(s);
  return m && !m[8] ? `${s}Z` : s;
}

/** Milliseconds since the epoch; a timestamp without an offset is UTC. NaN when not a timestamp. */
export function parseTimestamp(s: string): number {
  return isTimestamp(s) ? Date.parse(normalizeTimestamp(s).replace(/([+-]\d{2})(\d{2})$/, '$1:$2')) : Date.parse(s);
}

function daysIn(year: number, month: number): number {
  return new Date(Date.UTC(year, month, 0)).getUTCDate();
}
