import { EventEmitter } from 'node:events';
import { hostname } from 'node:os';
import { Queue } from 'bullmq';
import { Cluster } from 'ioredis';
import type { Logger } from 'pino';
import { basename, resolve } from 'node:path';
import { loadPipelines, type CompiledPipeline, type LoadContext } from '../config/load-pipeline.ts';
import { SchemaRegistry } from '../config/schema-registry.ts';
import { errorMessage, formatDiagnostic, type Diagnostic } from '../errors.ts';
import { EngineMetrics, type ObservedEngine, type PipelineState } from '../metrics.ts';
import type { Sink } from '../plugins/define-sink.ts';
import { SinkRegistry, pluginSpecsFromEnv } from '../plugins/sink-registry.ts';
import { PipelineRunner, type Outcome } from '../runner/pipeline-runner.ts';
import { sleep } from '../runner/backoff.ts';
import type { StreamEntry } from '../runner/codec.ts';
import { bullmqConnection, connectRedis, duplicateConnection, type BullmqConnection, type RedisConnection } from './redis-client.ts';
import { createSinkContext, type SinkServices } from './sink-context.ts';
import { StreamConsumer } from './stream-consumer.ts';
import { Reloader, type ReloadOptions } from './reloader.ts';
import { settleBatch } from './settle.ts';
import { dlqLimitsFromEnv } from './dlq-limits.ts';
import { RefusalLog } from '../refusal-log.ts';
import { DLQ_LOG_INTERVAL_MS, DlqLog, type DlqNote } from './dlq-log.ts';
import type { Source } from '../plugins/define-source.ts';
import scheduleSource from '../../plugins/sources/schedule.ts';
import { numericSetting } from '../settings.ts';

/**
 * How long the start waits for Redis (for the consumer groups, a schedule's job scheduler): with
 * Redis away, the engine starts after this long and they follow once Redis comes.
 */
const START_WAIT_MS = 5_000;

/** What the engine needs to run. */
export interface EngineOptions {
  redisUrl: string;
  pipelinesDir: string;
  schemasDir: string;
  logger: Logger;
  /** Consumer name; default SYNAPSE_CONSUMER, else `<host>-<pid>` (unique per process). */
  consumer?: string;
  metrics?: EngineMetrics;
  /** At most one DLQ log line per pipeline per this many ms; default SYNAPSE_DLQ_LOG_INTERVAL_MS, else 10 s. */
  dlqLogIntervalMs?: number;
}

/** One running pipeline and the parts it runs on. */
export interface PipelineHandle {
  pipeline: CompiledPipeline;
  sinks: Map<string, Sink>;
  consumer?: StreamConsumer;
  /** The consumer's own connection for blocking reads. */
  blocking?: RedisConnection;
  /** The source of a schedule pipeline. */
  source?: Source;
  /** Incremented on every successful (re)load; starts at 1. */
  generation: number;
  status: 'running' | 'paused' | 'disabled';
  /** The last reload that failed, as FILE:LINE:COL lines; cleared by the next good one. */
  lastReloadError?: string;
  /** When the running version was loaded. */
  loadedAt: string;
  /** Entries settled by this process since the pipeline started, by outcome. */
  counters: { sunk: number; filtered: number; dlq: number; dropped: number };
  /** The latest event this process dead-lettered for the pipeline: why, where and when. */
  lastDlq?: DlqNote;
}

/** The result of a reload. */
export type ReloadResult =
  | { ok: true; change: 'added' | 'updated' | 'unchanged' | 'removed'; name: string; generation?: number; hash?: string }
  | { ok: false; name?: string; diagnostics: Diagnostic[] };

/** The default consumer name of this process (SPEC §4). */
export function defaultConsumerName(env: NodeJS.ProcessEnv = process.env): string {
  return env.SYNAPSE_CONSUMER || `${hostname()}-${process.pid}`;
}

/**
 * Runs every pipeline of a directory against Redis: one StreamConsumer per pipeline, all in one
 * process, sharing one connection for writes (each consumer has its own for blocking reads).
 * Emits `settled` (pipeline, outcomes) after every acknowledged batch.
 */
