import { createHash } from 'node:crypto';
import { readFile } from 'node:fs/promises';
import type { RedisConnection } from '../runtime/redis-client.ts';
import type { PipelineHandle } from '../runtime/engine.ts';
import { toRecord } from '../runtime/stream-reader.ts';

/** Live figures of a consumer group: lag (not yet delivered) and pending (delivered, not acked). */
export async function groupFigures(redis: RedisConnection, stream: string, group: string): Promise<{ lag: number | null; pending: number | null }> {
  try {
    const rows = (await redis.xinfo('GROUPS', stream)) as unknown[][];
    for (const row of rows) {
      const info = toRecord(row);
      if (info.name === group) return { lag: info.lag == null ? null : Number(info.lag), pending: Number(info.pending) };
    }
  } catch {
    // No such stream yet.
  }
  return { lag: null, pending: null };
}

/** A pipeline as GET /pipelines/:name shows it. */
export async function describeHandle(h: PipelineHandle, redis: RedisConnection | undefined, live = true) {
  const p = h.pipeline;
  const src = p.source;
  const figures = live && redis && src.kind === 'stream' ? await groupFigures(redis, src.stream, src.group) : { lag: null, pending: null };
  // The file may hold an edit that failed to load: PUT compares If-Match with the file's hash.
  const text = await readFile(p.file, 'utf8').catch(() => undefined);
  const fileHash = text === undefined ? null : createHash('sha256').update(text).digest('hex');
  return {
    name: p.name,
    description: p.description,
    file: p.file,
    status: h.status,
    generation: h.generation,
    hash: p.hash,
    fileHash,
    loadedAt: h.loadedAt,
    source: src.kind === 'stream'
      ? { stream: src.stream, group: src.group, codec: src.codec, envelope: src.envelope, batch: src.batch, start: src.start }
      : { schedule: src.every },
    validate: p.validate ? { schema: p.validate.schemaId, on_invalid: p.validate.onInvalid } : undefined,
    filter: p.filter?.source,
    transform: p.transform?.source,
    sinks: p.sinks.map((s) => ({ id: s.id, type: s.type, ...(s.when ? { when: s.when.source } : {}) })),
    dlq: p.dlq,
    counters: h.counters,
    lag: figures.lag,
    pending: figures.pending,
    lastError: h.consumer?.lastError ?? null,
    lastDlq: h.lastDlq ?? null,
    stalled: h.consumer?.stalled ?? null,
    lastReloadError: h.lastReloadError ?? null,
  };
}

/** Reply schema of one pipeline. */
export const pipelineViewSchema = {
  type: 'object',
  additionalProperties: true,
  properties: {
    name: { type: 'string' },
    description: { type: 'string' },
    file: { type: 'string' },
    status: { type: 'string', enum: ['running', 'paused', 'disabled', 'invalid'] },
    generation: { type: 'integer' },
    hash: { type: 'string', description: 'sha256 of the running version.' },
    fileHash: { type: ['string', 'null'], description: 'sha256 of the file on disk now; differs from hash while an edit fails to load. PUT takes this in If-Match.' },
    loadedAt: { type: 'string' },
    source: { type: 'object', additionalProperties: true },
    validate: { type: 'object', additionalProperties: true },
    filter: { type: 'string' },
    transform: { type: 'string' },
    sinks: { type: 'array', items: { type: 'object', additionalProperties: true } },
    dlq: { type: 'string' },
    counters: { type: 'object', additionalProperties: { type: 'integer' } },
    lag: { type: ['integer', 'null'] },
    pending: { type: ['integer', 'null'] },
    lastError: { type: ['object', 'null'], additionalProperties: true },
    lastReloadError: { type: ['string', 'null'] },
    lastDlq: {
      type: ['object', 'null'], description: 'The latest event this engine sent to the DLQ: reason, stage (and sink), source entry id, attempts, time.',
      properties: { reason: { type: 'string' }, stage: { type: 'string' }, sink: { type: 'string' }, id: { type: 'string' }, attempts: { type: 'integer' }, at: { type: 'string' } },
    },
    stalled: { type: ['object', 'null'], additionalProperties: true, description: 'Set while the pipeline cannot settle what it read (Redis refuses its DLQ writes): reason and since when.' },
  },
} as const;
