import type { FastifyPluginAsync } from 'fastify';
import type { AdminDeps } from '../server.ts';

/** GET /health (the process answers), /ready (Redis connected, pipelines loaded), /metrics. */
export const healthRoutes: FastifyPluginAsync<AdminDeps> = async (app, { engine }) => {
  app.get('/health', {
    schema: { tags: ['operations'], summary: 'Liveness: the process answers', response: { 200: { type: 'object', properties: { status: { type: 'string' } } } } },
  }, async () => ({ status: 'ok' }));

  app.get('/ready', {
    schema: {
      tags: ['operations'], summary: 'Readiness: Redis is connected and the pipelines are loaded',
      response: {
        200: { type: 'object', properties: { status: { type: 'string' }, redis: { type: 'string' }, pipelines: { type: 'integer' } } },
        503: { type: 'object', properties: { status: { type: 'string' }, redis: { type: 'string' }, pipelines: { type: 'integer' } } },
      },
    },
  }, async (_req, reply) => {
    const redis = engine.redisStatus;
    const body = { status: redis === 'ready' && engine.started ? 'ready' : 'not-ready', redis, pipelines: engine.handles.size };
    return reply.code(body.status === 'ready' ? 200 : 503).send(body);
  });

  app.get('/metrics', {
    schema: { tags: ['operations'], summary: 'Prometheus metrics (SPEC §10)', produces: ['text/plain'] },
  }, async (_req, reply) => {
    const text = await engine.metrics.registry.metrics();
    return reply.type(engine.metrics.registry.contentType).send(text);
  });
};
