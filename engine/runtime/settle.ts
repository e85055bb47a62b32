import type { Redis } from 'ioredis';
import type { Outcome } from '../runner/pipeline-runner.ts';

/** Where a batch came from and where its failures go. */
export interface SettleTarget {
  pipeline: string;
  stream: string;
  group: string;
  dlq: string;
}

/** The fields of a DLQ entry, exactly as SPEC §4 lists them. */
export function dlqFields(target: SettleTarget, o: Extract<Outcome, { kind: 'dlq' }>, failedAt: string): string[] {
  return [
    'payload', o.payload,
    'error', o.error,
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
export async function settleBatch(redis: Redis, target: SettleTarget, outcomes: readonly Outcome[], extraAcks: readonly string[] = []): Promise<number> {
  const acks: string[] = [...extraAcks];
  const multi = redis.multi();
  const failedAt = new Date().toISOString();
  for (const o of outcomes) {
    if (o.kind === 'deferred') continue;
    if (o.kind === 'dlq') multi.xadd(target.dlq, '*', ...dlqFields(target, o, failedAt));
    acks.push(o.id);
  }
  if (acks.length === 0) return 0;
  multi.xack(target.stream, target.group, ...acks);
  const results = await multi.exec();
  const failed = results?.find(([err]) => err);
  if (!results || failed) throw failed?.[0] ?? new Error('MULTI was aborted');
  return acks.length;
}
