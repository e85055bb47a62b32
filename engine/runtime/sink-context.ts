import type { Queue } from 'bullmq';
import type { RedisConnection } from './redis-client.ts';
import type { Logger } from 'pino';
import type { SinkContext } from '../plugins/define-sink.ts';
import type { EngineMetrics } from '../metrics.ts';
import { encodeForCodec } from '../runner/codec.ts';
import { requestTrim } from './retention.ts';

/** The Redis pub/sub channel that carries broadcast messages between replicas. */
export const BROADCAST_CHANNEL = 'synapse:broadcast';

/** Shared services sink contexts are cut from. */
export interface SinkServices {
  redis?: RedisConnection;
  logger: Logger;
  metrics?: EngineMetrics;
  /** Creates (once per name) a BullMQ queue. */
  queue?: (name: string) => Queue;
}

/**
 * Appends an envelope to a stream as `payload`. With `maxlen`, the stream is kept near that
 * length, never trimming what a consumer group has not acknowledged (SPEC §11).
 */
export async function xaddPayload(redis: RedisConnection, stream: string, envelope: unknown, maxlen?: number): Promise<string> {
  const id = (await redis.xadd(stream, '*', 'payload', JSON.stringify(envelope))) as string;
  if (maxlen) requestTrim(redis, stream, maxlen);
  return id;
}

/**
 * Appends an event as a flat field map (`codec: fields`): nested values as JSON strings, the
 * way Helox's Python producer writes them.
 */
export async function xaddFields(redis: RedisConnection, stream: string, event: unknown, maxlen?: number): Promise<string> {
  const id = (await redis.xadd(stream, '*', ...encodeForCodec('fields', event))) as string;
  if (maxlen) requestTrim(redis, stream, maxlen);
  return id;
}

/** Appends envelopes as `payload` entries in one pipelined round trip; an id or Error each. */
export async function xaddPayloads(redis: RedisConnection, stream: string, envelopes: readonly unknown[], maxlen?: number): Promise<(string | Error)[]> {
  const pipeline = redis.pipeline();
  for (const e of envelopes) pipeline.xadd(stream, '*', 'payload', JSON.stringify(e));
  const results = (await pipeline.exec()) ?? [];
  if (maxlen) requestTrim(redis, stream, maxlen);
  return envelopes.map((_, i) => {
    const [err, id] = results[i] ?? [new Error('no reply'), null];
    return err ?? String(id);
  });
}

/** The context a sink of `pipeline` gets: RedisConnection-backed publish, queues and broadcast. */
export function createSinkContext(services: SinkServices, pipeline: string, sinkId: string): SinkContext {
  const logger = services.logger.child({ pipeline, sink: sinkId });
  const needRedis = (): RedisConnection => {
    if (!services.redis) throw new Error(`sink ${sinkId} needs RedisConnection, and this engine runs without it`);
    return services.redis;
  };
  return {
    pipeline,
    sinkId,
    logger,
    metrics: { count: (name, by = 1) => services.metrics?.plugin.inc({ pipeline, sink: sinkId, name }, by) },
    get redis() {
      return needRedis();
    },
    publish: (stream, envelope, opts) => xaddPayload(needRedis(), stream, envelope, opts?.maxlen),
    publishMany: (stream, envelopes, opts) => xaddPayloads(needRedis(), stream, envelopes, opts?.maxlen),
    queue: (name) => {
      if (!services.queue) throw new Error(`sink ${sinkId}: queues need Redis`);
      return services.queue(name);
    },
    broadcast: async (channel, message, opts) => {
      await needRedis().publish(BROADCAST_CHANNEL, JSON.stringify({ channel, message, ...(opts?.audience !== undefined ? { audience: opts.audience } : {}) }));
    },
  };
}