export class Engine extends EventEmitter implements ObservedEngine {
  readonly metrics: EngineMetrics;
  readonly consumerName: string;
  readonly handles = new Map<string, PipelineHandle>();
  /** Files that failed to load, with their problems. */
  readonly rejected = new Map<string, Diagnostic[]>();
  private redis?: RedisConnection;
  /** Whether Redis answered within START_WAIT_MS of the start (see start). */
  private redisAtStart: Promise<boolean> = Promise.resolve(true);
  private ctx?: LoadContext;
  private readonly shutdown = new AbortController();
  private readonly reloader = new Reloader(this);
  /** BullMQ queues of queue sinks by name, with the connection each was given. */
  private readonly queues = new Map<string, { queue: Queue; redis: BullmqConnection }>();
  private stopped?: Promise<void>;
  private readonly dlqTrims = new Map<string, NodeJS.Timeout>();
  /** Where limits report what they refused or cut (logged bounded, counted in synapse_refused_total). */
  readonly refusals: RefusalLog;
  /** Logs dead-lettered events, one line per pipeline per interval. */
  private readonly dlqLog: DlqLog;

  constructor(readonly options: EngineOptions) {
    super();
    this.metrics = options.metrics ?? new EngineMetrics();
    this.metrics.observe(this);
    this.consumerName = options.consumer ?? defaultConsumerName();
    this.refusals = new RefusalLog(options.logger, this.metrics);
    this.dlqLog = new DlqLog(options.logger, options.dlqLogIntervalMs ?? numericSetting('SYNAPSE_DLQ_LOG_INTERVAL_MS', DLQ_LOG_INTERVAL_MS));
  }

  /** Counts a settled batch of a pipeline, logs and notes what went to its DLQ, and emits `settled`. */
  private settled(handle: PipelineHandle, pipeline: CompiledPipeline, outcomes: Outcome[]): void {
    for (const o of outcomes) if (o.kind !== 'deferred') handle.counters[o.kind]++;
    const dead = this.dlqLog.record(pipeline.name, pipeline.dlq, outcomes);
    if (dead) {
      handle.lastDlq = dead;
      this.trimDlqSoon(pipeline.dlq);
    }
    this.emit('settled', pipeline.name, outcomes, pipeline);
  }

  /**
   * Keeps a DLQ within SYNAPSE_DLQ_MAXLEN entries: after DLQ writes, at most once a second and
   * always after the last of a burst, the oldest entries beyond are trimmed (and counted).
   */
  trimDlqSoon(dlq: string): void {
    if (this.dlqTrims.has(dlq) || this.stopping) return;
    const timer = setTimeout(() => {
      this.dlqTrims.delete(dlq);
      const { maxLen } = dlqLimitsFromEnv();
      this.redis?.xtrim(dlq, 'MAXLEN', maxLen).then((n) => {
        if (n > 0) this.refusals.refuse('dlq.maxlen', `DLQ over SYNAPSE_DLQ_MAXLEN (${maxLen}): oldest entries trimmed`, { dlq, trimmed: n }, n);
      }, () => undefined);
    }, 1000);
    timer.unref();
    this.dlqTrims.set(dlq, timer);
  }

  get logger(): Logger {
    return this.options.logger;
  }

  /** Whether start() has finished. */
  started = false;

  /** The shared connection's state (`ready` when connected). */
  get redisStatus(): string {
    return this.redis?.status ?? 'not-connected';
  }

  /**
   * Every pipeline as GET /pipelines lists it (a rejected file under its file name, state
   * `invalid`), for the state gauges: `stalled` when its consumer cannot settle what it read.
   */
  *pipelineStates(): Iterable<{ pipeline: string; state: PipelineState; loadError: boolean }> {
    for (const h of this.handles.values()) {
      const state = h.status === 'running' && h.consumer?.stalled ? 'stalled' : h.status;
      yield { pipeline: h.pipeline.name, state, loadError: h.lastReloadError !== undefined };
    }
    for (const file of this.rejected.keys()) yield { pipeline: basename(file).replace(/\.ya?ml$/, ''), state: 'invalid', loadError: true };
  }

  /** The shared Redis connection (after start). */
  get connection(): RedisConnection {
    if (!this.redis) throw new Error('engine not started');
    return this.redis;
  }

