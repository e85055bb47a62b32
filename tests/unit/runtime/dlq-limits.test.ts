import { createHash } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import { DEFAULT_DLQ_LIMITS, dlqLimitsFromEnv, payloadFields } from '../../../engine/runtime/dlq-limits.ts';

const sha256 = (b: Buffer | string) => createHash('sha256').update(b).digest('hex');

describe('dlqLimitsFromEnv', () => {
  it('the defaults, with nothing set', () => {
    expect(dlqLimitsFromEnv({})).toEqual({ maxPayloadBytes: 1024 * 1024, maxErrorChars: 8192, maxLen: 100_000, listMaxBytes: 4 * 1024 * 1024 });
    expect(DEFAULT_DLQ_LIMITS).toEqual(dlqLimitsFromEnv({}));
  });

  it('each variable sets its limit; the reason\'s length is fixed', () => {
    expect(dlqLimitsFromEnv({ SYNAPSE_DLQ_MAX_PAYLOAD_BYTES: '4096', SYNAPSE_DLQ_MAXLEN: '5', SYNAPSE_DLQ_LIST_MAX_BYTES: '1' }))
      .toEqual({ maxPayloadBytes: 4096, maxErrorChars: 8192, maxLen: 5, listMaxBytes: 1 });
  });

  it('a value that is not a positive whole number leaves the default', () => {
    for (const bad of ['', '0', '-5', '1.5', 'abc', 'Infinity', '1e400']) {
      expect(dlqLimitsFromEnv({ SYNAPSE_DLQ_MAXLEN: bad }).maxLen, bad).toBe(100_000);
    }
  });
});

describe('payloadFields', () => {
  it('a payload of up to max bytes is kept whole, as the string or bytes it was', () => {
    expect(payloadFields('abcd', 4)).toEqual(['payload', 'abcd']);
    const bytes = Buffer.from([0xff, 0x00, 0x01, 0x02]);
    expect(payloadFields(bytes, 4)).toEqual(['payload', bytes]);
    // Counted in UTF-8 bytes: four characters of two bytes each fit in 8, not in 7.
    expect(payloadFields('éééé', 8)).toEqual(['payload', 'éééé']);
    expect(payloadFields('éééé', 7)[2]).toBe('payload_truncated');
  });

  it('a larger one keeps its first bytes, with the original\'s size and sha256', () => {
    expect(payloadFields('abcdef', 4)).toEqual([
      'payload', 'abcd', 'payload_truncated', 'true', 'payload_bytes', '6', 'payload_sha256', sha256('abcdef'),
    ]);
    const bytes = Buffer.from([1, 2, 3, 4, 5]);
    expect(payloadFields(bytes, 2)).toEqual([
      'payload', Buffer.from([1, 2]), 'payload_truncated', 'true', 'payload_bytes', '5', 'payload_sha256', sha256(bytes),
    ]);
  });

  it('text is cut on a character boundary, never inside one', () => {
    // 'a' then three characters of three bytes: a cut at 5 would split the second one.
    const text = 'a€€€';
    expect(payloadFields(text, 5).slice(0, 2)).toEqual(['payload', 'a€']);
    expect(payloadFields(text, 4).slice(0, 2)).toEqual(['payload', 'a€']);
    expect(payloadFields(text, 3).slice(0, 2)).toEqual(['payload', 'a']);
    expect(payloadFields('€€', 2).slice(0, 2)).toEqual(['payload', '']);
    // Bytes are cut where the limit says: they are not text.
    const bytes = Buffer.from(text);
    expect((payloadFields(bytes, 5)[1] as Buffer).length).toBe(5);
  });
});
