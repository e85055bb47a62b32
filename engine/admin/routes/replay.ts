import type { FastifyPluginAsync } from 'fastify';
import { MAX_RUNNING_REPLAYS, ReplayJobs, type ReplayRequest } from '../../runtime/replay.ts';
import { errorReply } from '../schemas.ts';
import type { AdminDeps } from '../server.ts';

const jobSchema = {
  type: 'object',
  properties: {
    id: { type: 'string' }, status: { type: 'string' }, request: { type: 'object', additionalProperties: true },
    scanned: { type: 'integer' }, matched: { type: 'integer' }, written: { type: 'integer' }, progress: { type: 'number' },
    lastId: { type: 'string' }, startedAt: { type: 'string' }, finishedAt: { type: 'string' }, error: { type: 'string' },
  },
} as const;

/** POST /replay (start re-feeding a time range), GET /replay/:id (its progress), DELETE /replay/:id (stop it). */
export const replayRoutes: FastifyPluginAsync<AdminDeps> = async (app, { engine }) => {
  const jobs = new ReplayJobs(
    () => engine.connection,
    (name) => {
      const h = engine.handles.get(name);
      if (!h || h.pipeline.source.kind !== 'stream') return undefined;
      return (entries, stream) => engine.runUnacknowledged(h, entries, stream);
    },
    engine.logger,
  );

  app.post<{ Body: ReplayRequest }>('/replay', {
    schema: {
      tags: ['replay'], summary: 'Re-feed a time range of a stream (optionally some event types) into a stream or a pipeline',
      body: {
        type: 'object', additionalProperties: false, required: ['stream', 'from', 'to'],
        properties: {
          // A job keeps its request while GET /replay/:id answers for it: bounded, as names are.
          stream: { type: 'string', minLength: 1, maxLength: 1024 },
          from: { type: 'string', maxLength: 64, description: 'Stream id or ISO 8601 time.' },
          to: { type: 'string', maxLength: 64, description: 'Stream id or ISO 8601 time.' },
          types: { type: 'array', maxItems: 1000, items: { type: 'string', maxLength: 256 } },
          toStream: { type: 'string', minLength: 1, maxLength: 1024 },
          pipeline: { type: 'string', minLength: 1, maxLength: 1024 },
        },
      },
      response: { 202: jobSchema, 422: errorReply, 429: errorReply },
    },
  }, async (req, reply) => {
    const why = jobs.check(req.body);
    if (why) return reply.code(422).send({ error: 'replay_invalid', message: why });
    if (jobs.running() >= MAX_RUNNING_REPLAYS) {
      return reply.code(429).send({ error: 'replay_busy', message: `${MAX_RUNNING_REPLAYS} replays are running already: wait for one to finish, or stop one (DELETE /replay/:id)` });
    }
    return reply.code(202).send(jobs.start(req.body));
  });

  app.get<{ Params: { id: string } }>('/replay/:id', {
    schema: {
      tags: ['replay'], summary: "A replay's progress",
      params: { type: 'object', properties: { id: { type: 'string' } } },
      response: { 200: jobSchema, 404: errorReply },
    },
  }, async (req, reply) => jobs.get(req.params.id) ?? reply.code(404).send({ error: 'not_found', message: `no replay '${req.params.id}'` }));

  app.delete<{ Params: { id: string } }>('/replay/:id', {
    schema: {
      tags: ['replay'], summary: 'Stop a running replay after the chunk (500 entries) in hand; its status becomes cancelled',
      params: { type: 'object', properties: { id: { type: 'string' } } },
      response: { 202: jobSchema, 404: errorReply, 409: errorReply },
    },
  }, async (req, reply) => {
    const job = jobs.cancel(req.params.id);
    if (!job) return reply.code(404).send({ error: 'not_found', message: `no replay '${req.params.id}'` });
    if (job.status !== 'running') return reply.code(409).send({ error: 'replay_finished', message: `replay '${job.id}' has finished (${job.status})` });
    return reply.code(202).send(job);
  });
};
