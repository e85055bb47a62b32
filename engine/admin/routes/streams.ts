import { isUtf8 } from 'node:buffer';
import type { FastifyPluginAsync } from 'fastify';
import type { Engine } from '../../runtime/engine.ts';
import { toRecord } from '../../runtime/stream-reader.ts';
import { errorReply, streamParam } from '../schemas.ts';
import type { AdminDeps } from '../server.ts';

/** Most entries one peek returns. */
export const PEEK_MAX_COUNT = 100;
/** Longest field value a peek shows; longer ones are cut (and marked). */
export const PEEK_MAX_VALUE_BYTES = 16 * 1024;
/** About the most field bytes one peek returns: entries past it are left for the next page, fields past it are counted (`omittedFields`). */
export const PEEK_MAX_REPLY_BYTES = 1024 * 1024;
/** Entries read from Redis at a time (a peek stops reading once its reply is full). */
const PEEK_BATCH = 10;
/** An entry id `before` may name: each part a 64-bit unsigned integer (Redis refuses more). */
const U64_MAX = 2n ** 64n - 1n;
function validId(id: string): boolean {
  return id.split('-').every((part) => BigInt(part) <= U64_MAX);
}

/** Every stream the pipelines use, with its role: source, dlq or output (a publish sink's stream). */
function streamRoles(engine: Engine): Map<string, string> {
  const roles = new Map<string, string>();
  for (const h of engine.handles.values()) {
    const p = h.pipeline;
    if (p.source.kind === 'stream') roles.set(p.source.stream, 'source');
    if (!roles.has(p.dlq)) roles.set(p.dlq, 'dlq');
    for (const s of p.sinks) {
      const stream = (s.config as { stream?: unknown }).stream;
      if (s.type === 'publish' && typeof stream === 'string' && !roles.has(stream)) roles.set(stream, 'output');
    }
  }
  return roles;
}

/** One field as a peek shows it: its name (cut like a value) and value. */
function peekField(name: Buffer, value: Buffer): { name: string; value: string; encoding?: 'base64'; truncated?: true; bytes?: number } {
  return { name: name.subarray(0, PEEK_MAX_VALUE_BYTES).toString('utf8'), ...peekValue(value) };
}

/** One field value as a peek shows it: UTF-8 text, or base64 when it is not; cut past the limit. */
function peekValue(b: Buffer): { value: string; encoding?: 'base64'; truncated?: true; bytes?: number } {
  const cut = b.length > PEEK_MAX_VALUE_BYTES ? b.subarray(0, PEEK_MAX_VALUE_BYTES) : b;
  const extra = cut === b ? {} : { truncated: true as const, bytes: b.length };
  // A cut may split a UTF-8 sequence: judge the whole value, then decode the kept part leniently.
  if (isUtf8(b)) return { value: cut.toString('utf8'), ...extra };
  return { value: cut.toString('base64'), encoding: 'base64', ...extra };
}

/**
 * GET /streams: every stream the pipelines read or write, with length, groups, pending and lag.
 * GET /streams/:stream/entries: the latest entries of one of them (a peek; nothing is acknowledged).
 */
