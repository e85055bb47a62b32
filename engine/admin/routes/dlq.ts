import type { FastifyPluginAsync } from 'fastify';
import { listDlq, redriveDlq } from '../../runtime/dlq.ts';
import { streamParam } from '../schemas.ts';
import type { AdminDeps } from '../server.ts';

const dlqEntry = {
  type: 'object',
  properties: {
    id: { type: 'string' }, payload: { type: 'string' }, error: { type: 'string' }, stage: { type: 'string' },
    pipeline: { type: 'string' }, source_stream: { type: 'string' }, source_id: { type: 'string' },
    attempts: { type: 'integer' }, failed_at: { type: 'string' },
  },
} as const;

/** GET /dlq/:stream and POST /dlq/:stream/redrive. */
export const dlqRoutes: FastifyPluginAsync<AdminDeps> = async (app, { engine }) => {
  app.get<{ Params: { stream: string }; Querystring: { from?: string; count?: number } }>('/dlq/:stream', {
    schema: {
      tags: ['dlq'], summary: 'DLQ entries, oldest first, with their reason and stage',
      params: streamParam,
      querystring: { type: 'object', properties: { from: { type: 'string', description: 'An entry id or ISO time.' }, count: { type: 'integer', minimum: 1, maximum: 1000, default: 100 } } },
      response: { 200: { type: 'object', properties: { stream: { type: 'string' }, length: { type: 'integer' }, entries: { type: 'array', items: dlqEntry } } } },
    },
  }, async (req) => {
    const redis = engine.connection;
    return { stream: req.params.stream, length: await redis.xlen(req.params.stream), entries: await listDlq(redis, req.params.stream, req.query) };
  });

  app.post<{ Params: { stream: string }; Body: { ids?: string[]; count?: number } }>('/dlq/:stream/redrive', {
    schema: {
      tags: ['dlq'], summary: 'Send DLQ entries back to their source stream; each leaves the DLQ only once re-published',
      params: streamParam,
      body: { type: 'object', additionalProperties: false, properties: { ids: { type: 'array', items: { type: 'string' }, maxItems: 1000 }, count: { type: 'integer', minimum: 1, maximum: 1000 } } },
      response: {
        200: {
          type: 'object',
          properties: {
            redriven: { type: 'array', items: { type: 'object', properties: { dlqId: { type: 'string' }, stream: { type: 'string' }, newId: { type: 'string' } } } },
            missing: { type: 'array', items: { type: 'string' } },
          },
        },
      },
    },
  }, async (req) => {
    const codecOf = (pipeline: string) => engine.handles.get(pipeline)?.pipeline.source.codec;
    return redriveDlq(engine.connection, req.params.stream, { ...(req.body ?? {}), codecOf });
  });
};
