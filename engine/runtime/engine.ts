import { EventEmitter } from 'node:events';
import { hostname } from 'node:os';
import { Queue } from 'bullmq';
import type { Redis } from 'ioredis';
import type { Logger } from 'pino';
import { loadPipelines, type CompiledPipeline, type LoadContext } from '../config/load-pipeline.ts';
import { SchemaRegistry } from '../config/schema-registry.ts';
import { errorMessage, formatDiagnostic, type Diagnostic } from '../errors.ts';
import { EngineMetrics } from '../metrics.ts';
import type { Sink } from '../plugins/define-sink.ts';
import { SinkRegistry, pluginSpecsFromEnv } from '../plugins/sink-registry.ts';
import { PipelineRunner } from '../runner/pipeline-runner.ts';
import { connectRedis } from './redis-client.ts';
import { createSinkContext, type SinkServices } from './sink-context.ts';
import { StreamConsumer } from './stream-consumer.ts';

/** What the engine needs to run. */
export interface EngineOptions {
  redisUrl: string;
  pipelinesDir: string;
  schemasDir: string;
  logger: Logger;
  /** Consumer name; default SYNAPSE_CONSUMER, else `<host>-<pid>` (unique per process). */
  consumer?: string;
  metrics?: EngineMetrics;
}

/** One running pipeline and the parts it runs on. */
export interface PipelineHandle {
  pipeline: CompiledPipeline;
  sinks: Map<string, Sink>;
  consumer?: StreamConsumer;
  /** Incremented on every successful (re)load; starts at 1. */
  generation: number;
  status: 'running' | 'paused' | 'disabled' | 'unsupported';
  lastReloadError?: string;
}

/** The default consumer name of this process (SPEC §4). */
export function defaultConsumerName(env: NodeJS.ProcessEnv = process.env): string {
  return env.SYNAPSE_CONSUMER || `${hostname()}-${process.pid}`;
}

/**
 * Runs every pipeline of a directory against Redis: one StreamConsumer per pipeline, all in one
 * process, sharing one connection for writes (each consumer has its own for blocking reads).
 * Emits `settled` (pipeline, outcomes) after every acknowledged batch.
 */
export class Engine extends EventEmitter {
  readonly metrics: EngineMetrics;
  readonly consumerName: string;
  readonly handles = new Map<string, PipelineHandle>();
  /** Files that failed to load, with their problems. */
  readonly rejected = new Map<string, Diagnostic[]>();
  private redis?: Redis;
  private ctx?: LoadContext;
  private readonly blocking = new Set<Redis>();
  private readonly queues = new Map<string, Queue>();
  private stopped?: Promise<void>;

  constructor(readonly options: EngineOptions) {
    super();
    this.metrics = options.metrics ?? new EngineMetrics();
    this.consumerName = options.consumer ?? defaultConsumerName();
  }

  get logger(): Logger {
    return this.options.logger;
  }

  /** The shared Redis connection (after start). */
  get connection(): Redis {
    if (!this.redis) throw new Error('engine not started');
    return this.redis;
  }

  /** Loads schemas, plugins and pipelines, connects to Redis and starts every valid pipeline. */
  async start(): Promise<void> {
    const { logger } = this;
    const sinks = SinkRegistry.withBuiltins();
    await sinks.loadPlugins(pluginSpecsFromEnv());
    this.ctx = { schemas: await SchemaRegistry.load(this.options.schemasDir), sinks };
    this.redis = connectRedis(this.options.redisUrl, logger, 'synapse');
    const loaded = await loadPipelines([this.options.pipelinesDir], this.ctx);
    for (const [file, diagnostics] of loaded.rejected) {
      this.rejected.set(file, diagnostics);
      for (const d of diagnostics) logger.error({ file }, `pipeline rejected: ${formatDiagnostic(d)}`);
    }
    for (const pipeline of loaded.pipelines) await this.startPipeline(pipeline);
    logger.info({ consumer: this.consumerName, pipelines: [...this.handles.keys()], redis: redactUrl(this.options.redisUrl) }, 'engine started');
  }