  /** Loads schemas, plugins and pipelines, connects to Redis and starts every valid pipeline. */
  async start(): Promise<void> {
    const { logger } = this;
    const sinks = SinkRegistry.withBuiltins();
    await sinks.loadPlugins(pluginSpecsFromEnv());
    this.ctx = { schemas: await SchemaRegistry.load(this.options.schemasDir), sinks };
    // Said first: a Redis that accepts connections and never answers holds the start for seconds.
    logger.info({ redis: redactUrl(this.options.redisUrl) }, 'connecting to redis');
    const redis = (this.redis = await connectRedis(this.options.redisUrl, logger, 'synapse'));
    // With Redis away the start does not wait for it for ever: at most START_WAIT_MS from here.
    const waited = new Promise<void>((r) => setTimeout(r, START_WAIT_MS).unref());
    this.redisAtStart = Promise.race([
      redis.status === 'ready' ? Promise.resolve(true) : new Promise<boolean>((r) => redis.once('ready', () => r(true))),
      waited.then(() => false),
    ]);
    const loaded = await loadPipelines([this.options.pipelinesDir], this.ctx);
    for (const [file, diagnostics] of loaded.rejected) {
      this.rejected.set(file, diagnostics);
      for (const d of diagnostics) logger.error({ file }, `pipeline rejected: ${formatDiagnostic(d)}`);
    }
    for (const pipeline of loaded.pipelines) {
      logWarnings(logger, pipeline);
      await this.startPipeline(pipeline);
    }
    // Started means reading: each group exists, so nothing published from now on is missed by
    // a `start: $` group.
    await Promise.race([Promise.all([...this.handles.values()].map((h) => h.consumer?.ready)), waited]);
    this.started = true;
    logger.info({ consumer: this.consumerName, pipelines: [...this.handles.keys()], redis: redactUrl(this.options.redisUrl) }, 'engine started');
  }

  /** Creates a pipeline's sinks and starts its consumer. */
  private async startPipeline(pipeline: CompiledPipeline, generation = 1): Promise<PipelineHandle> {
    const handle: PipelineHandle = {
      pipeline, sinks: new Map(), generation, status: 'running', loadedAt: new Date().toISOString(),
      counters: { sunk: 0, filtered: 0, dlq: 0, dropped: 0 },
    };
    this.handles.set(pipeline.name, handle);
    if (!pipeline.enabled) {
      handle.status = 'disabled';
      return handle;
    }
    // A reload still in flight when the engine stops starts nothing (no sinks, no consumer): the
    // stop may have ended already (by its time limit, a batch hanging elsewhere), and nothing
    // would stop it then.
    if (this.stopping) return handle;
    handle.sinks = await this.createSinks(pipeline);
    if (this.stopping) {
      await this.closeSinks(handle.sinks);
      handle.sinks = new Map();
      return handle;
    }
    if (pipeline.source.kind === 'schedule') {
      await this.startSchedule(handle, pipeline.source.everyMs);
      return handle;
    }
    const blocking = duplicateConnection(this.redis!, { enableAutoPipelining: false, connectionName: `synapse:${pipeline.name}` });
    blocking.on('error', () => undefined); // the shared connection already reports outages
    handle.blocking = blocking;
    const consumer = new StreamConsumer({
      runner: this.runnerFor(pipeline, handle.sinks),
      blocking,
      redis: this.redis!,
      consumer: this.consumerName,
      logger: this.logger.child({ pipeline: pipeline.name }),
      metrics: this.metrics,
    });
    consumer.on('settled', (outcomes: Outcome[]) => this.settled(handle, handle.pipeline, outcomes));
    handle.consumer = consumer;
    consumer.start();
    return handle;
  }

  /** Runs a schedule pipeline on each tick of its BullMQ job scheduler (once across replicas). */
  private async startSchedule(handle: PipelineHandle, everyMs: number): Promise<void> {
    const name = handle.pipeline.name;
    const logger = this.logger.child({ pipeline: name });
    const source = scheduleSource.create({ everyMs }, { pipeline: name, logger, bullmq: () => this.bullmq() });
    handle.source = source;
    const started = source.start(async (entries) => {
      if (handle.status === 'paused') return;
      await this.runUnacknowledged(handle, entries, `schedule:${name}`);
    }).then(() => {
      this.metrics.up.set({ pipeline: name }, 1);
    });
    // Its job scheduler is written to Redis. With Redis there, the schedule has started when this
    // returns; with Redis away as the engine starts, it starts once Redis comes, unwaited for.
    if (await this.redisAtStart) return started;
    started.catch((err: unknown) => logger.error({ err: errorMessage(err) }, 'the schedule could not start'));
  }

  /**
   * Runs entries once through a pipeline's running version, with nothing to acknowledge (a
   * schedule's tick, a replay): its DLQ entries are written (a refused write throws
   * DlqWriteRefusedError), and the outcomes are counted and logged as a consumer's are. `stream`
   * is what the DLQ entries name as their source.
   */
  async runUnacknowledged(handle: PipelineHandle, entries: StreamEntry[], stream: string): Promise<Outcome[]> {
    const p = handle.pipeline;
    const result = await this.runnerFor(p, handle.sinks).process(entries);
    await settleBatch(this.redis!, { pipeline: p.name, stream, group: '', dlq: p.dlq }, result.outcomes, [], { ack: false });
    this.metrics.recordBatch(p.name, result);
    this.settled(handle, p, result.outcomes);
    return result.outcomes;
  }

