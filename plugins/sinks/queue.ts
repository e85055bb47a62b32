import type { JobsOptions } from 'bullmq';
import { defineSink } from '../../engine/plugins/define-sink.ts';
import { SinkClosedError } from '../../engine/errors.ts';

interface QueueConfig {
  queue: string;
  job: string;
  options: JobsOptions;
}

/** A BullMQ job id for an entry: stable across redeliveries, and free of ':' (BullMQ refuses it). */
export function jobIdFor(pipeline: string, entryId: string): string {
  return `${pipeline}-${entryId}`.replace(/:/g, '_');
}

/**
 * Enqueues each transformed event as a BullMQ job. The job id comes from the source entry id, so
 * a redelivered entry does not enqueue twice (while BullMQ still keeps the first job: keep
 * `removeOnComplete` an age or count, not `true`, if redeliveries can come late).
 */
export default defineSink<QueueConfig>({
  name: 'queue',
  description: 'Enqueue each event as a BullMQ job (deduplicated by source entry id)',
  configSchema: {
    type: 'object',
    additionalProperties: false,
    required: ['queue', 'job'],
    properties: {
      queue: { type: 'string', minLength: 1, description: 'BullMQ queue name.' },
      job: { type: 'string', minLength: 1, description: 'Job name.' },
      options: {
        type: 'object',
        default: {},
        description: 'BullMQ job options (attempts, backoff, delay, priority, removeOnComplete, ...); jobId is set by the sink.',
        properties: { jobId: { not: {}, description: 'Set by the sink from the entry id.' } },
      },
    },
  },
  examples: [
    { queue: 'challenge-validation', job: 'validate', options: {} },
    { queue: 'emails', job: 'send', options: { attempts: 5, backoff: { type: 'exponential', delay: 1000 }, removeOnComplete: { age: 86400 } } },
  ],
  create(config, ctx) {
    let closed = false;
    return {
      async write(batch) {
        if (closed) throw new SinkClosedError('queue sink is closed');
        const queue = ctx.queue(config.queue);
        const jobs = batch.map((m) => ({ name: config.job, data: m.value, opts: { ...config.options, jobId: jobIdFor(ctx.pipeline, m.id) } }));
        try {
          await queue.addBulk(jobs);
          ctx.metrics.count('jobs_enqueued', batch.length);
          return;
        } catch {
          // addBulk stops at the first failure, after adding the jobs before it. Add them one by
          // one to learn which failed; the ones already added are no-ops (same job ids).
          const results = await Promise.all(jobs.map((j) => queue.add(j.name, j.data, j.opts).then(() => undefined, (err: Error) => err)));
          ctx.metrics.count('jobs_enqueued', results.filter((r) => !r).length);
          return results;
        }
      },
      async close() {
        closed = true;
      },
    };
  },
});
