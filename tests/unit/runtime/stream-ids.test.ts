import { describe, expect, it } from 'vitest';
import { compareIds, idTime, maxId, nextId, toStreamBound } from '../../../engine/runtime/stream-ids.ts';

describe('stream ids', () => {
  it('compareIds orders by time, then by sequence, as numbers (not as strings)', () => {
    expect(compareIds('5-0', '5-0')).toBe(0);
    expect(compareIds('5-1', '5-2')).toBe(-1);
    expect(compareIds('5-2', '5-1')).toBe(1);
    expect(compareIds('4-9', '5-0')).toBe(-1);
    expect(compareIds('6-0', '5-9')).toBe(1);
    expect(compareIds('9-0', '10-0')).toBe(-1);
    expect(compareIds('1-10', '1-9')).toBe(1);
    // Beyond a double's precision: ids are compared exactly.
    expect(compareIds('1-18446744073709551615', '1-18446744073709551614')).toBe(1);
  });

  it('maxId is the largest, wherever it is in the list', () => {
    expect(maxId(['1-0'])).toBe('1-0');
    expect(maxId(['3-0', '1-0', '2-0'])).toBe('3-0');
    expect(maxId(['1-0', '2-5', '2-10', '2-9'])).toBe('2-10');
    expect(maxId(['10-0', '9-99'])).toBe('10-0');
  });

  it('nextId is the id right after; idTime the time it was written at', () => {
    expect(nextId('1732610000000-0')).toBe('1732610000000-1');
    expect(nextId('5-18446744073709551615')).toBe('5-18446744073709551616');
    expect(idTime('1732610000000-7')).toBe(1732610000000);
    expect(idTime('42')).toBe(42);
  });

  it('toStreamBound takes an id, a millisecond time, - or +, or an ISO time (trimmed); anything else is undefined', () => {
    expect(toStreamBound(' 1732610000000-3 ')).toBe('1732610000000-3');
    expect(toStreamBound('1732610000000')).toBe('1732610000000');
    expect(toStreamBound('-')).toBe('-');
    expect(toStreamBound('+')).toBe('+');
    expect(toStreamBound('2024-11-26T08:33:20Z')).toBe(String(Date.parse('2024-11-26T08:33:20Z')));
    // Not an id: a prefix or a suffix that is not one.
    expect(toStreamBound('x1-0')).toBeUndefined();
    expect(toStreamBound('1-0x')).toBeUndefined();
    expect(toStreamBound('yesterday')).toBeUndefined();
  });
});
