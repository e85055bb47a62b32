import type { FastifyPluginAsync } from 'fastify';
import type { AdminDeps } from '../server.ts';

const readyBody = {
  type: 'object',
  properties: {
    status: { type: 'string' },
    redis: { type: 'string' },
    pipelines: { type: 'integer' },
    stalled: {
      type: 'array', description: 'Pipelines that cannot settle what they read (Redis refuses their DLQ writes); they read nothing new until it does.',
      items: { type: 'object', properties: { pipeline: { type: 'string' }, reason: { type: 'string' }, since: { type: 'string' } } },
    },
  },
} as const;

/**
 * GET /health (the process answers), /ready (Redis connected, pipelines loaded, none stalled),
 * /metrics.
 */
export const healthRoutes: FastifyPluginAsync<AdminDeps> = async (app, { engine }) => {
  app.get('/health', {
    schema: { tags: ['operations'], summary: 'Liveness: the process answers', response: { 200: { type: 'object', properties: { status: { type: 'string' } } } } },
  }, async () => ({ status: 'ok' }));

  app.get('/ready', {
    schema: {
      tags: ['operations'], summary: 'Readiness: Redis is connected, the pipelines are loaded and none is stalled',
      response: { 200: readyBody, 503: readyBody },
    },
  }, async (_req, reply) => {
    const redis = engine.redisStatus;
    const stalled = [...engine.handles.values()].flatMap((h) => h.consumer?.stalled ? [{ pipeline: h.pipeline.name, ...h.consumer.stalled }] : []);
    const ok = redis === 'ready' && engine.started && stalled.length === 0;
    const body = { status: ok ? 'ready' : 'not-ready', redis, pipelines: engine.handles.size, stalled };
    return reply.code(body.status === 'ready' ? 200 : 503).send(body);
  });

  app.get('/metrics', {
    schema: { tags: ['operations'], summary: 'Prometheus metrics', produces: ['text/plain'] },
  }, async (_req, reply) => {
    const text = await engine.metrics.registry.metrics();
    return reply.type(engine.metrics.registry.contentType).send(text);
  });
};