  private runnerFor(pipeline: CompiledPipeline, sinks: Map<string, Sink>): PipelineRunner {
    return new PipelineRunner(pipeline, sinks, { signal: this.shutdown.signal });
  }

  /** The handle of the pipeline loaded from `file`, if any. */
  handleForFile(file: string): PipelineHandle | undefined {
    const abs = resolve(file);
    for (const h of this.handles.values()) if (h.pipeline.file === abs) return h;
    return undefined;
  }

  /** The schemas and plugins pipelines are compiled against. */
  get loadContext(): LoadContext {
    if (!this.ctx) throw new Error('engine not started');
    return this.ctx;
  }

  /**
   * Reloads one pipeline file (SPEC §5); see Reloader. Reloads of one file are serialised,
   * reloads of different files run side by side.
   */
  reloadFile(file: string, opts: ReloadOptions = {}): Promise<ReloadResult> {
    return this.reloader.reloadFile(file, opts);
  }

  /** Reloads the schema directory and the pipelines whose validation a changed schema affects; see Reloader. */
  reloadSchemas(opts: { cause?: string } = {}): Promise<ReloadResult[]> {
    return this.reloader.reloadSchemas(opts);
  }

  /** Whether stop() has been called. */
  get stopping(): boolean {
    return this.stopped !== undefined;
  }

  /** Replaces the schemas pipelines are compiled against (after a schema reload). */
  useSchemas(schemas: SchemaRegistry): void {
    this.ctx = { ...this.loadContext, schemas };
  }

  /**
   * Puts a compiled version in place of the running one. Same stream and group: the consumer
   * swaps runners at its next batch boundary (the old version finishes and acks its batch, so no
   * entry is lost or handled by both), then the old sinks close. Otherwise the old consumer
   * stops and a new one starts.
   */
  async replacePipeline(existing: PipelineHandle | undefined, next: CompiledPipeline): Promise<PipelineHandle> {
    if (!existing) return this.reading(await this.startPipeline(next));
    const prev = existing.pipeline;
    const sameSource = prev.source.kind === 'stream' && next.source.kind === 'stream'
      && prev.source.stream === next.source.stream && prev.source.group === next.source.group
      && prev.name === next.name && existing.consumer && next.enabled;
    if (!sameSource) {
      const paused = existing.status === 'paused';
      await this.removePipeline(prev.name);
      const handle = await this.startPipeline(next, existing.generation + 1);
      handle.lastDlq = existing.lastDlq;
      if (paused) this.pause(next.name); // before the wait: a resume during it stands (XGROUP is sent as the consumer starts)
      return this.reading(handle);
    }
    const sinks = await this.createSinks(next);
    await existing.consumer!.swap(this.runnerFor(next, sinks));
    const oldSinks = existing.sinks;
    Object.assign(existing, { pipeline: next, sinks, generation: existing.generation + 1, lastReloadError: undefined, loadedAt: new Date().toISOString() });
    await this.closeSinks(oldSinks);
    return existing;
  }

  /**
   * Waits for a pipeline a reload started until its consumer group exists, so that a `start: $`
   * group misses nothing written once the reload has answered (its consumer creates it as it
   * starts, unawaited). With Redis away, or refusing the group, at most START_WAIT_MS; a stop ends
   * the wait.
   */
  private async reading(handle: PipelineHandle): Promise<PipelineHandle> {
    if (!handle.consumer) return handle;
    const waited = new AbortController();
    await Promise.race([handle.consumer.ready, sleep(START_WAIT_MS, AbortSignal.any([this.shutdown.signal, waited.signal]))]);
    waited.abort();
    return handle;
  }

  /**
   * Stops a pipeline and forgets it; its consumer group stays in Redis. With `deleted` (its file
   * is gone), a schedule's job scheduler is removed too.
   */
  async removePipeline(name: string, opts: { deleted?: boolean } = {}): Promise<void> {
    const h = this.handles.get(name);
    if (!h) return;
    this.handles.delete(name);
    await h.consumer?.stop();
    await h.source?.stop();
    if (opts.deleted) await h.source?.remove?.();
    h.blocking?.disconnect();
    await this.closeSinks(h.sinks);
    this.metrics.up.set({ pipeline: name }, 0);
  }

  /** Pauses a pipeline: its consumer stops reading after the batch in hand; a schedule skips its ticks. */
  pause(name: string): boolean {
    const h = this.handles.get(name);
    if (!h || (!h.consumer && !h.source)) return false;
    h.consumer?.pause();
    h.status = 'paused';
    this.metrics.up.set({ pipeline: name }, 0);
    return true;
  }

