import type { FastifyPluginAsync } from 'fastify';
import { checkEvent } from '../../config/check-event.ts';
import { xaddFields, xaddPayload } from '../../runtime/sink-context.ts';
import { anyObject, errorReply, streamParam } from '../schemas.ts';
import { completeEvent } from '../../publish/publisher.ts';
import type { AdminDeps } from '../server.ts';
import type { Engine } from '../../runtime/engine.ts';

/** Prefixes of the engine's and BullMQ's own keys: never event streams, whatever is allowed. */
const INTERNAL_PREFIXES = ['synapse:', 'bull:'];

/**
 * Why `stream` may not be written by POST /events, or undefined. Allowed: a stream some loaded
 * pipeline reads, or one matching SYNAPSE_ADMIN_PUBLISH_STREAMS (`name` or `prefix*`). Never: a
 * pipeline's DLQ (the API must not forge DLQ entries) or an internal key.
 */
export function publishRefusal(engine: Engine, stream: string, allowed: readonly string[]): string | undefined {
  const sources = new Set<string>();
  const dlqs = new Set<string>();
  for (const h of engine.handles.values()) {
    if (h.pipeline.source.kind === 'stream') sources.add(h.pipeline.source.stream);
    dlqs.add(h.pipeline.dlq);
  }
  if (dlqs.has(stream) || stream.endsWith(':dlq')) return `'${stream}' is a DLQ: DLQ entries are written by the engine only`;
  if (INTERNAL_PREFIXES.some((p) => stream.startsWith(p))) return `'${stream}' is an internal key of the engine or its queues`;
  if (sources.has(stream)) return undefined;
  if (allowed.some((a) => (a.endsWith('*') ? stream.startsWith(a.slice(0, -1)) : a === stream))) return undefined;
  return `no pipeline reads '${stream.slice(0, 200)}': POST /events writes only to the source streams of loaded pipelines, and to those listed in SYNAPSE_ADMIN_PUBLISH_STREAMS`;
}

/** The `source` POST /events gives an event that names none. */
const ADMIN_SOURCE = 'synapse-admin';

/** POST /events/:stream: publish one event after validating it against its type's schema. */
export const eventRoutes: FastifyPluginAsync<AdminDeps> = async (app, { engine, publishStreams, refusals }) => {
  app.post<{ Params: { stream: string }; Body: Record<string, unknown>; Querystring: { schema?: string; codec?: 'json' | 'fields'; source?: string } }>('/events/:stream', {
    schema: {
      tags: ['events'], summary: "Validate an event against its schema (chosen by its `event` type) and XADD it",
      description: 'A missing `timestamp` is filled with the time of the request, a missing `source` with `?source=` (default synapse-admin), as the Publisher does.',
      params: streamParam,
      querystring: {
        type: 'object',
        properties: {
          schema: { type: 'string', description: 'Validate against this $id instead.' },
          codec: { enum: ['json', 'fields'], default: 'json', description: 'fields: write a flat field map (for codec: fields pipelines) instead of a payload field.' },
          source: { type: 'string', maxLength: 200, description: `The source of an event that names none (default ${ADMIN_SOURCE}).` },
        },
      },
      body: anyObject,
      response: { 201: { type: 'object', properties: { id: { type: 'string' }, stream: { type: 'string' } } }, 403: errorReply, 409: errorReply, 422: errorReply },
    },
  }, async (req, reply) => {
    const { stream } = req.params;
    const refused = publishRefusal(engine, stream, publishStreams);
    if (refused) {
      refusals.refuse('admin.publish_stream', 'POST /events to a stream outside the allow-list', { stream: stream.slice(0, 200) });
      return reply.code(403).send({ error: 'stream_not_allowed', message: refused });
    }
    const event = completeEvent(req.body, req.query.source ?? ADMIN_SOURCE);
    const why = checkEvent(event, engine.loadContext.schemas, req.query.schema);
    if (why) return reply.code(422).send({ error: 'event_invalid', message: why });
    const notStream = () => reply.code(409).send({ error: 'not_a_stream', message: `key '${stream.slice(0, 200)}' exists and is not a stream` });
    const type = await engine.connection.type(stream);
    if (type !== 'none' && type !== 'stream') return notStream();
    const write = req.query.codec === 'fields' ? xaddFields : xaddPayload;
    let id: string;
    try {
      id = await write(engine.connection, stream, event);
    } catch (err) {
      if (/WRONGTYPE/.test((err as Error).message)) return notStream();
      throw err;
    }
    return reply.code(201).send({ id, stream });
  });
};