export const streamRoutes: FastifyPluginAsync<AdminDeps> = async (app, { engine }) => {
  app.get('/streams', {
    schema: {
      tags: ['streams'], summary: 'Streams the pipelines use: length, consumer groups, pending, lag',
      response: {
        200: {
          type: 'object',
          properties: {
            streams: {
              type: 'array',
              items: {
                type: 'object',
                properties: {
                  stream: { type: 'string' }, length: { type: 'integer' }, role: { type: 'string' },
                  groups: {
                    type: 'array',
                    items: { type: 'object', properties: { name: { type: 'string' }, consumers: { type: 'integer' }, pending: { type: 'integer' }, lag: { type: ['integer', 'null'] }, lastDeliveredId: { type: 'string' } } },
                  },
                },
              },
            },
          },
        },
      },
    },
  }, async () => {
    const roles = streamRoles(engine);
    const redis = engine.connection;
    const streams = await Promise.all([...roles.entries()].sort().map(async ([stream, role]) => {
      const length = await redis.xlen(stream);
      let groups: unknown[] = [];
      if (length > 0 || role === 'source') {
        const rows = (await redis.xinfo('GROUPS', stream).catch(() => [])) as unknown[][];
        groups = rows.map((row) => {
          const g = toRecord(row);
          return { name: String(g.name), consumers: Number(g.consumers), pending: Number(g.pending), lag: g.lag == null ? null : Number(g.lag), lastDeliveredId: String(g['last-delivered-id']) };
        });
      }
      return { stream, role, length, groups };
    }));
    return { streams };
  });

  app.get<{ Params: { stream: string }; Querystring: { count: number; before?: string } }>('/streams/:stream/entries', {
    schema: {
      tags: ['streams'], summary: 'The latest entries of a stream the pipelines use, newest first (a peek: read with XREVRANGE, never acknowledged)',
      description: `Only streams GET /streams lists (a source, DLQ or publish output of a loaded pipeline); any other key gets 404. At most ${PEEK_MAX_COUNT} entries; a field value over ${PEEK_MAX_VALUE_BYTES} bytes is cut (\`truncated\`, with its size in \`bytes\`), and a reply holds about ${PEEK_MAX_REPLY_BYTES} bytes of fields (fewer entries then, and an entry's fields past it only counted, \`omittedFields\`); one that is not UTF-8 comes as base64 (\`encoding\`). \`before\` (an entry id) pages to older entries; \`next\` is the \`before\` of the following page (null at the end).`,
      params: streamParam,
      querystring: { type: 'object', additionalProperties: false, properties: { count: { type: 'integer', minimum: 1, maximum: PEEK_MAX_COUNT, default: 20 }, before: { type: 'string', pattern: '^[0-9]+(-[0-9]+)?$' } } },
      response: {
        200: {
          type: 'object',
          properties: {
            stream: { type: 'string' }, role: { type: 'string' }, length: { type: 'integer' },
            entries: {
              type: 'array',
              items: {
                type: 'object',
                properties: {
                  id: { type: 'string' },
                  omittedFields: { type: 'integer', description: 'Fields left out of this entry: the reply was full.' },
                  fields: {
                    type: 'array', description: 'The entry\'s fields in order.',
                    items: { type: 'object', properties: { name: { type: 'string' }, value: { type: 'string' }, encoding: { type: 'string' }, truncated: { type: 'boolean' }, bytes: { type: 'integer' } } },
                  },
                },
              },
            },
            next: { type: ['string', 'null'] },
          },
        },
        400: errorReply,
        404: errorReply,
      },
    },
  }, async (req, reply) => {
    const { stream } = req.params;
    const role = streamRoles(engine).get(stream);
    if (!role) return reply.code(404).send({ error: 'not_found', message: `no pipeline uses a stream '${stream.slice(0, 200)}' (GET /streams lists those that can be peeked)` });
    if (req.query.before !== undefined && !validId(req.query.before)) return reply.code(400).send({ error: 'bad_request', message: 'before: each part of an entry id is at most 18446744073709551615' });
    const redis = engine.connection;
    // Read a few entries at a time, and stop once the reply holds about PEEK_MAX_REPLY_BYTES:
    // entries with huge or many fields cannot make one peek read or answer megabytes on end.
    const entries: { id: string; fields: ReturnType<typeof peekField>[]; omittedFields?: number }[] = [];
    let budget = PEEK_MAX_REPLY_BYTES;
    let cursor = req.query.before;
    let more = true;
    while (more && entries.length < req.query.count && budget > 0) {
      const want = Math.min(PEEK_BATCH, req.query.count - entries.length);
      // An exclusive end before 0-0 is an error in Redis: nothing is older.
      if (cursor !== undefined && /^0+(-0+)?$/.test(cursor)) { more = false; break; }
      const raw: [Buffer, Buffer[]][] = await redis.xrevrangeBuffer(stream, cursor !== undefined ? `(${cursor}` : '+', '-', 'COUNT', want);
      if (raw.length < want) more = false;
      for (const [id, fields] of raw) {
        if (budget <= 0) { more = true; break; }
        const out = [];
        let i = 0;
        for (; i + 1 < fields.length && (budget > 0 || out.length === 0); i += 2) {
          const field = peekField(fields[i]!, fields[i + 1]!);
          budget -= field.name.length + field.value.length;
          out.push(field);
        }
        const omitted = Math.floor((fields.length - i) / 2);
        entries.push({ id: id.toString(), fields: out, ...(omitted ? { omittedFields: omitted } : {}) });
        cursor = id.toString();
      }
    }
    const next = entries.length > 0 && (more || entries.length === req.query.count) ? entries[entries.length - 1]!.id : null;
    return { stream, role, length: await redis.xlen(stream), entries, next };
  });
};
