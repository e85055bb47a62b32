import type { FastifyPluginAsync } from 'fastify';
import { toRecord } from '../../runtime/stream-reader.ts';
import type { AdminDeps } from '../server.ts';

/** GET /streams: every stream the pipelines read or write, with length, groups, pending and lag. */
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
};
