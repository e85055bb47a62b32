import { isUtf8 } from 'node:buffer';
import type { RedisConnection } from './redis-client.ts';
import type { CompiledPipeline } from '../config/load-pipeline.ts';
import { BadRequestError, errorMessage } from '../errors.ts';
import { PAYLOAD_FIELD } from '../runner/codec.ts';
import type { PipelineRunner } from '../runner/pipeline-runner.ts';
import { LuaScript } from './lua-script.ts';
import { dlqFields } from './settle.ts';
import { toStreamBound } from './stream-ids.ts';

// A redriven entry that fails again: its new DLQ entry is written, then the old one deleted, in
// one step. (A MULTI would not do: Redis runs a transaction's XDEL even when its XADD failed, and
// the entry would be lost.) KEYS[1] the pipeline's DLQ, KEYS[2] the DLQ redriven from;
// ARGV[1] the old entry's id, then the new entry's fields.
const REDEAD_LETTER = new LuaScript(`
local id = redis.call('XADD', KEYS[1], '*', unpack(ARGV, 2))
redis.call('XDEL', KEYS[2], ARGV[1])
return id`);

/** A DLQ entry, its fields as SPEC §4 names them. */
export interface DlqEntry {
  id: string;
  payload: string;
  error: string;
  stage: string;
  pipeline: string;
  source_stream: string;
  source_id: string;
  attempts: number;
  failed_at: string;
  /** `base64` when the payload was not UTF-8: stored as its original bytes, shown as their base64. */
  payload_encoding?: 'base64';
  /** Set when the payload was too large to keep whole: it holds the first bytes only. */
  payload_truncated?: boolean;
  /** The original payload's size in bytes and sha256, kept when it was truncated. */
  payload_bytes?: number;
  payload_sha256?: string;
}

function toEntry(id: string, fields: readonly (string | Buffer)[]): DlqEntry {
  const f: Record<string, string> = {};
  let encoding: 'base64' | undefined;
  for (let i = 0; i < fields.length; i += 2) {
    const name = String(fields[i]);
    const v = fields[i + 1]!;
    if (name === 'payload' && typeof v !== 'string' && !isUtf8(v)) {
      // Stored as the original bytes: shown as base64, said so.
      f.payload = v.toString('base64');
      encoding = 'base64';
    } else f[name] = String(v);
  }
  return {
    id, payload: f.payload ?? '', error: f.error ?? '', stage: f.stage ?? '', pipeline: f.pipeline ?? '',
    source_stream: f.source_stream ?? '', source_id: f.source_id ?? '', attempts: Number(f.attempts ?? 0), failed_at: f.failed_at ?? '',
    ...(encoding ? { payload_encoding: encoding } : {}),
    ...(f.payload_truncated === 'true' ? { payload_truncated: true, payload_bytes: Number(f.payload_bytes ?? 0), payload_sha256: f.payload_sha256 ?? '' } : {}),
  };
}

/**
 * Lists DLQ entries oldest first, from `from` (an id or ISO time), at most `count`, and no more
 * payload bytes than `maxBytes` (at least one entry, whatever its size). `next` is the id to list
 * from for the following page, or null at the end. Reads in small chunks, so a page never holds
 * much more than its budget in memory. A `from` that is neither an id nor a time throws a
 * BadRequestError.
 */
export async function listDlqPage(redis: RedisConnection, stream: string, opts: { from?: string; count?: number; maxBytes?: number } = {}): Promise<{ entries: DlqEntry[]; next: string | null }> {
  const count = opts.count ?? 100;
  const maxBytes = opts.maxBytes ?? Infinity;
  const entries: DlqEntry[] = [];
  let bytes = 0;
  let cursor = '-';
  if (opts.from) {
    const bound = toStreamBound(opts.from);
    if (bound === undefined) throw new BadRequestError(`from: '${opts.from.slice(0, 100)}' is neither a stream entry id nor an ISO time`);
    cursor = bound;
  }
  for (;;) {
    const rows = await redis.xrangeBuffer(stream, cursor, '+', 'COUNT', Math.min(10, count - entries.length + 1));
    for (const [rawId, fields] of rows) {
      const id = rawId.toString();
      const e = toEntry(id, fields);
      const size = Buffer.byteLength(e.payload) + Buffer.byteLength(e.error);
      if (entries.length >= count || (entries.length > 0 && bytes + size > maxBytes)) return { entries, next: id };
      entries.push(e);
      bytes += size;
    }
    if (rows.length === 0) return { entries, next: null };
    cursor = `(${rows[rows.length - 1]![0].toString()}`;
  }
}

/** Lists DLQ entries oldest first, from `from` (an id or ISO time), at most `count`. */
export async function listDlq(redis: RedisConnection, stream: string, opts: { from?: string; count?: number } = {}): Promise<DlqEntry[]> {
  return (await listDlqPage(redis, stream, opts)).entries;
}

/** What a redrive runs a DLQ entry through: the running version of the pipeline that failed it. */
export interface RedriveTarget {
  runner: PipelineRunner;
  pipeline: CompiledPipeline;
}

