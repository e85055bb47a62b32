import { randomUUID } from 'node:crypto';
import type { RedisConnection } from './redis-client.ts';
import type { Logger } from 'pino';
import { errorMessage } from '../errors.ts';
import { PAYLOAD_FIELD, type StreamEntry } from '../runner/codec.ts';
import type { Outcome } from '../runner/pipeline-runner.ts';
import { idTime, toStreamBound } from './stream-ids.ts';
import { entryFromBytes } from './stream-reader.ts';

const CHUNK = 500;
/** Finished replays GET /replay/:id still answers for; older ones are forgotten. */
export const KEPT_FINISHED_REPLAYS = 100;
/** Replays that may run at once in one process (each reads and writes Redis as fast as it can). */
export const MAX_RUNNING_REPLAYS = 8;

/** What to replay and where to. */
export interface ReplayRequest {
  stream: string;
  from: string;
  to: string;
  /** Only entries whose event type is one of these. */
  types?: string[];
  /** Copy matching entries to this stream ... */
  toStream?: string;
  /** ... or run them through this pipeline (its sinks act; DLQ entries are written). */
  pipeline?: string;
}

/** A replay's progress, as GET /replay/:id shows it. */
export interface ReplayJob {
  id: string;
  request: ReplayRequest;
  status: 'running' | 'done' | 'failed' | 'cancelled';
  /** Entries read from the range so far. */
  scanned: number;
  /** Entries that matched `types`. */
  matched: number;
  /** Entries copied, or settled by the pipeline. */
  written: number;
  /** Share of the range's time span done so far, 0..1 (from the entry ids' times). */
  progress: number;
  lastId?: string;
  startedAt: string;
  finishedAt?: string;
  error?: string;
}

/** The event type of an entry, from its payload envelope or its flat `event` field. */
export function entryEventType(fields: readonly string[]): string | undefined {
  for (let i = 0; i < fields.length; i += 2) {
    if (fields[i] === 'event') return fields[i + 1];
    if (fields[i] === PAYLOAD_FIELD) {
      try {
        const e = JSON.parse(fields[i + 1]!) as { event?: unknown };
        return typeof e.event === 'string' ? e.event : undefined;
      } catch {
        return undefined;
      }
    }
  }
  return undefined;
}

/**
 * Re-feeds a time range of a stream, in chunks, into another stream or through a pipeline.
 * Jobs live in this process's memory; GET /replay/:id reads their progress.
 */
export class ReplayJobs {
  private readonly jobs = new Map<string, ReplayJob>();
  private readonly cancelled = new Set<string>();
  /** Ids of finished jobs, oldest first (at most KEPT_FINISHED_REPLAYS). */
  private readonly finished: string[] = [];

  constructor(
    private readonly redis: () => RedisConnection,
    /**
     * Runs entries through a running pipeline, as the engine does with nothing to acknowledge
     * (Engine.runUnacknowledged): undefined when no pipeline of that name reads a stream.
     */
    private readonly throughPipeline: (pipeline: string) => ((entries: StreamEntry[], stream: string) => Promise<Outcome[]>) | undefined,
    private readonly logger: Logger,
  ) {}

  /** Checks a request; returns why it cannot run, or undefined. */
  check(req: ReplayRequest): string | undefined {
    if (!toStreamBound(req.from) || !toStreamBound(req.to)) return 'from and to must be stream ids or ISO 8601 times';
    if (!!req.toStream === !!req.pipeline) return 'give exactly one of toStream and pipeline';
    if (req.pipeline && !this.throughPipeline(req.pipeline)) return `no running pipeline '${req.pipeline}'`;
    if (req.toStream === req.stream) return 'toStream must differ from stream';
    return undefined;
  }

  /** How many jobs are running. */
  running(): number {
    return this.jobs.size - this.finished.length;
  }

