import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import type { Logger } from 'pino';
import { DlqLog } from '../../../engine/runtime/dlq-log.ts';
import type { Outcome } from '../../../engine/runner/pipeline-runner.ts';

// One warn line per pipeline per interval: the first dead-lettered event at once, then how many
// more when the interval ends.
const dlq = (id: string, stage: 'transform' | 'sink', error: string, sink?: string): Outcome =>
  ({ id, kind: 'dlq', stage, error, attempts: 3, payload: '{}', ...(sink ? { sink } : {}) });

let lines: { fields: Record<string, unknown>; msg: string }[];
const logger = { warn: (fields: Record<string, unknown>, msg: string) => lines.push({ fields, msg }) } as unknown as Logger;

beforeEach(() => {
  lines = [];
  vi.useFakeTimers();
});
afterEach(() => vi.useRealTimers());

describe('DlqLog', () => {
  it('logs the first at once, naming its sink; the rest are counted and logged when the interval ends', () => {
    const log = new DlqLog(logger, 2000);
    const latest = log.record('p', 'in:dlq', [dlq('1-0', 'sink', 'refused', 'hook'), dlq('2-0', 'transform', 'boom'), { id: '3-0', kind: 'filtered', event: 1 }]);
    expect(latest).toMatchObject({ id: '2-0', stage: 'transform', reason: 'boom', attempts: 3 });
    expect(lines).toEqual([{
      fields: { pipeline: 'p', dlq: 'in:dlq', stage: 'sink', sink: 'hook', reason: 'refused', id: '1-0', attempts: 3 },
      msg: 'event dead-lettered at sink (sink hook): refused',
    }]);
    log.record('p', 'in:dlq', [dlq('4-0', 'sink', 'down', 'hook')]);
    expect(lines).toHaveLength(1);

    vi.advanceTimersByTime(2000);
    expect(lines).toHaveLength(2);
    expect(lines[1]).toEqual({
      fields: { pipeline: 'p', dlq: 'in:dlq', count: 2, intervalMs: 2000, stage: 'sink', sink: 'hook', reason: 'down', id: '4-0' },
      msg: '2 more events dead-lettered in 2 s; latest at sink: down',
    });
    // The next one opens a new interval: logged at once.
    log.record('p', 'in:dlq', [dlq('5-0', 'transform', 'again')]);
    expect(lines[2]!.msg).toBe('event dead-lettered at transform: again');
  });

  it('one more is "1 more event"; an interval with none more logs nothing at its end', () => {
    const log = new DlqLog(logger, 1000);
    log.record('a', 'a:dlq', [dlq('1-0', 'transform', 'x'), dlq('2-0', 'transform', 'y')]);
    log.record('b', 'b:dlq', [dlq('3-0', 'transform', 'z')]);
    vi.advanceTimersByTime(1000);
    expect(lines.map((l) => l.msg)).toEqual([
      'event dead-lettered at transform: x',
      'event dead-lettered at transform: z',
      '1 more event dead-lettered in 1 s; latest at transform: y',
    ]);
  });

  it('flush ends every open interval at once (at shutdown)', () => {
    const log = new DlqLog(logger, 60_000);
    log.record('p', 'p:dlq', [dlq('1-0', 'transform', 'x'), dlq('2-0', 'transform', 'y')]);
    log.flush();
    expect(lines.map((l) => l.msg)).toEqual(['event dead-lettered at transform: x', '1 more event dead-lettered in 60 s; latest at transform: y']);
    vi.advanceTimersByTime(60_000);
    expect(lines).toHaveLength(2);
  });
});