  /** Resumes a paused pipeline. */
  resume(name: string): boolean {
    const h = this.handles.get(name);
    if (!h || (!h.consumer && !h.source)) return false;
    h.consumer?.resume();
    h.status = 'running';
    this.metrics.up.set({ pipeline: name }, 1);
    return true;
  }

  private async closeSinks(sinks: Map<string, Sink>): Promise<void> {
    for (const sink of sinks.values()) await sink.close().catch((err) => this.logger.warn({ err: errorMessage(err) }, 'sink close failed'));
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
      const redis = this.bullmq();
      q = { queue: new Queue(name, { connection: redis.connection, prefix: redis.prefix }), redis };
      // Its connection's errors reach the sink that adds a job; the shared connection logs outages.
      q.queue.on('error', () => undefined);
      this.queues.set(name, q);
    }
    return q.queue;
  }

  /** How BullMQ reaches this engine's Redis (a server, or a cluster with the `{bull}` prefix). */
  bullmq(): BullmqConnection {
    return bullmqConnection(this.options.redisUrl, this.redis instanceof Cluster);
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
    const deadline = Date.now() + timeoutMs;
    this.shutdown.abort();
    for (const timer of this.dlqTrims.values()) clearTimeout(timer);
    this.dlqTrims.clear();
    const graceful = (async () => {
      // Consumers first: a reload in flight may be waiting for a batch boundary that a stalled
      // batch reaches only once its consumer stops. Then the reloads end, starting nothing (see
      // startPipeline: what one started before stop() was called is in `handles` already).
      await Promise.all([...this.handles.values()].map(async (h) => {
        await h.consumer?.stop();
        await h.source?.stop();
      }));
      await this.reloader.idle();
      for (const h of this.handles.values()) await this.closeSinks(h.sinks);
      await Promise.all([...this.queues.values()].map(async ({ queue, redis }) => {
        await queue.close().catch(() => undefined);
        await redis.close();
      }));
    })();
    let timer: NodeJS.Timeout | undefined;
    const timedOut = await Promise.race([
      graceful.then(() => false),
      new Promise<boolean>((r) => (timer = setTimeout(() => r(true), timeoutMs))),
    ]);
    clearTimeout(timer);
    if (timedOut) this.logger.warn({ timeoutMs }, 'shutdown timed out; closing connections, unacknowledged entries stay pending');
    this.dlqLog.flush();
    for (const h of this.handles.values()) h.blocking?.disconnect();
    if (this.redis) {
      const redis = this.redis;
      // QUIT waits behind the commands queued before it: with Redis away (a command sent during
      // the outage still queued) it would never be answered. It gets what is left of the limit.
      const quit = timedOut ? false : await Promise.race([
        redis.quit().then(() => true, () => false),
        new Promise<boolean>((r) => (timer = setTimeout(() => r(false), Math.max(0, deadline - Date.now())))),
      ]);
      clearTimeout(timer);
      if (!quit) redis.disconnect();
    }
    this.logger.info('engine stopped');
  }
}

/** Query options that carry a secret: ioredis takes any of its options from the query (`?password=`). */
const SECRET_PARAM = /pass|auth|secret|token|key/i;

/**
 * A Redis URL without its secrets, for logs: read as ioredis reads it (a WHATWG URL, `redis://`
 * assumed without a scheme), the password and every query option that may hold one are `***`;
 * a URL with none is returned as it was, and one that does not parse is not shown.
 */
export function redactUrl(url: string): string {
  const prefix = /^[a-z][a-z0-9+.-]*:\/\//i.test(url) ? '' : url.startsWith('//') ? 'redis:' : 'redis://';
  let parsed: URL;
  try {
    parsed = new URL(prefix + url);
  } catch {
    return '<a URL that does not parse>';
  }
  let secret = false;
  if (parsed.password) {
    parsed.password = '***';
    secret = true;
  }
  for (const name of new Set(parsed.searchParams.keys())) {
    if (!SECRET_PARAM.test(name)) continue;
    parsed.searchParams.set(name, '***');
    secret = true;
  }
  return secret ? parsed.href.slice(prefix.length) : url;
}

/**
 * Logs the warnings of a pipeline that loads (hints like a string function on a number field,
 * which `synapse validate` prints too): one line each, at warn, with the pipeline and its file.
 */
export function logWarnings(logger: Logger, pipeline: CompiledPipeline): void {
  for (const d of pipeline.warnings) logger.warn({ pipeline: pipeline.name, file: pipeline.file }, `pipeline loads with a warning: ${formatDiagnostic(d)}`);
}
