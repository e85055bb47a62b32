import { Queue, Worker } from 'bullmq';
import { defineSource } from '../../engine/plugins/define-source.ts';
import { PAYLOAD_FIELD } from '../../engine/runner/codec.ts';

interface ScheduleConfig {
  /** Interval in milliseconds. */
  everyMs: number;
}

/**
 * A pipeline that fires every N milliseconds, once across all replicas: a BullMQ job scheduler
 * (upserted by every replica, so the last definition wins) produces one job per tick, and
 * whichever replica's worker takes it runs the pipeline with `{event: "tick", timestamp}`.
 */
export default defineSource<ScheduleConfig>({
  name: 'schedule',
  description: 'Fire on an interval, once across all replicas (BullMQ job scheduler)',
  create(config, ctx) {
    const queueName = `synapse-schedule-${ctx.pipeline}`;
    let queue: Queue | undefined;
    let worker: Worker | undefined;
    let stopping: Promise<void> | undefined;
    let redis: ReturnType<typeof ctx.bullmq> | undefined;
    return {
      async start(handler) {
        redis = ctx.bullmq();
        const { connection, prefix } = redis;
        queue = new Queue(queueName, { connection, prefix });
        // Without a listener BullMQ prints each connection error to stderr; the engine's own
        // connection logs an outage once, and a command that fails rejects where it was sent.
        queue.on('error', () => undefined);
        await queue.upsertJobScheduler(ctx.pipeline, { every: config.everyMs }, { name: 'tick', opts: { removeOnComplete: 100, removeOnFail: 1000 } });
        worker = new Worker(queueName, async (job) => {
          const timestamp = new Date(job.timestamp).toISOString();
          // The job id is unique per tick and the same on a retry: sinks can use it for idempotency.
          const id = `${job.timestamp}-${String(job.id ?? '0').replace(/[^0-9]/g, '').slice(-6) || '0'}`;
          await handler([{ id, fields: [PAYLOAD_FIELD, JSON.stringify({ event: 'tick', timestamp })] }]);
        }, { connection, prefix, concurrency: 1 });
        worker.on('error', (err) => ctx.logger.warn({ err: err.message }, 'schedule worker error'));
      },
      stop() {
        stopping ??= (async () => {
          await worker?.close();
          await queue?.close();
          await redis?.close();
        })();
        return stopping;
      },
      async remove() {
        const own = ctx.bullmq();
        const q = new Queue(queueName, { connection: own.connection, prefix: own.prefix });
        await q.removeJobScheduler(ctx.pipeline);
        await q.close();
        await own.close();
      },
    };
  },
});
