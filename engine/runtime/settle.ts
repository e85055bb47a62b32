import type { Redis } from 'ioredis';
import type { Outcome } from '../runner/pipeline-runner.ts';
import { BINARY_PAYLOAD } from '../runner/codec.ts';
import { dlqLimitsFromEnv, payloadFields } from './dlq-limits.ts';

/** Where a batch came from and where its failures go. */
export interface SettleTarget {
  pipeline: string;
  stream: string;
  group: string;
  dlq: string;
}

/**
 * The fields of a DLQ entry, as SPEC §4 lists them. A payload over SYNAPSE_DLQ_MAX_PAYLOAD_BYTES
 * keeps its first bytes plus `payload_truncated`, `payload_bytes` and `payload_sha256`; one that
 * was not UTF-8 is stored as its original bytes; the reason is cut to a few KiB.
 */
export function dlqFields(target: SettleTarget, o: Extract<Outcome, { kind: 'dlq' }>, failedAt: string): string[] {
  const limits = dlqLimitsFromEnv();
  const payload = o.payload.startsWith(BINARY_PAYLOAD) ? Buffer.from(o.payload.slice(BINARY_PAYLOAD.length), 'base64') : o.payload;
  return [
    ...(payloadFields(payload, limits.maxPayloadBytes) as string[]),
    'error', o.error.length > limits.maxErrorChars ? `${o.error.slice(0, limits.maxErrorChars)}...` : o.error,
    'stage', o.stage,
    'pipeline', target.pipeline,
    'source_stream', target.stream,
    'source_id', o.id,
    'attempts', String(o.attempts),
    'failed_at', failedAt,
  ];
}

/**
 * Settles a batch in one MULTI: DLQ entries written and every settled entry acknowledged
 * together, so a crash can never ack an entry whose DLQ entry was not written. Deferred entries
 * stay pending. Rejects when Redis does; then nothing was acked and the batch will be redelivered.
 */
export async function settleBatch(redis: Redis, target: SettleTarget, outcomes: readonly Outcome[], extraAcks: readonly string[] = [], opts: { ack?: boolean } = {}): Promise<number> {
  const ack = opts.ack ?? true;
  const acks: string[] = [...extraAcks];
  const multi = redis.multi();
  const failedAt = new Date().toISOString();
  for (const o of outcomes) {
    if (o.kind === 'deferred') continue;
    if (o.kind === 'dlq') multi.xadd(target.dlq, '*', ...dlqFields(target, o, failedAt));
    acks.push(o.id);
  }
  if (!ack) {
    // Replays feed entries that were never read through the group: only DLQ writes to do.
    if (outcomes.some((o) => o.kind === 'dlq')) await checkExec(multi.exec());
    return 0;
  }
  if (acks.length === 0) return 0;
  multi.xack(target.stream, target.group, ...acks);
  await checkExec(multi.exec());
  return acks.length;
}

async function checkExec(pending: Promise<[Error | null, unknown][] | null>): Promise<void> {
  const results = await pending;
  const failed = results?.find(([err]) => err);
  if (!results || failed) throw failed?.[0] ?? new Error('MULTI was aborted');
}
