import type { FastifyPluginAsync } from 'fastify';
import type { AdminDeps } from '../server.ts';

const link = { type: 'string' } as const;

/**
 * GET /: where to start. Points to the API reference (Swagger UI at /docs, OpenAPI JSON at
 * /docs/json), the web console (/ui/, null when it was not built) and the main routes. A browser
 * (Accept: text/html) is sent to the console instead; API clients keep getting the JSON index.
 */
export const rootRoutes: FastifyPluginAsync<AdminDeps> = async (app, { engine, consolePath }) => {
  app.get('/', {
    schema: {
      tags: ['operations'], summary: 'Where to start: the API reference, the console and the main routes',
      description: 'A browser (an Accept naming text/html before, or instead of, application/json) gets a 302 to the web console at /ui/ instead, without the token; every other client gets this index.',
      response: {
        200: {
          type: 'object',
          properties: {
            name: { type: 'string' },
            docs: { ...link, description: 'Swagger UI: every route, its parameters and replies.' },
            openapi: { ...link, description: 'The OpenAPI document as JSON.' },
            console: { type: ['string', 'null'], description: 'The web console (null when the package was installed without it built).' },
            pipelines: { type: 'integer', description: 'How many pipelines run.' },
            routes: { type: 'object', additionalProperties: link },
          },
        },
      },
    },
  }, async (req, reply) => {
    // Only a browser navigating here: a client that also takes JSON, or says nothing, gets the index.
    if (consolePath && wantsHtml(req.headers.accept)) return reply.redirect(consolePath);
    return index();
  });

  const index = () => ({
    name: 'synapse admin API',
    docs: '/docs',
    openapi: '/docs/json',
    console: consolePath ?? null,
    pipelines: engine.handles.size,
    routes: {
      pipelines: '/pipelines', streams: '/streams', dlq: '/dlq/{stream}', health: '/health', ready: '/ready', metrics: '/metrics',
      tap: '/tap/{pipeline}', events: '/events/{stream}', validate: '/validate',
    },
  });
};

/** Whether an Accept header asks for a web page (text/html before, or instead of, JSON). */
export function wantsHtml(accept: string | undefined): boolean {
  if (!accept) return false;
  const types = accept.split(',').map((t) => t.split(';')[0]!.trim().toLowerCase());
  const html = types.indexOf('text/html');
  const json = types.indexOf('application/json');
  return html >= 0 && (json < 0 || html < json);
}