  /** Creates a pipeline's sinks and starts its consumer. */
  private async startPipeline(pipeline: CompiledPipeline, generation = 1): Promise<PipelineHandle> {
    const handle: PipelineHandle = { pipeline, sinks: new Map(), generation, status: 'running' };
    this.handles.set(pipeline.name, handle);
    if (!pipeline.enabled) {
      handle.status = 'disabled';
      return handle;
    }
    if (pipeline.source.kind !== 'stream') {
      handle.status = 'unsupported';
      this.logger.warn({ pipeline: pipeline.name }, 'schedule sources are not available in this version; pipeline not started');
      return handle;
    }
    handle.sinks = await this.createSinks(pipeline);
    const blocking = this.redis!.duplicate({ enableAutoPipelining: false, connectionName: `synapse:${pipeline.name}` });
    blocking.on('error', () => undefined); // the shared connection already reports outages
    this.blocking.add(blocking);
    const consumer = new StreamConsumer({
      runner: new PipelineRunner(pipeline, handle.sinks),
      blocking,
      redis: this.redis!,
      consumer: this.consumerName,
      logger: this.logger.child({ pipeline: pipeline.name }),
      metrics: this.metrics,
    });
    consumer.on('settled', (outcomes) => this.emit('settled', pipeline.name, outcomes));
    handle.consumer = consumer;
    consumer.start();
    return handle;
  }

  private async createSinks(pipeline: CompiledPipeline): Promise<Map<string, Sink>> {
    const services: SinkServices = { redis: this.redis, logger: this.logger, metrics: this.metrics, queue: (name) => this.queue(name) };
    const sinks = new Map<string, Sink>();
    for (const spec of pipeline.sinks) {
      const sink = spec.definition.create(spec.config, createSinkContext(services, pipeline.name, spec.id));
      await sink.connect?.();
      sinks.set(spec.id, sink);
    }
    return sinks;
  }

  /** A BullMQ queue per name, on its own connection, closed with the engine. */
  private queue(name: string): Queue {
    let q = this.queues.get(name);
    if (!q) {
      q = new Queue(name, { connection: this.redis!.duplicate({ enableAutoPipelining: false, maxRetriesPerRequest: null }) });
      this.queues.set(name, q);
    }
    return q;
  }

  /**
   * Stops every pipeline (each finishes and acks its batch in hand), closes sinks and
   * connections. After `timeoutMs` (Redis gone, a sink hanging) it closes regardless: what was
   * not acknowledged stays pending and is redelivered. Idempotent.
   */
  stop(timeoutMs = 10_000): Promise<void> {
    this.stopped ??= this.doStop(timeoutMs);
    return this.stopped;
  }

  private async doStop(timeoutMs: number): Promise<void> {
    const graceful = (async () => {
      await Promise.all([...this.handles.values()].map((h) => h.consumer?.stop()));
      for (const h of this.handles.values()) {
        for (const sink of h.sinks.values()) await sink.close().catch((err) => this.logger.warn({ err: errorMessage(err) }, 'sink close failed'));
      }
      await Promise.all([...this.queues.values()].map((q) => q.close().catch(() => undefined)));
    })();
    let timer: NodeJS.Timeout | undefined;
    const timedOut = await Promise.race([
      graceful.then(() => false),
      new Promise<boolean>((r) => (timer = setTimeout(() => r(true), timeoutMs))),
    ]);
    clearTimeout(timer);
    if (timedOut) this.logger.warn({ timeoutMs }, 'shutdown timed out; closing connections, unacknowledged entries stay pending');
    for (const b of this.blocking) b.disconnect();
    if (this.redis) {
      if (timedOut) this.redis.disconnect();
      else await this.redis.quit().catch(() => this.redis?.disconnect());
    }
    this.logger.info('engine stopped');
  }
}

/** A Redis URL without its password, for logs. */
export function redactUrl(url: string): string {
  return url.replace(/\/\/([^:@/]*):([^@/]*)@/, '//$1:***@');
}
