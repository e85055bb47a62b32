import type { FastifyPluginAsync } from 'fastify';
import { checkEvent } from '../../config/check-event.ts';
import { xaddFields, xaddPayload } from '../../runtime/sink-context.ts';
import { anyObject, errorReply, streamParam } from '../schemas.ts';
import type { AdminDeps } from '../server.ts';

/** POST /events/:stream: publish one event after validating it against its type's schema. */
export const eventRoutes: FastifyPluginAsync<AdminDeps> = async (app, { engine }) => {
  app.post<{ Params: { stream: string }; Body: Record<string, unknown>; Querystring: { schema?: string; codec?: 'json' | 'fields' } }>('/events/:stream', {
    schema: {
      tags: ['events'], summary: "Validate an event against its schema (chosen by its `event` type) and XADD it",
      params: streamParam,
      querystring: {
        type: 'object',
        properties: {
          schema: { type: 'string', description: 'Validate against this $id instead.' },
          codec: { enum: ['json', 'fields'], default: 'json', description: 'fields: write a flat field map (for codec: fields pipelines) instead of a payload field.' },
        },
      },
      body: anyObject,
      response: { 201: { type: 'object', properties: { id: { type: 'string' }, stream: { type: 'string' } } }, 422: errorReply },
    },
  }, async (req, reply) => {
    const why = checkEvent(req.body, engine.loadContext.schemas, req.query.schema);
    if (why) return reply.code(422).send({ error: 'event_invalid', message: why });
    const write = req.query.codec === 'fields' ? xaddFields : xaddPayload;
    const id = await write(engine.connection, req.params.stream, req.body);
    return reply.code(201).send({ id, stream: req.params.stream });
  });
};
