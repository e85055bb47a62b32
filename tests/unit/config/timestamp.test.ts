import { describe, expect, it } from 'vitest';
import { isTimestamp, normalizeTimestamp, parseTimestamp } from '../../../engine/config/timestamp.ts';

describe('timestamps as the producers write them', () => {
  const valid = [
    '2026-12-01T14:05:00.123456', // Python datetime.utcnow().isoformat()
    '2026-12-01T14:05:00', // the same with microsecond 0: isoformat() leaves the fraction out
    '2026-12-01T14:05:00.123Z', // new Date().toISOString()
    '2026-12-01T14:05:00.123456+00:00', // datetime.now(timezone.utc).isoformat()
    '2026-12-01T16:05:00+0200',
    '2024-02-29T00:00:00',
  ];
  const invalid = ['2026-12-01', '2026-12-01 14:05', 'yesterday', '2026-13-01T00:00:00', '2026-02-30T00:00:00', '2026-12-01T24:00:00', '2026-12-01T14:05:00+25:00', ''];
  for (const s of valid) it(`accepts ${s}`, () => expect(isTimestamp(s)).toBe(true));
  for (const s of invalid) it(`refuses ${JSON.stringify(s)}`, () => expect(isTimestamp(s)).toBe(false));

  it('takes a timestamp without an offset as UTC, whatever the host time zone', () => {
    expect(parseTimestamp('2026-12-01T14:05:00.123456')).toBe(Date.UTC(2026, 11, 1, 14, 5, 0, 123));
    expect(parseTimestamp('2026-12-01T16:05:00+0200')).toBe(Date.UTC(2026, 11, 1, 14, 5, 0));
    expect(parseTimestamp('not a time')).toBeNaN();
  });

  it('normalises by giving a naive timestamp the Z it means, and leaves the others alone', () => {
    expect(normalizeTimestamp('2026-12-01T14:05:00.123456')).toBe('2026-12-01T14:05:00.123456Z');
    expect(normalizeTimestamp('2026-12-01T14:05:00+01:00')).toBe('2026-12-01T14:05:00+01:00');
    expect(normalizeTimestamp('2026-12-01T14:05:00Z')).toBe('2026-12-01T14:05:00Z');
  });
});
