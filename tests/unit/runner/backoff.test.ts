import { getEventListeners } from 'node:events';
import { describe, expect, it } from 'vitest';
import type { RetryPolicy } from '../../../engine/config/load-pipeline.ts';
import { backoffDelay, sleep } from '../../../engine/runner/backoff.ts';

const exponential: RetryPolicy = { attempts: 10, backoff: 'exponential', delayMs: 100, maxDelayMs: 1000 };

describe('backoffDelay', () => {
  it('fixed: always delay_ms', () => {
    const fixed: RetryPolicy = { ...exponential, backoff: 'fixed', delayMs: 250 };
    expect([1, 2, 5].map((a) => backoffDelay(fixed, a, () => 0.99))).toEqual([250, 250, 250]);
  });

  const cases: { attempt: number; random: number; expected: number }[] = [
    { attempt: 1, random: 0.5, expected: 100 },
    { attempt: 2, random: 0.5, expected: 200 },
    { attempt: 3, random: 0.5, expected: 400 },
    { attempt: 4, random: 0.5, expected: 800 },
    // Capped at max_delay_ms before jitter.
    { attempt: 5, random: 0.5, expected: 1000 },
    { attempt: 30, random: 0.5, expected: 1000 },
    // Jitter is ±20%.
    { attempt: 1, random: 0, expected: 80 },
    { attempt: 1, random: 1, expected: 120 },
    { attempt: 5, random: 1, expected: 1200 },
  ];
  for (const c of cases) {
    it(`exponential: attempt ${c.attempt}, random ${c.random} → ${c.expected} ms`, () => {
      expect(backoffDelay(exponential, c.attempt, () => c.random)).toBe(c.expected);
    });
  }
});

describe('sleep', () => {
  it('resolves true when the time is up', async () => {
    expect(await sleep(0)).toBe(true);
  });

  it('resolves false at once when the signal is already aborted', async () => {
    const c = new AbortController();
    c.abort();
    expect(await sleep(60_000, c.signal)).toBe(false);
  });

  it('resolves false as soon as the signal aborts', async () => {
    const c = new AbortController();
    const waiting = sleep(60_000, c.signal);
    c.abort();
    expect(await waiting).toBe(false);
  });

  // A consumer's signal lives as long as the consumer and sees thousands of back-offs: each sleep
  // must take its listener away again, whichever way it ends.
  it('leaves no listener on the signal, whether the time ran out or the signal aborted', async () => {
    const c = new AbortController();
    for (let i = 0; i < 20; i++) expect(await sleep(1, c.signal)).toBe(true);
    expect(getEventListeners(c.signal, 'abort')).toHaveLength(0);
    const waiting = sleep(60_000, c.signal);
    expect(getEventListeners(c.signal, 'abort')).toHaveLength(1);
    c.abort();
    expect(await waiting).toBe(false);
    expect(getEventListeners(c.signal, 'abort')).toHaveLength(0);
  });
});
