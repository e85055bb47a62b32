import { describe, expect, it } from 'vitest';
import { didYouMean, nearest } from '../../../engine/config/did-you-mean.ts';

const KEYS = ['name', 'description', 'source', 'validate', 'filter', 'transform', 'sink', 'sinks', 'retry', 'dlq', 'enabled'];

describe('nearest', () => {
  it.each([
    { name: 'filtr', expected: 'filter' },
    { name: 'trasnform', expected: 'transform' }, // two letters swapped
    { name: 'Validate', expected: 'validate' },
    { name: 'sinkss', expected: 'sinks' },
    { name: 'retries', expected: undefined }, // three edits from retry: too far for 7 letters
    { name: 'kafka', expected: undefined },
    { name: 'sink', expected: undefined }, // known: nothing to suggest
  ])('$name → $expected', ({ name, expected }) => {
    expect(nearest(name, KEYS)).toBe(expected);
  });

  it('says nothing without known names', () => {
    expect(nearest('x', [])).toBeUndefined();
    expect(didYouMean('x', [])).toBe('');
  });

  it('didYouMean phrases the guess', () => {
    expect(didYouMean('dlqq', KEYS)).toBe(" (did you mean 'dlq'?)");
  });
});
