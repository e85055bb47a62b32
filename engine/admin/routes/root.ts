import type { FastifyPluginAsync } from 'fastify';
import type { AdminDeps } from '../server.ts';

const link = { type: 'string' } as const;

/**
 * GET /: where to start. Points to the API reference (Swagger UI at /docs, OpenAPI JSON at
 * /docs/json) and the main routes; `console` stays null until the engine serves a web console.
 */
export const rootRoutes: FastifyPluginAsync<AdminDeps> = async (app, { engine }) => {
  app.get('/', {
    schema: {
      tags: ['operations'], summary: 'Where to start: the API reference and the main routes',
      response: {
        200: {
          type: 'object',
          properties: {
            name: { type: 'string' },
            docs: { ...link, description: 'Swagger UI: every route, its parameters and replies.' },
            openapi: { ...link, description: 'The OpenAPI document as JSON.' },
            console: { type: ['string', 'null'], description: 'The web console, once the engine serves one.' },
            pipelines: { type: 'integer', description: 'How many pipelines run.' },
            routes: { type: 'object', additionalProperties: link },
          },
        },
      },
    },
  }, async () => ({
    name: 'synapse admin API',
    docs: '/docs',
    openapi: '/docs/json',
    console: null,
    pipelines: engine.handles.size,
    routes: {
      pipelines: '/pipelines', streams: '/streams', dlq: '/dlq/{stream}', health: '/health', ready: '/ready', metrics: '/metrics',
      tap: '/tap/{pipeline}', events: '/events/{stream}', validate: '/validate',
    },
  }));
};
