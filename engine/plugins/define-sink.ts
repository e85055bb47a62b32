import type { Queue } from 'bullmq';
import type { RedisConnection } from '../runtime/redis-client.ts';
import type { Logger } from 'pino';

/** One transformed event handed to a sink. */
export interface SinkMessage {
  /** The source entry id (a Redis stream id); stable across redeliveries, so use it for idempotency. */
  readonly id: string;
  /** The transformed event: what the pipeline's `transform` produced. */
  readonly value: unknown;
  /** The decoded source event, before the transform. */
  readonly event: unknown;
  /** 1 on the first try, 2 on the first retry, ... */
  readonly attempt: number;
}

/**
 * The result of writing one message: undefined for success, an Error for failure
 * (RetryableError or a plain Error is retried, UnrecoverableError goes straight to the DLQ).
 */
export type SinkWriteResult = Error | undefined;

/** A live sink, made by `create()`. */
export interface Sink {
  /** Opens connections. Called once before the first write; optional. */
  connect?(): Promise<void>;
  /**
   * Writes a batch. Resolve with nothing when all succeeded, or with one result per message;
   * throwing fails the whole batch (a BatchError marks which messages failed).
   */
  write(batch: readonly SinkMessage[]): Promise<readonly SinkWriteResult[] | void>;
  /** Releases resources. Idempotent; a write after close fails with SinkClosedError. */
  close(): Promise<void>;
}

/** Metrics a plugin may record, labelled with its pipeline and sink by the runtime. */
export interface SinkMetrics {
  /** Counts something the plugin did (`notifications_sent`, `models_loaded`). */
  count(name: string, by?: number): void;
}

/** What the runtime gives a sink. A sink never reaches the runtime any other way. */
export interface SinkContext {
  /** The pipeline this sink belongs to. */
  readonly pipeline: string;
  /** This sink's id within the pipeline. */
  readonly sinkId: string;
  readonly logger: Logger;
  readonly metrics: SinkMetrics;
  /** The shared Redis connection; throws when the engine runs without Redis (dry-run, tests). */
  readonly redis: RedisConnection;
  /** Appends an envelope to a stream (as its `payload` field); resolves with the entry id. */
  publish(stream: string, envelope: unknown, opts?: { maxlen?: number }): Promise<string>;
  /**
   * Appends many envelopes in one round trip; resolves with an entry id or an Error per
   * envelope, in order.
   */
  publishMany(stream: string, envelopes: readonly unknown[], opts?: { maxlen?: number }): Promise<(string | Error)[]>;
  /** A BullMQ queue by name, created on first use and closed with the engine. */
  queue(name: string): Queue;
  /**
   * Sends a message to WebSocket subscribers of a channel, on every replica. With `audience`,
   * only the client authenticated as that userId receives it.
   */
  broadcast(channel: string, message: unknown, opts?: { audience?: string }): Promise<void>;
}

/** A problem `check()` found in a sink's `with:` block, at `path` inside it. */
export interface ConfigProblem {
  path: (string | number)[];
  message: string;
  /** 0-based offset inside the string at `path` (a JSONata expression), when known. */
  offset?: number;
}

/** A sink plugin (SPEC §9): one file in plugins/sinks/, default-exporting `defineSink({...})`. */
export interface SinkDefinition<Config = Record<string, unknown>> {
  name: string;
  description: string;
  /** JSON Schema of the `with:` block; `additionalProperties: false`, a description per field. */
  configSchema: Record<string, unknown>;
  /** Valid `with:` blocks, each checked by a test. */
  examples?: Partial<Config>[];
  /**
   * Checks what the JSON Schema cannot (JSONata expressions, durations) at load time, so
   * the problems are reported as FILE:LINE:COL. Optional.
   */
  check?(config: Config): ConfigProblem[];
  /**
   * Keys of `with:` whose value is JSONata over the transformed event (`$input` the source
   * event), such as a broadcast's `audience`: `required` when an event for which it gives no
   * string or number goes to the DLQ, else `optional`. Listed, they are checked against the
   * transform's inferred output at load, and `synapse test --fuzz` evaluates them on what
   * reaches the sink.
   */
  expressions?: Readonly<Partial<Record<keyof Config & string, 'required' | 'optional'>>>;
  /** Validates and wires; no I/O here (that belongs in `connect()` and `write()`). */
  create(config: Config, ctx: SinkContext): Sink;
}

/** Declares a sink plugin; the identity function, there for type inference. */
export function defineSink<Config = Record<string, unknown>>(def: SinkDefinition<Config>): SinkDefinition<Config> {
  return def;
}
