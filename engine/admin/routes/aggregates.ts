import type { FastifyPluginAsync } from 'fastify';
import { readAggregates } from '../../../plugins/sinks/aggregate.ts';
import { errorReply, nameParam } from '../schemas.ts';
import type { AdminDeps } from '../server.ts';

/** GET /aggregates/:pipeline: the windows of a pipeline's aggregate sinks, newest first. */
export const aggregateRoutes: FastifyPluginAsync<AdminDeps> = async (app, { engine }) => {
  app.get<{ Params: { name: string }; Querystring: { from?: string; to?: string; key?: string; limit?: number } }>('/aggregates/:name', {
    schema: {
      tags: ['aggregates'], summary: "Windows of a pipeline's aggregate sinks (figures per key), newest first",
      params: nameParam,
      querystring: {
        type: 'object',
        properties: {
          from: { type: 'string', description: 'ISO time or ms: windows ending after it.' },
          to: { type: 'string', description: 'ISO time or ms: windows starting before it.' },
          key: { type: 'string', description: 'Only this group key.' },
          limit: { type: 'integer', minimum: 1, maximum: 1000, default: 100 },
        },
      },
      response: {
        200: { type: 'object', properties: { pipeline: { type: 'string' }, sinks: { type: 'array', items: { type: 'object', properties: { id: { type: 'string' }, window: { type: 'string' }, windows: { type: 'array', items: { type: 'object', additionalProperties: true } } } } } } },
        404: errorReply, 422: errorReply,
      },
    },
  }, async (req, reply) => {
    const h = engine.handles.get(req.params.name);
    const specs = h?.pipeline.sinks.filter((s) => s.type === 'aggregate') ?? [];
    if (!h || specs.length === 0) return reply.code(404).send({ error: 'not_found', message: `no pipeline '${req.params.name}' with an aggregate sink` });
    const time = (v?: string) => (v === undefined ? undefined : /^[0-9]+$/.test(v) ? Number(v) : Date.parse(v));
    const from = time(req.query.from);
    const to = time(req.query.to);
    if (Number.isNaN(from) || Number.isNaN(to)) return reply.code(422).send({ error: 'bad_time', message: 'from/to must be ISO 8601 times or milliseconds' });
    const sinks = await Promise.all(specs.map(async (s) => {
      const config = s.config as { window: string; measures: Record<string, never[]> };
      return { id: s.id, window: config.window, windows: await readAggregates(engine.connection, h.pipeline.name, s.id, config, { from, to, key: req.query.key, limit: req.query.limit }) };
    }));
    return { pipeline: h.pipeline.name, sinks };
  });
};
