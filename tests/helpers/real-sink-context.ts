import { isDeepStrictEqual } from 'node:util';
import { Queue } from 'bullmq';
import type { Redis } from 'ioredis';
import type { Logger } from 'pino';
import type { SinkContext } from '../../engine/plugins/define-sink.ts';
import { silentLogger } from '../../engine/logger.ts';
import { redisOptionsFromUrl } from '../../engine/runtime/redis-client.ts';
import { createSinkContext } from '../../engine/runtime/sink-context.ts';

/** A sink context backed by a real Redis (the engine's own createSinkContext), instrumented for tests. */
export interface RealSinkContext {
  ctx: SinkContext;
  /** How many I/O calls (redis, publish, publishMany, queue, broadcast) the sink has made through ctx so far. */
  ioCalls(): number;
  /** The BullMQ queues handed out by ctx.queue(), by name. */
  queues: Map<string, Queue>;
  /**
   * Makes later ctx.publish calls reject, and ctx.publishMany report an Error, for envelopes
   * deep-equal to `value`, before they reach Redis: for sinks whose messages all go to one
   * stream, where Redis cannot fail one alone.
   */
  failPublishOf(value: unknown): void;
  /** Makes later ctx.broadcast calls reject for messages deep-equal to `value` (same reason). */
  failBroadcastOf(value: unknown): void;
  /** Closes the queues. Idempotent. */
  close(): Promise<void>;
}

/**
 * The context the engine gives a sink of `pipeline` (createSinkContext over `redis`, BullMQ
 * queues on their own connections to `redisUrl`), counting every I/O call so a test can check
 * that create() does none.
 */
export function realSinkContext(opts: { redis: Redis; redisUrl: string; pipeline: string; sinkId?: string; logger?: Logger }): RealSinkContext {
  const queues = new Map<string, Queue>();
  const base = createSinkContext({
    redis: opts.redis,
    logger: opts.logger ?? silentLogger,
    queue: (name) => {
      let q = queues.get(name);
      if (!q) {
        q = new Queue(name, { connection: redisOptionsFromUrl(opts.redisUrl) });
        queues.set(name, q);
      }
      return q;
    },
  }, opts.pipeline, opts.sinkId ?? 'sink');
  let io = 0;
  const failingPublish: unknown[] = [];
  const failingBroadcast: unknown[] = [];
  const ctx: SinkContext = {
    pipeline: base.pipeline,
    sinkId: base.sinkId,
    logger: base.logger,
    metrics: base.metrics,
    get redis() {
      io++;
      return base.redis;
    },
    publish(stream, envelope, publishOpts) {
      io++;
      if (failingPublish.some((v) => isDeepStrictEqual(v, envelope))) return Promise.reject(new Error(`XADD ${stream} refused by the test`));
      return base.publish(stream, envelope, publishOpts);
    },
    async publishMany(stream, envelopes, publishOpts) {
      io++;
      const refused = envelopes.map((e) => failingPublish.some((v) => isDeepStrictEqual(v, e)));
      const sent = await base.publishMany(stream, envelopes.filter((_, i) => !refused[i]), publishOpts);
      let k = 0;
      return envelopes.map((_, i) => (refused[i] ? new Error(`XADD ${stream} refused by the test`) : sent[k++]!));
    },
    queue(name) {
      io++;
      return base.queue(name);
    },
    broadcast(channel, message, broadcastOpts) {
      io++;
      if (failingBroadcast.some((v) => isDeepStrictEqual(v, message))) return Promise.reject(new Error(`PUBLISH ${channel} refused by the test`));
      return base.broadcast(channel, message, broadcastOpts);
    },
  };
  let closing: Promise<void> | undefined;
  return {
    ctx,
    ioCalls: () => io,
    queues,
    failPublishOf: (value) => void failingPublish.push(value),
    failBroadcastOf: (value) => void failingBroadcast.push(value),
    close() {
      closing ??= Promise.all([...queues.values()].map((q) => q.close().catch(() => undefined))).then(() => undefined);
      return closing;
    },
  };
}
