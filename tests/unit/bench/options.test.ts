import { describe, expect, it } from 'vitest';
import { DEFAULT_OUT, UsageError, parseOptions } from '../../../bench/lib/options.ts';

describe('bench options', () => {
  it('keeps the classic run (in-process engine against the hand-written consumer) by default', () => {
    const opts = parseOptions([], {});
    expect(opts).toMatchObject({ replicas: undefined, cluster: false, streams: 1, only: 'both', out: DEFAULT_OUT });
  });

  it('--replicas N runs engine processes, one stream unless told otherwise, and writes no default results file', () => {
    expect(parseOptions(['--replicas', '2'], {})).toMatchObject({ replicas: 2, cluster: false, streams: 1, out: undefined });
    expect(parseOptions(['--replicas', '3', '--streams', '6', '--out', 'x.json'], {})).toMatchObject({ replicas: 3, streams: 6, out: 'x.json' });
  });

  it('--cluster spreads 3 streams over the masters, with one replica unless told otherwise', () => {
    expect(parseOptions(['--cluster'], {})).toMatchObject({ replicas: 1, cluster: true, streams: 3 });
    expect(parseOptions(['--cluster', '--replicas', '2', '--streams', '1'], {})).toMatchObject({ replicas: 2, cluster: true, streams: 1 });
    expect(parseOptions(['--streams', '3'], {})).toMatchObject({ replicas: 1, cluster: false, streams: 3 });
  });

  it('refuses bad counts and --only with the scale-out flags', () => {
    expect(() => parseOptions(['--replicas', '0'], {})).toThrow(UsageError);
    expect(() => parseOptions(['--streams', 'two'], {})).toThrow(UsageError);
    expect(() => parseOptions(['--replicas', '2', '--only', 'engine'], {})).toThrow(/--only does not go with/);
    expect(() => parseOptions(['--cluster=yes'], {})).toThrow(UsageError);
  });
});
