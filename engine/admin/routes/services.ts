import type { FastifyPluginAsync } from 'fastify';
import { ServiceRegistry } from '../../runtime/service-registry.ts';
import { errorReply, nameParam } from '../schemas.ts';
import type { AdminDeps } from '../server.ts';

const serviceSchema = {
  type: 'object',
  properties: {
    name: { type: 'string' }, url: { type: 'string' }, capabilities: { type: 'array', items: { type: 'string' } },
    metadata: { type: 'object', additionalProperties: true }, ttlSeconds: { type: 'integer' },
    registeredAt: { type: 'string' }, lastHeartbeat: { type: 'string' },
  },
} as const;

/** POST /services (register or heartbeat), GET /services?capability=, DELETE /services/:name. */
export const serviceRoutes: FastifyPluginAsync<AdminDeps> = async (app, { engine }) => {
  const registry = new ServiceRegistry(() => engine.connection);

  app.post<{ Body: { name: string; url?: string; capabilities?: string[]; metadata?: Record<string, unknown>; ttlSeconds?: number } }>('/services', {
    schema: {
      tags: ['services'], summary: 'Register a service, or refresh it (heartbeat) before its TTL runs out',
      body: {
        type: 'object', additionalProperties: false, required: ['name'],
        properties: {
          name: { type: 'string', pattern: '^[A-Za-z0-9][A-Za-z0-9_.-]*$' },
          url: { type: 'string' },
          capabilities: { type: 'array', items: { type: 'string', minLength: 1 }, maxItems: 100 },
          metadata: { type: 'object', additionalProperties: true },
          ttlSeconds: { type: 'integer', minimum: 1, maximum: 86400, default: 30 },
        },
      },
      response: { 200: serviceSchema },
    },
  }, async (req) => registry.heartbeat(req.body));

  app.get<{ Querystring: { capability?: string } }>('/services', {
    schema: {
      tags: ['services'], summary: 'Live services, optionally those with a capability',
      querystring: { type: 'object', properties: { capability: { type: 'string' } } },
      response: { 200: { type: 'object', properties: { services: { type: 'array', items: serviceSchema } } } },
    },
  }, async (req) => ({ services: await registry.list(req.query.capability) }));

  app.delete<{ Params: { name: string } }>('/services/:name', {
    schema: { tags: ['services'], summary: 'Deregister a service', params: nameParam, response: { 204: { type: 'null' }, 404: errorReply } },
  }, async (req, reply) => {
    if (!(await registry.remove(req.params.name))) return reply.code(404).send({ error: 'not_found', message: `no service '${req.params.name}'` });
    return reply.code(204).send();
  });
};
