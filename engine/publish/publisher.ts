import { Cluster, Redis } from 'ioredis';
import { openRedis, type RedisConnection } from '../runtime/redis-client.ts';
import { checkEvent } from '../config/check-event.ts';
import { SchemaRegistry } from '../config/schema-registry.ts';
import { SynapseError, errorMessage } from '../errors.ts';
import { backoffDelay, sleep } from '../runner/backoff.ts';
import { xaddPayload } from '../runtime/sink-context.ts';

/** The event envelope: what every producer writes to a stream (docs/publishing.md). */
export interface EventEnvelope<Type extends string = string, Data = Record<string, unknown>> {
  event: Type;
  source: string;
  timestamp: string;
  data: Data;
  id?: string;
  version?: string | number;
  metadata?: Record<string, unknown>;
  trace_id?: string;
}

/** An event its schema refused; nothing was written. */
export class EventInvalidError extends SynapseError {
  override readonly code = 'SYN_EVENT_INVALID';
}

/** Options of a Publisher. */
export interface PublisherOptions {
  /**
   * A Redis URL (of a server, or of any node of a Redis Cluster) or a connection the caller owns
   * (ioredis `Redis` or `Cluster`). Default: REDIS_URL, else redis://127.0.0.1:6379.
   */
  redis?: string | RedisConnection;
  /** The schema directory, or a loaded registry. Default: SYNAPSE_SCHEMAS, else ./schemas. */
  schemas?: string | SchemaRegistry;
  /** Tries per publish when Redis fails (default 5), with exponential back-off from `delayMs` (100). */
  attempts?: number;
  delayMs?: number;
  /** Cap streams near this length (XADD MAXLEN ~). */
  maxlen?: number;
  /** The `source` filled in when an event has none (the service's name). */
  source?: string;
}

/**
 * An event as a publisher writes it: `timestamp` (now, ISO 8601) and `source` (the publisher's
 * name) filled in when missing. Anything that is not an object is returned as it is.
 */
export function completeEvent<T>(event: T, source: string | undefined, now = new Date()): T {
  if (!event || typeof event !== 'object' || Array.isArray(event)) return event;
  const e = event as Record<string, unknown>;
  return {
    ...e,
    ...(e.source === undefined && source !== undefined ? { source } : {}),
    ...(e.timestamp === undefined ? { timestamp: now.toISOString() } : {}),
  } as T;
}

/**
 * Publishes events from a service: each is validated against its schema (chosen by its `event`
 * type) before it is written, so an invalid event is refused with the schema's errors and never
 * reaches the stream. Redis failures are retried with back-off.
 *
 * ```ts
 * const publisher = await Publisher.connect({ source: 'task-orchestrator' });
 * await publisher.publish('platform-events', { event: 'task-completed', data: { taskId, userId } });
 * await publisher.close();
 * ```
 */
export class Publisher<Events extends { event: string } = EventEnvelope> {
  private closed = false;

  private constructor(
    private readonly redis: RedisConnection,
    private readonly ownsRedis: boolean,
    readonly schemas: SchemaRegistry,
    private readonly opts: PublisherOptions,
  ) {}

  /** Loads the schemas and connects. */
  static async connect<Events extends { event: string } = EventEnvelope>(opts: PublisherOptions = {}): Promise<Publisher<Events>> {
    const schemas = opts.schemas instanceof SchemaRegistry
      ? opts.schemas
      : await SchemaRegistry.load(opts.schemas ?? process.env.SYNAPSE_SCHEMAS ?? 'schemas');
    const given = opts.redis instanceof Redis || opts.redis instanceof Cluster ? opts.redis : undefined;
    const owns = !given;
    const redis = given ?? await openRedis(
      typeof opts.redis === 'string' ? opts.redis : process.env.REDIS_URL ?? 'redis://127.0.0.1:6379',
      { maxRetriesPerRequest: 1, enableAutoPipelining: true },
    );
    if (owns) redis.on('error', () => undefined); // failures surface as rejected publishes
    return new Publisher<Events>(redis, owns, schemas, opts);
  }

  /**
   * Completes an event (source, timestamp) and checks it; returns the event as it will be
   * written. Throws EventInvalidError.
   */
  prepare(event: Partial<EventEnvelope> & { event: string }): EventEnvelope {
    const full = completeEvent(event, this.opts.source) as EventEnvelope;
    const why = checkEvent(full, this.schemas);
    if (why) throw new EventInvalidError(`event '${event.event}' refused: ${why}`);
    return full;
  }

  /** Validates and appends one event; resolves with its stream entry id. */
  async publish(stream: string, event: Events | (Partial<EventEnvelope> & { event: string })): Promise<string> {
    const full = this.prepare(event as Partial<EventEnvelope> & { event: string });
    return this.withRetry(() => xaddPayload(this.redis, stream, full, this.opts.maxlen));
  }

  /** Validates every event first, then appends them all (none is written if any is invalid). */
  async publishAll(stream: string, events: Array<Events | (Partial<EventEnvelope> & { event: string })>): Promise<string[]> {
    const ready = events.map((e) => this.prepare(e as Partial<EventEnvelope> & { event: string }));
    return this.withRetry(() => Promise.all(ready.map((e) => xaddPayload(this.redis, stream, e, this.opts.maxlen))));
  }

  private async withRetry<T>(fn: () => Promise<T>): Promise<T> {
    if (this.closed) throw new SynapseError('publisher is closed');
    const policy = { attempts: this.opts.attempts ?? 5, backoff: 'exponential' as const, delayMs: this.opts.delayMs ?? 100, maxDelayMs: 5_000 };
    for (let attempt = 1; ; attempt++) {
      try {
        return await fn();
      } catch (err) {
        if (attempt >= policy.attempts) throw new SynapseError(`publish failed after ${attempt} tries: ${errorMessage(err)}`, { cause: err });
        await sleep(backoffDelay(policy, attempt));
      }
    }
  }

  /** Closes the connection if the publisher opened it. Idempotent. */
  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    if (this.ownsRedis) await this.redis.quit().catch(() => this.redis.disconnect());
  }
}
