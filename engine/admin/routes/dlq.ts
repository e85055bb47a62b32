import type { FastifyPluginAsync } from 'fastify';
import { listDlqPage, redriveDlq, type RedriveTarget } from '../../runtime/dlq.ts';
import { dlqLimitsFromEnv } from '../../runtime/dlq-limits.ts';
import { PipelineRunner } from '../../runner/pipeline-runner.ts';
import { errorReply, streamParam } from '../schemas.ts';
import type { AdminDeps } from '../server.ts';

const dlqEntry = {
  type: 'object',
  properties: {
    id: { type: 'string' }, payload: { type: 'string' }, error: { type: 'string' }, stage: { type: 'string' },
    pipeline: { type: 'string' }, source_stream: { type: 'string' }, source_id: { type: 'string' },
    attempts: { type: 'integer' }, failed_at: { type: 'string' },
    payload_encoding: { type: 'string', description: '`base64` when the payload is not UTF-8 (stored as its original bytes).' },
    payload_truncated: { type: 'boolean', description: 'The payload was over SYNAPSE_DLQ_MAX_PAYLOAD_BYTES: only its first bytes are kept.' },
    payload_bytes: { type: 'integer', description: 'Size of the original payload, when truncated.' },
    payload_sha256: { type: 'string', description: 'sha256 of the original payload, when truncated.' },
  },
} as const;

/** Whether a key exists and holds something else than a stream. */
async function notAStream(redis: import('../../runtime/redis-client.ts').RedisConnection, key: string): Promise<boolean> {
  const type = await redis.type(key);
  return type !== 'none' && type !== 'stream';
}

/** GET /dlq/:stream and POST /dlq/:stream/redrive. */
export const dlqRoutes: FastifyPluginAsync<AdminDeps> = async (app, { engine }) => {
  app.get<{ Params: { stream: string }; Querystring: { from?: string; count?: number } }>('/dlq/:stream', {
    schema: {
      tags: ['dlq'], summary: 'DLQ entries, oldest first, with their reason and stage, a page at a time',
      description: 'At most `count` entries and about SYNAPSE_DLQ_LIST_MAX_BYTES of payload per page; `next` is the `from` of the following page (null at the end).',
      params: streamParam,
      querystring: { type: 'object', properties: { from: { type: 'string', description: 'An entry id or ISO time.' }, count: { type: 'integer', minimum: 1, maximum: 1000, default: 100 } } },
      response: { 200: { type: 'object', properties: { stream: { type: 'string' }, length: { type: 'integer' }, entries: { type: 'array', items: dlqEntry }, next: { type: ['string', 'null'] } } }, 400: errorReply, 409: errorReply },
    },
  }, async (req, reply) => {
    const redis = engine.connection;
    if (await notAStream(redis, req.params.stream)) return reply.code(409).send({ error: 'not_a_stream', message: `key '${req.params.stream.slice(0, 200)}' is not a stream` });
    // A `from` that is neither an id nor a time: BadRequestError, answered 400.
    const page = await listDlqPage(redis, req.params.stream, { ...req.query, maxBytes: dlqLimitsFromEnv().listMaxBytes });
    return { stream: req.params.stream, length: await redis.xlen(req.params.stream), ...page };
  });

  // One redrive at a time: two overlapping ones would run the same entries twice.
  let redriving: Promise<unknown> = Promise.resolve();

  app.post<{ Params: { stream: string }; Body: { ids?: string[]; count?: number } }>('/dlq/:stream/redrive', {
    schema: {
      tags: ['dlq'],
      summary: 'Run DLQ entries again through the pipeline that failed them',
      description: 'Each entry runs through the running version of its pipeline, in the engine, with its original source id (the idempotency key its sinks see): never re-published to the source stream, so other consumer groups do not see it again. Settled, it leaves the DLQ; failing again, it is replaced by a new DLQ entry. Entries that cannot be run are skipped with the reason and stay.',
      params: streamParam,
      body: { type: 'object', additionalProperties: false, properties: { ids: { type: 'array', items: { type: 'string' }, maxItems: 1000 }, count: { type: 'integer', minimum: 1, maximum: 1000 } } },
      response: {
        200: {
          type: 'object',
          properties: {
            redriven: {
              type: 'array',
              items: {
                type: 'object',
                properties: {
                  dlqId: { type: 'string' }, pipeline: { type: 'string' }, sourceId: { type: 'string' },
                  outcome: { enum: ['sunk', 'filtered', 'dropped', 'dlq'] }, newDlqId: { type: 'string' }, error: { type: 'string' },
                },
              },
            },
            skipped: { type: 'array', items: { type: 'object', properties: { dlqId: { type: 'string' }, reason: { type: 'string' } } } },
            missing: { type: 'array', items: { type: 'string' } },
          },
        },
        409: errorReply,
      },
    },
  }, async (req, reply) => {
    if (await notAStream(engine.connection, req.params.stream)) return reply.code(409).send({ error: 'not_a_stream', message: `key '${req.params.stream.slice(0, 200)}' is not a stream` });
    const targetFor = (name: string): RedriveTarget | string => {
      const h = engine.handles.get(name);
      if (!h) return `pipeline '${name}' is not running`;
      if (h.status === 'disabled') return `pipeline '${name}' is disabled`;
      return { runner: new PipelineRunner(h.pipeline, h.sinks), pipeline: h.pipeline };
    };
    const run = redriving.then(async () => {
      const report = await redriveDlq(engine.connection, req.params.stream, { ...(req.body ?? {}), targetFor });
      for (const r of report.redriven) if (r.outcome === 'dlq') engine.trimDlqSoon(engine.handles.get(r.pipeline)?.pipeline.dlq ?? req.params.stream);
      return report;
    });
    redriving = run.catch(() => undefined);
    return run;
  });
};
