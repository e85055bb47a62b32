import { createHash } from 'node:crypto';
import { numericSetting, type NumericSetting } from '../settings.ts';

/** What a DLQ may hold (docs/security.md, "The DLQ"). */
export interface DlqLimits {
  /** Bytes of a payload kept whole; a larger one keeps its first bytes, its size and sha256 (SYNAPSE_DLQ_MAX_PAYLOAD_BYTES). */
  maxPayloadBytes: number;
  /** Characters of the `error` reason kept. */
  maxErrorChars: number;
  /** Entries per DLQ stream; the oldest beyond are trimmed (SYNAPSE_DLQ_MAXLEN). */
  maxLen: number;
  /** Bytes of payload one GET /dlq page returns at most (SYNAPSE_DLQ_LIST_MAX_BYTES). */
  listMaxBytes: number;
}

export const DEFAULT_DLQ_LIMITS: DlqLimits = {
  maxPayloadBytes: 1024 * 1024,
  maxErrorChars: 8192,
  maxLen: 100_000,
  listMaxBytes: 4 * 1024 * 1024,
};

/** The limits set in the environment, over the defaults (read on each call: cheap, and tests can set them). */
export function dlqLimitsFromEnv(env: NodeJS.ProcessEnv = process.env): DlqLimits {
  const num = (name: NumericSetting, fallback: number) => numericSetting(name, fallback, env);
  const d = DEFAULT_DLQ_LIMITS;
  return {
    maxPayloadBytes: num('SYNAPSE_DLQ_MAX_PAYLOAD_BYTES', d.maxPayloadBytes),
    maxErrorChars: d.maxErrorChars,
    maxLen: num('SYNAPSE_DLQ_MAXLEN', d.maxLen),
    listMaxBytes: num('SYNAPSE_DLQ_LIST_MAX_BYTES', d.listMaxBytes),
  };
}

/**
 * The `payload` field of a DLQ entry and, when it is cut, `payload_truncated`, `payload_bytes`
 * and `payload_sha256` of the original: a payload up to `max` bytes is kept whole (as a string, or
 * as the original bytes when given a Buffer); a larger one keeps its first bytes (cut on a
 * character boundary when it is text).
 */
export function payloadFields(payload: string | Buffer, max: number): (string | Buffer)[] {
  const size = typeof payload === 'string' ? (payload.length * 3 <= max ? payload.length : Buffer.byteLength(payload)) : payload.length;
  if (size <= max) return ['payload', payload];
  const bytes = typeof payload === 'string' ? Buffer.from(payload) : payload;
  let end = max;
  // Back off to the start of a character a text payload would otherwise be cut in the middle of.
  if (typeof payload === 'string') while (end > 0 && (bytes[end]! & 0xc0) === 0x80) end--;
  const head = bytes.subarray(0, end);
  return [
    'payload', typeof payload === 'string' ? head.toString() : head,
    'payload_truncated', 'true',
    'payload_bytes', String(bytes.length),
    'payload_sha256', createHash('sha256').update(bytes).digest('hex'),
  ];
}
