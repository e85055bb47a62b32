import type { Redis } from 'ioredis';
import { PAYLOAD_FIELD } from '../runner/codec.ts';
import { toStreamBound } from './stream-ids.ts';

// Re-publishes and deletes in one step. (A MULTI would not do: Redis runs the XDEL of a
// transaction even when its XADD failed.)
const REDRIVE = `
local id = redis.call('XADD', KEYS[1], '*', unpack(ARGV, 2))
redis.call('XDEL', KEYS[2], ARGV[1])
return id`;

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
}

function toEntry(id: string, fields: string[]): DlqEntry {
  const f: Record<string, string> = {};
  for (let i = 0; i < fields.length; i += 2) f[fields[i]!] = fields[i + 1]!;
  return {
    id, payload: f.payload ?? '', error: f.error ?? '', stage: f.stage ?? '', pipeline: f.pipeline ?? '',
    source_stream: f.source_stream ?? '', source_id: f.source_id ?? '', attempts: Number(f.attempts ?? 0), failed_at: f.failed_at ?? '',
  };
}

/** Lists DLQ entries oldest first, from `from` (an id or ISO time), at most `count`. */
export async function listDlq(redis: Redis, stream: string, opts: { from?: string; count?: number } = {}): Promise<DlqEntry[]> {
  const from = opts.from ? toStreamBound(opts.from) ?? '-' : '-';
  const rows = await redis.xrange(stream, from, '+', 'COUNT', opts.count ?? 100);
  return rows.map(([id, fields]) => toEntry(id, fields));
}

/**
 * Sends DLQ entries back to their source streams, each in one MULTI (XADD to the source, XDEL
 * from the DLQ), so an entry leaves the DLQ only once it is re-published. `codecOf` tells, per
 * pipeline, whether the source stream holds flat fields (then the field map is restored).
 * Redrives the given ids, or the oldest `count` entries.
 */
export async function redriveDlq(
  redis: Redis,
  stream: string,
  opts: { ids?: string[]; count?: number; codecOf?: (pipeline: string) => 'json' | 'fields' | undefined } = {},
): Promise<{ redriven: { dlqId: string; stream: string; newId: string }[]; missing: string[] }> {
  let entries: DlqEntry[];
  const missing: string[] = [];
  if (opts.ids?.length) {
    entries = [];
    for (const id of opts.ids) {
      const rows = await redis.xrange(stream, id, id);
      if (rows[0]) entries.push(toEntry(rows[0][0], rows[0][1]));
      else missing.push(id);
    }
  } else {
    entries = await listDlq(redis, stream, { count: opts.count ?? 100 });
  }
  const redriven: { dlqId: string; stream: string; newId: string }[] = [];
  for (const e of entries) {
    if (!e.source_stream) {
      missing.push(e.id);
      continue;
    }
    const fields = opts.codecOf?.(e.pipeline) === 'fields' ? fieldsFromJson(e.payload) : [PAYLOAD_FIELD, e.payload];
    // A failing XADD raises inside the script, before the XDEL: the entry stays on the DLQ.
    const newId = (await redis.eval(REDRIVE, 2, e.source_stream, stream, e.id, ...fields)) as string;
    redriven.push({ dlqId: e.id, stream: e.source_stream, newId });
  }
  return { redriven, missing };
}

function fieldsFromJson(payload: string): string[] {
  try {
    const obj = JSON.parse(payload) as Record<string, string>;
    return Object.entries(obj).flatMap(([k, v]) => [k, String(v)]);
  } catch {
    return [PAYLOAD_FIELD, payload];
  }
}