  /** Starts a job in the background and returns it at once. */
  start(req: ReplayRequest, onProgress?: (job: ReplayJob) => void): ReplayJob {
    const job: ReplayJob = { id: randomUUID(), request: req, status: 'running', scanned: 0, matched: 0, written: 0, progress: 0, startedAt: new Date().toISOString() };
    this.jobs.set(job.id, job);
    const { types, ...where } = req;
    this.logger.info({ replay: job.id, ...where, types: types?.length }, 'replay started');
    void this.run(job, onProgress).catch((err) => {
      job.status = 'failed';
      job.error = errorMessage(err);
      job.finishedAt = new Date().toISOString();
      this.logger.error({ replay: job.id, err: job.error }, 'replay failed');
      onProgress?.(job);
    }).then(() => this.retire(job));
    return job;
  }

  /** A finished job is kept for GET /replay/:id among the last KEPT_FINISHED_REPLAYS. */
  private retire(job: ReplayJob): void {
    if (job.status !== 'failed') {
      const { id: replay, status, scanned, matched, written } = job;
      this.logger.info({ replay, status, scanned, matched, written }, status === 'cancelled' ? 'replay cancelled' : 'replay done');
    }
    this.cancelled.delete(job.id);
    this.finished.push(job.id);
    while (this.finished.length > KEPT_FINISHED_REPLAYS) this.jobs.delete(this.finished.shift()!);
  }

  get(id: string): ReplayJob | undefined {
    return this.jobs.get(id);
  }

  /** Asks a running job to stop after the chunk in hand; returns the job (undefined: no such job). */
  cancel(id: string): ReplayJob | undefined {
    const job = this.jobs.get(id);
    if (job?.status === 'running') this.cancelled.add(id);
    return job;
  }

  private async run(job: ReplayJob, onProgress?: (job: ReplayJob) => void): Promise<void> {
    const redis = this.redis();
    const { request: req } = job;
    const from = toStreamBound(req.from)!;
    const to = toStreamBound(req.to)!;
    const types = req.types?.length ? new Set(req.types) : undefined;
    const first = await redis.xrange(req.stream, from, to, 'COUNT', 1);
    const last = await redis.xrevrange(req.stream, to, from, 'COUNT', 1);
    const span = first[0] && last[0] ? [idTime(first[0][0]), idTime(last[0][0])] as const : undefined;
    let cursor = from;
    let exclusive = false;
    for (;;) {
      // As bytes: a copy keeps them exactly, and a value that is not UTF-8 fails at decode.
      const rows = await redis.xrangeBuffer(req.stream, exclusive ? `(${cursor}` : cursor, to, 'COUNT', CHUNK);
      // Read before the cancel is looked at: a replay with nothing left is done, not cancelled.
      if (rows.length === 0) {
        job.status = 'done';
        break;
      }
      if (this.cancelled.has(job.id)) {
        job.status = 'cancelled';
        break;
      }
      cursor = rows[rows.length - 1]![0].toString();
      exclusive = true;
      job.scanned += rows.length;
      job.lastId = cursor;
      job.progress = span && span[1] > span[0] ? Math.min(1, (idTime(cursor) - span[0]) / (span[1] - span[0])) : 1;
      const entries: (StreamEntry & { raw: Buffer[] })[] = rows
        .map(([id, raw]) => ({ ...entryFromBytes(id.toString(), raw), raw }))
        .filter((e) => !types || types.has(entryEventType(e.fields) ?? ''));
      job.matched += entries.length;
      if (entries.length) job.written += await this.deliver(req, entries, redis);
      onProgress?.(job);
    }
    if (job.status === 'done') job.progress = 1;
    job.finishedAt = new Date().toISOString();
    onProgress?.(job);
  }

  private async deliver(req: ReplayRequest, entries: (StreamEntry & { raw: Buffer[] })[], redis: RedisConnection): Promise<number> {
    if (req.toStream) {
      const pipeline = redis.pipeline();
      for (const e of entries) pipeline.xadd(req.toStream, '*', ...e.raw);
      const results = (await pipeline.exec()) ?? [];
      const failed = results.find(([err]) => err);
      if (failed) throw failed[0]!;
      return entries.length;
    }
    // Looked up for each chunk: a reload during the replay puts a new version in place.
    const run = this.throughPipeline(req.pipeline!);
    if (!run) throw new Error(`pipeline '${req.pipeline}' stopped during the replay`);
    const outcomes = await run(entries, req.stream);
    return outcomes.filter((o) => o.kind !== 'deferred').length;
  }
}
