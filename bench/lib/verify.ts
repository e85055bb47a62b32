import type { Redis } from 'ioredis';
import type { WorkloadSummary } from './events.ts';
import { groupState, isDrained } from './redis.ts';
import type { SideResult, SideSpec } from './side.ts';

/**
 * Checks that a side really did the whole job: its group read and acked every entry, its output
 * and DLQ hold what the workload says they should, and its own counts agree. Returns the
 * problems found (empty when all is well).
 */
export async function verifySide(redis: Redis, spec: SideSpec, result: SideResult, workload: WorkloadSummary): Promise<string[]> {
  const problems: string[] = [];
  const state = await groupState(redis, spec.input, spec.group);
  if (!isDrained(state, spec.total)) problems.push(`group not drained: ${JSON.stringify(state)}`);
  const [outLen, dlqLen] = await Promise.all([redis.xlen(spec.output), redis.xlen(spec.dlq)]);
  const expect = (what: string, got: number, want: number) => {
    if (got !== want) problems.push(`${what}: ${got}, expected ${want}`);
  };
  expect('output length', outLen, workload.expectedSunk);
  expect('DLQ length', dlqLen, workload.expectedInvalid);
  if (dlqLen !== workload.expectedInvalid) problems.push(...(await unexpectedDlqReasons(redis, spec.dlq)));
  expect('sunk count', result.counts.sunk, workload.expectedSunk);
  expect('filtered count', result.counts.filtered, workload.expectedFiltered);
  expect('dlq count', result.counts.dlq, workload.expectedInvalid);
  return problems;
}

/** DLQ entries for anything but the workload's invalid events, counted by stage and error. */
async function unexpectedDlqReasons(redis: Redis, dlq: string): Promise<string[]> {
  const reasons = new Map<string, number>();
  for (const [, fields] of await redis.xrange(dlq, '-', '+')) {
    const field = (name: string) => fields[fields.indexOf(name) + 1] ?? '';
    if (field('stage') === 'validate') continue;
    const reason = `${field('stage')}: ${field('error').slice(0, 120)}`;
    reasons.set(reason, (reasons.get(reason) ?? 0) + 1);
  }
  return [...reasons].map(([reason, n]) => `${n} valid event(s) dead-lettered: ${reason}`);
}

/** How two sides' outputs compare, as multisets of payloads (order is not part of the contract). */
export interface OutputComparison {
  /** Entries in the first stream. */
  compared: number;
  /** Entries of the first stream the second lacks, and the other way round. */
  onlyInFirst: number;
  onlyInSecond: number;
  /** One payload that only one side wrote. */
  first?: string;
}

/** Reads every `payload` of a stream, `chunk` entries per XRANGE, into a payload → count map. */
async function payloadCounts(redis: Redis, stream: string, chunk: number): Promise<Map<string, number>> {
  const counts = new Map<string, number>();
  let cursor = '-';
  for (;;) {
    const entries = await redis.xrange(stream, cursor, '+', 'COUNT', chunk);
    for (const [, fields] of entries) {
      const p = payloadOf(fields);
      counts.set(p, (counts.get(p) ?? 0) + 1);
    }
    if (entries.length < chunk) return counts;
    cursor = `(${entries[entries.length - 1]![0]}`;
  }
}

/**
 * Compares two output streams payload by payload. Both sides write the same JSON text for the
 * same event (same keys, same order), so equal multisets of strings mean equal outputs.
 */
export async function compareOutputs(redis: Redis, a: string, b: string, chunk = 5000): Promise<OutputComparison> {
  const counts = await payloadCounts(redis, a, chunk);
  let compared = 0;
  for (const n of counts.values()) compared += n;
  let onlyInSecond = 0;
  let first: string | undefined;
  for (const [payload, n] of await payloadCounts(redis, b, chunk)) {
    const left = (counts.get(payload) ?? 0) - n;
    if (left < 0) {
      onlyInSecond -= left;
      first ??= `only in ${b}: ${payload}`;
    }
    counts.set(payload, Math.max(0, left));
  }
  let onlyInFirst = 0;
  for (const [payload, n] of counts) {
    if (n > 0) first ??= `only in ${a}: ${payload}`;
    onlyInFirst += n;
  }
  return { compared, onlyInFirst, onlyInSecond, first };
}

function payloadOf(fields: string[]): string {
  return fields[fields.indexOf('payload') + 1] ?? '';
}