/** One DLQ entry redriven: what became of it this time. */
export interface Redriven {
  dlqId: string;
  pipeline: string;
  /** The entry's original id in its source stream: the id its sinks see again (their idempotency key). */
  sourceId: string;
  outcome: 'sunk' | 'filtered' | 'dropped' | 'dlq';
  /** When it failed again: its new DLQ entry. */
  newDlqId?: string;
  error?: string;
}

/** What a redrive did: entries run, entries it could not run (left on the DLQ, with why), ids not found. */
export interface RedriveReport {
  redriven: Redriven[];
  skipped: { dlqId: string; reason: string }[];
  missing: string[];
}

const STREAM_ID = /^\d{1,20}-\d{1,20}$/;

/**
 * Redrives DLQ entries: each runs again through the running version of the pipeline that failed
 * it — in this process, with its original source id, never through the source stream, so no other
 * consumer group sees it twice and idempotent sinks recognise it. An entry leaves the DLQ only
 * once settled: sunk, filtered or dropped, it is deleted; failing again, its new DLQ entry is
 * written and the old one deleted in one MULTI. An entry that cannot be run (its pipeline is not
 * running, dead-letters elsewhere or reads another stream, its payload was truncated, is not
 * UTF-8 or is no field map) is skipped,
 * reported and left where it is; the others still run. Redrives the given ids, or the oldest
 * `count` entries.
 */
export async function redriveDlq(
  redis: RedisConnection,
  stream: string,
  opts: { ids?: string[]; count?: number; targetFor: (pipeline: string) => RedriveTarget | string },
): Promise<RedriveReport> {
  const report: RedriveReport = { redriven: [], skipped: [], missing: [] };
  let entries: DlqEntry[];
  if (opts.ids?.length) {
    entries = [];
    for (const id of opts.ids) {
      const rows = STREAM_ID.test(id) ? await redis.xrangeBuffer(stream, id, id) : [];
      if (rows[0]) entries.push(toEntry(rows[0][0].toString(), rows[0][1]));
      else report.missing.push(id);
    }
  } else {
    entries = await listDlq(redis, stream, { count: opts.count ?? 100 });
  }
  for (const e of entries) {
    const skip = (reason: string) => report.skipped.push({ dlqId: e.id, reason });
    if (!e.pipeline) {
      skip('the entry names no pipeline');
      continue;
    }
    const target = opts.targetFor(e.pipeline);
    if (typeof target === 'string') {
      skip(target);
      continue;
    }
    const p = target.pipeline;
    if (p.source.kind !== 'stream') {
      skip(`pipeline '${p.name}' reads no stream`);
      continue;
    }
    if (p.dlq !== stream) {
      // Only entries the engine wrote where it writes them: not look-alikes placed elsewhere.
      skip(`pipeline '${p.name}' dead-letters to '${p.dlq}', not to '${stream}'`);
      continue;
    }
    if (e.source_stream !== p.source.stream) {
      skip(`pipeline '${p.name}' reads '${p.source.stream}', not the entry's source stream '${e.source_stream}'`);
      continue;
    }
    if (!STREAM_ID.test(e.source_id)) {
      skip(`source_id '${e.source_id.slice(0, 40)}' is not a stream entry id`);
      continue;
    }
    if (e.payload_encoding) {
      skip('the payload is not UTF-8: it would only fail to decode again');
      continue;
    }
    if (e.payload_truncated) {
      skip(`the payload was stored truncated (${e.payload_bytes} bytes, sha256 ${e.payload_sha256}): it cannot be run again`);
      continue;
    }
    const fields = p.source.codec === 'fields' ? fieldMap(e.payload) : [PAYLOAD_FIELD, e.payload];
    if (!fields) {
      skip('the payload is not the field map of a codec: fields entry');
      continue;
    }
    try {
      const { outcomes } = await target.runner.process([{ id: e.source_id, fields, deliveries: 1 }]);
      const o = outcomes[0]!;
      if (o.kind === 'deferred') {
        skip(`not settled (${o.reason}); left on the DLQ`);
        continue;
      }
      if (o.kind === 'dlq') {
        const settle = { pipeline: p.name, stream: p.source.stream, group: p.source.group, dlq: p.dlq };
        const newDlqId = await REDEAD_LETTER.run<string>(redis, [p.dlq, stream], [e.id, ...dlqFields(settle, o, new Date().toISOString())]);
        report.redriven.push({ dlqId: e.id, pipeline: p.name, sourceId: e.source_id, outcome: 'dlq', newDlqId, error: o.error });
      } else {
        await redis.xdel(stream, e.id);
        report.redriven.push({ dlqId: e.id, pipeline: p.name, sourceId: e.source_id, outcome: o.kind });
      }
    } catch (err) {
      skip(`redrive failed: ${errorMessage(err)}; left on the DLQ`);
    }
  }
  return report;
}

/** The flat field list of a `codec: fields` entry kept as a JSON object of strings, or undefined. */
function fieldMap(payload: string): string[] | undefined {
  let obj: unknown;
  try {
    obj = JSON.parse(payload);
  } catch {
    return undefined;
  }
  if (!obj || typeof obj !== 'object' || Array.isArray(obj)) return undefined;
  const out: string[] = [];
  for (const [k, v] of Object.entries(obj)) {
    if (typeof v !== 'string') return undefined;
    out.push(k, v);
  }
  return out;
}
