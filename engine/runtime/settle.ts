import type { RedisConnection } from './redis-client.ts';
import { Cluster } from 'ioredis';
import { DlqWriteRefusedError, errorMessage } from '../errors.ts';
import type { Outcome } from '../runner/pipeline-runner.ts';
import { BINARY_PAYLOAD } from '../runner/codec.ts';
import { dlqLimitsFromEnv, payloadFields } from './dlq-limits.ts';
import { LuaScript } from './lua-script.ts';

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

/** What became of a settle: how many entries were acknowledged, and the DLQ writes Redis refused. */
export interface SettleResult {
  /** Entries settled: acknowledged (or, without acks, DLQ entries written). */
  settled: number;
  /** DLQ writes Redis refused (WRONGTYPE, OOM…): those entries were not acknowledged. */
  refused: { id: string; error: string }[];
}

// One step on the server: each DLQ entry is written, and an entry is acknowledged only when its DLQ
// write succeeded (a MULTI would not do: Redis runs a transaction's XACK even when its XADD
// failed). A refused write is reported, not raised, so the rest of the batch still settles.
//   KEYS[1] source stream, KEYS[2] DLQ stream
//   ARGV[1] group ('' for no acks), ARGV[2] number of DLQ entries,
//   then per DLQ entry: its source id, its field count, its fields; then the ids to acknowledge.
const SETTLE = new LuaScript(`
local group = ARGV[1]
local i = 3
local acks = {}
local refused = {}
for _ = 1, tonumber(ARGV[2]) do
  local id, n = ARGV[i], tonumber(ARGV[i + 1])
  local r = redis.pcall('XADD', KEYS[2], '*', unpack(ARGV, i + 2, i + 1 + n))
  if type(r) == 'table' and r.err then
    refused[#refused + 1] = id
    refused[#refused + 1] = r.err
  else
    acks[#acks + 1] = id
  end
  i = i + 2 + n
end
for j = i, #ARGV do acks[#acks + 1] = ARGV[j] end
if group ~= '' then
  for k = 1, #acks, 1000 do
    redis.call('XACK', KEYS[1], group, unpack(acks, k, math.min(k + 999, #acks)))
  end
end
return {#acks, refused}`);

/**
 * Settles a batch in one step on the server: every DLQ entry is written and every settled entry
 * acknowledged, an entry whose DLQ write Redis refuses excepted — that one stays pending and comes
 * back in `refused`, for the caller to settle again once Redis accepts the write. Deferred entries
 * stay pending. `extraAcks` are acknowledged as they are (entries deleted from the stream).
 * Without `ack` (replays, schedules: nothing was read through a group) only DLQ entries are
 * written, and a refused write raises DlqWriteRefusedError. Rejects when Redis does; then nothing
 * was acknowledged and the batch will be redelivered.
 */
export async function settleBatch(redis: RedisConnection, target: SettleTarget, outcomes: readonly Outcome[], extraAcks: readonly string[] = [], opts: { ack?: boolean } = {}): Promise<SettleResult> {
  const ack = opts.ack ?? true;
  const failedAt = new Date().toISOString();
  const dlqArgs: string[] = [];
  const acks: string[] = [...extraAcks];
  let dlqCount = 0;
  for (const o of outcomes) {
    if (o.kind === 'deferred') continue;
    if (o.kind === 'dlq') {
      const fields = dlqFields(target, o, failedAt);
      dlqArgs.push(o.id, String(fields.length), ...fields);
      dlqCount++;
    } else {
      acks.push(o.id);
    }
  }
  const toAck = ack ? acks : [];
  if (dlqCount === 0 && toAck.length === 0) return { settled: 0, refused: [] };
  let result: SettleResult;
  if (redis instanceof Cluster && !(await shareSlot(redis, target.stream, target.dlq))) {
    result = await settleApart(redis, target, dlqArgs, toAck, ack);
  } else {
    // Without a group the script writes the DLQ entries only, and counts those it wrote.
    const [settled, flat] = await SETTLE.run<[number, string[]]>(redis, [target.stream, target.dlq], [ack ? target.group : '', dlqCount, ...dlqArgs, ...toAck]);
    const refused: { id: string; error: string }[] = [];
    for (let i = 0; i < flat.length; i += 2) refused.push({ id: flat[i]!, error: flat[i + 1]! });
    result = { settled, refused };
  }
  if (!ack && result.refused.length) throw new DlqWriteRefusedError(result.refused);
  return result;
}

/** Per cluster connection, whether two keys hash to one slot ("a\0b" → answer), asked once. */
const slotChecks = new WeakMap<Cluster, Map<string, Promise<boolean>>>();

/** Whether `a` and `b` are in one hash slot of the cluster (CLUSTER KEYSLOT, asked once per pair). */
export function shareSlot(redis: Cluster, a: string, b: string): Promise<boolean> {
  let checks = slotChecks.get(redis);
  if (!checks) slotChecks.set(redis, (checks = new Map()));
  const pair = `${a}\0${b}`;
  let check = checks.get(pair);
  if (!check) {
    check = Promise.all([redis.cluster('KEYSLOT', a), redis.cluster('KEYSLOT', b)]).then(([x, y]) => Number(x) === Number(y));
    check.catch(() => checks.delete(pair)); // asked again next time
    checks.set(pair, check);
  }
  return check;
}

/**
 * Settling on a Redis Cluster when the stream and its DLQ are in different hash slots, where no
 * script may touch both: first the DLQ entries are written, then every settled entry whose DLQ
 * write succeeded is acknowledged. Nothing is lost — an entry is never acknowledged before its DLQ
 * entry exists — but the two steps are not one: should the engine stop between them, the entry is
 * redelivered and dead-lettered again (a second DLQ entry for it). Giving the stream a hash tag
 * (`{orders}`, whose DLQ is `{orders}:dlq`) keeps both in one slot and settles in one step.
 */
async function settleApart(redis: Cluster, target: SettleTarget, dlqArgs: readonly string[], toAck: readonly string[], ack: boolean): Promise<SettleResult> {
  const writes: { id: string; fields: string[] }[] = [];
  for (let i = 0; i < dlqArgs.length;) {
    const n = Number(dlqArgs[i + 1]);
    writes.push({ id: dlqArgs[i]!, fields: dlqArgs.slice(i + 2, i + 2 + n) as string[] });
    i += 2 + n;
  }
  const refused: { id: string; error: string }[] = [];
  const written: string[] = [];
  if (writes.length) {
    const pipeline = redis.pipeline();
    for (const w of writes) pipeline.xadd(target.dlq, '*', ...w.fields);
    const replies = (await pipeline.exec()) ?? [];
    writes.forEach((w, i) => {
      const [err] = replies[i] ?? [new Error('no reply')];
      if (err) refused.push({ id: w.id, error: errorMessage(err) });
      else written.push(w.id);
    });
  }
  if (!ack) return { settled: written.length, refused };
  const acks = [...written, ...toAck];
  for (let k = 0; k < acks.length; k += 1000) await redis.xack(target.stream, target.group, ...acks.slice(k, k + 1000));
  return { settled: acks.length, refused };
}
