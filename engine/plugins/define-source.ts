import type { BullmqConnection } from '../runtime/redis-client.ts';
import type { Logger } from 'pino';
import type { StreamEntry } from '../runner/codec.ts';

/** What a source hands the runtime: a batch of entries, settled when the promise resolves. */
export type SourceHandler = (entries: StreamEntry[]) => Promise<void>;

/** A live source, made by `create()`. */
export interface Source {
  /** Starts delivering batches to `handler`. */
  start(handler: SourceHandler): Promise<void>;
  /** Stops delivering; the batch in hand finishes first. Idempotent. */
  stop(): Promise<void>;
  /** Removes what the source keeps in Redis (its pipeline was deleted). Optional. */
  remove?(): Promise<void>;
}

/** What the runtime gives a source. */
export interface SourceContext {
  readonly pipeline: string;
  readonly logger: Logger;
  /** A BullMQ connection (and key prefix) to the engine's Redis, one or a cluster; the source closes it. */
  bullmq(): BullmqConnection;
}

/** A source plugin (SPEC §9): one file in plugins/sources/, default-exporting `defineSource({...})`. */
export interface SourceDefinition<Config = Record<string, unknown>> {
  name: string;
  description: string;
  create(config: Config, ctx: SourceContext): Source;
}

/** Declares a source plugin; the identity function, there for type inference. */
export function defineSource<Config>(def: SourceDefinition<Config>): SourceDefinition<Config> {
  return def;
}
