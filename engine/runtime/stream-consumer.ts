import { EventEmitter } from 'node:events';
import type { RedisConnection } from './redis-client.ts';
import type { Logger } from 'pino';
import type { StreamSourceSpec } from '../config/load-pipeline.ts';
import { errorMessage } from '../errors.ts';
import type { EngineMetrics } from '../metrics.ts';
import { rawPayload, type StreamEntry } from '../runner/codec.ts';
import type { BatchResult, Outcome, PipelineRunner } from '../runner/pipeline-runner.ts';
import { sleep } from '../runner/backoff.ts';
import { settleBatch, type SettleTarget } from './settle.ts';
import { StreamReader } from './stream-reader.ts';
import { maxId } from './stream-ids.ts';

/** A consumer idle this long with nothing pending is removed from the group (SPEC §4). */
export const STALE_CONSUMER_MS = 24 * 60 * 60 * 1000;
const HOUSEKEEPING_MS = 5_000;
const MAX_ERROR_BACKOFF_MS = 5_000;
/**
 * How long a stop still waits for a read already sent once its connection is closed: the answer
 * may be on its way (under load, a batch of entries now pending under our name). Closing settles
 * such a read sooner; this bounds the wait when it cannot (Redis away, a dead link).
 */
const STOP_READ_GRACE_MS = 1_000;

export interface StreamConsumerOptions {
  runner: PipelineRunner;
  /** A connection for this consumer alone (blocking reads). */
  blocking: RedisConnection;
  /** The shared connection (acks, DLQ, claims). */
  redis: RedisConnection;
  consumer: string;
  logger: Logger;
  metrics: EngineMetrics;
}

type ReadResult = { entries: StreamEntry[]; deleted: string[] };

/**
 * A batch read ahead (see readOnce), kept ours until it is handled: the batch in hand may take
 * longer than `claim_idle_ms` (sink retries, a stalled settle), and entries idle that long would
 * be reclaimed, by another replica or by this consumer, and run a second time.
 */
interface ReadAhead {
  read: Promise<ReadResult>;
  /** Stops keeping its entries claimed (they are handled, or left pending to be read again). */
  release(): void;
}

/** A batch's pipeline version, and where it settles. */
interface Batch {
  runner: PipelineRunner;
  target: SettleTarget;
  source: StreamSourceSpec;
}

/**
 * Runs one pipeline against its stream: reads batches through the consumer group (its own pending
 * entries first, then new ones), reclaims entries dead consumers left behind, hands each batch to
 * the runner, and settles the outcomes (DLQ + XACK). With a backlog, the next batch is read while
 * one is processed, and processed while that one settles; settles run one at a time, in order,
 * each after its batch's sink writes. Redis errors never end the loop: it backs off, logs, and
 * resumes from its own pending entries.
 *
 * Events: `settled` (outcomes) after each batch is acknowledged, `idle` when a read found nothing.
 */
export class StreamConsumer extends EventEmitter {
  private runner: PipelineRunner;
  /** Set while a batch is being run and settled: a swap then waits for its end. */
  private inBatch = false;
  private nextRunner?: { runner: PipelineRunner; applied: () => void };
  private readonly reader: StreamReader;
  private readonly abort = new AbortController();
  private stopping = false;
  private paused = false;
  private wake?: () => void;
  private loopDone?: Promise<void>;
  private cursor = '0';
  /** The next batch of new entries, asked for while the current one is processed. */
  private prefetched?: ReadAhead;
  /**
   * The settle of the last batch (DLQ writes and acks), still running while the next batch, read
   * ahead, is processed: with a backlog, the settle's round trip overlaps that work. At most one;
   * awaited before the next settle, before this consumer reads its own pending entries again,
   * when a read comes back empty, and at a stop.
   */
  private settling?: Promise<void>;
  /**
   * Set while a settle runs in the background (cleared when it ends, whether or not it failed): a
   * swap waits for it, as for a batch in hand, for the old version still owns that batch — a
   * stalled settle runs its deferred entries again through the old version's sinks.
   */
  private backgroundSettle?: Promise<void>;
  private lastClaim = 0;
  private lastHousekeeping = 0;
  /** Resolves once the consumer group exists (the first read can then not miss an entry). */
  readonly ready: Promise<void>;
  private markReady!: () => void;
  /** The most recent error of the loop, for the admin API. */
  lastError?: { message: string; at: string };
  /** Set while the consumer cannot settle (Redis refuses its DLQ writes): it reads nothing new. */
  stalled?: { reason: string; since: string };

  constructor(private readonly opts: StreamConsumerOptions) {
    super();
    this.ready = new Promise((resolve) => (this.markReady = resolve));
    this.runner = opts.runner;
    const src = this.source;
    this.reader = new StreamReader(opts.blocking, opts.redis, src.stream, src.group, opts.consumer);
  }

  get source(): StreamSourceSpec {
    return this.runner.pipeline.source as StreamSourceSpec;
  }

  get pipelineName(): string {
    return this.runner.pipeline.name;
  }

  /** Starts the loop. */
  start(): void {
    this.loopDone ??= this.loop();
  }

  /**
   * Stops reading, lets the batch in hand finish and be acknowledged, then resolves. Retry
   * back-offs are cut short: those entries stay pending for redelivery. With no batch in hand, a
   * read waiting on a quiet stream (up to `block_ms`) is cut by closing this consumer's own
   * connection: whatever Redis handed it meanwhile stays pending under its name (re-read on
   * restart, or reclaimed by another consumer). Nor does the loop wait on that read for more
   * than STOP_READ_GRACE_MS: with Redis away, ioredis never settles a command queued on a
   * connection closed while it was reconnecting.
   */
  async stop(): Promise<void> {
    this.stopping = true;
    this.abort.abort();
    this.wake?.();
    if (!this.inBatch) this.opts.blocking.disconnect();
    await this.loopDone;
  }

  pause(): void {
    this.paused = true;
    this.opts.metrics.up.set({ pipeline: this.pipelineName }, 0);
  }

  resume(): void {
    this.paused = false;
    this.opts.metrics.up.set({ pipeline: this.pipelineName }, 1);
    this.wake?.();
  }

  /**
   * Replaces the runner (a new version of the pipeline) at the next batch boundary: the batch in
   * hand finishes with the old version, and so does a settle of the old version still running in
   * the background. Resolves once the new one is in place — at once when neither is (the consumer
   * is waiting on a read, or paused): what that read returns is then handled by the new version,
   * so a reload never waits for a quiet stream's read to time out.
   */
  swap(runner: PipelineRunner): Promise<void> {
    return new Promise((resolve) => {
      this.nextRunner = { runner, applied: resolve };
      if (!this.inBatch) this.applySwap();
      this.wake?.();
    });
  }

  private get target(): SettleTarget {
    const p = this.runner.pipeline;
    return { pipeline: p.name, stream: this.source.stream, group: this.source.group, dlq: p.dlq };
  }

  private async loop(): Promise<void> {
    const log = this.opts.logger;
    let errorDelay = 0;
    let groupReady = false;
    this.opts.metrics.up.set({ pipeline: this.pipelineName }, this.paused ? 0 : 1);
    while (!this.stopping) {
      this.applySwap();
      if (this.paused) {
        await this.drainPrefetch();
        if (this.paused && !this.stopping) await new Promise<void>((r) => (this.wake = r));
        continue;
      }
      try {
        if (!groupReady) {
          await this.reader.ensureGroup(this.source.start);
          groupReady = true;
          this.markReady();
        }
        await this.housekeeping();
        // Stopping, it takes nothing new: no reclaim, and after a reclaimed batch no read (which
        // would wait up to block_ms).
        if (this.stopping) break;
        await this.reclaim();
        if (this.stopping) break;
        await this.readOnce();
        if (errorDelay > 0) log.info({ stream: this.source.stream }, 'reading again after errors');
        errorDelay = 0;
      } catch (err) {
        if (this.stopping) break;
        const message = errorMessage(err);
        if (message.includes('NOGROUP')) groupReady = false;
        this.lastError = { message, at: new Date().toISOString() };
        // What a prefetch may have read is pending under our name too: the re-read below gets it.
        this.dropPrefetch();
        // A settle still running ends first, or the re-read would run its entries again.
        await this.settled().catch((e: unknown) => log.warn({ err: errorMessage(e) }, 'could not settle a batch; its entries are read again'));
        errorDelay = Math.min(MAX_ERROR_BACKOFF_MS, errorDelay ? errorDelay * 2 : 100);
        log.warn({ err: message, retryInMs: errorDelay, stream: this.source.stream }, 'stream read failed; retrying');
        // Whatever was in hand is still pending under our name: start over from it.
        this.cursor = '0';
        await sleep(errorDelay, this.abort.signal);
      }
    }
    // A prefetch still waiting on a quiet stream is cut too (see stop()).
    this.opts.blocking.disconnect();
    await this.drainPrefetch();
    await this.settled().catch((err: unknown) =>
      log.warn({ err: errorMessage(err) }, 'could not settle the last batch; its entries stay pending for redelivery'));
    this.opts.metrics.up.set({ pipeline: this.pipelineName }, 0);
    this.markReady();
  }

  /** Processes a prefetched batch before stopping or pausing, so nothing read is left unhandled. */
  private async drainPrefetch(): Promise<void> {
    const pending = this.prefetched;
    this.prefetched = undefined;
    if (!pending) return;
    try {
      const { entries, deleted } = await this.untilStopped(pending.read);
      if (entries.length || deleted.length) await this.handle(entries, deleted);
    } catch (err) {
      // Left pending under our name: re-read on restart or reclaimed by another consumer. At a
      // stop, a read still waiting was cut on purpose: nothing to warn about. So is the batch before
      // it when its settle, still running in the background, failed: after a pause, the next read
      // starts from our own pending entries, as the loop's error path does.
      this.cursor = '0';
      if (!this.stopping) {
        this.lastError = { message: errorMessage(err), at: new Date().toISOString() };
        this.opts.logger.warn({ err: errorMessage(err) }, 'could not finish a prefetched batch');
      }
    } finally {
      pending.release();
    }
  }

  /** Lets a batch read ahead go unhandled: it stays pending under our name, to be read again. */
  private dropPrefetch(): void {
    this.prefetched?.release();
    this.prefetched = undefined;
  }

  private applySwap(): void {
    // A settle of the old version still running: applied once it ends (see handleBatch).
    if (!this.nextRunner || this.backgroundSettle) return;
    const { runner, applied } = this.nextRunner;
    this.nextRunner = undefined;
    this.runner = runner;
    applied();
  }

  /** One read: own pending entries while there are any, then new ones. */
  private async readOnce(): Promise<void> {
    const src = this.source;
    const own = this.cursor !== '>';
    // A batch read ahead is of new entries: one left over when reading our own is let go.
    if (own) this.dropPrefetch();
    const prefetched = this.prefetched;
    this.prefetched = undefined;
    try {
      await this.readAndHandle(own, prefetched?.read ?? this.reader.read(this.cursor, src.batch, src.blockMs));
    } finally {
      prefetched?.release();
    }
  }

  private async readAndHandle(own: boolean, read: Promise<ReadResult>): Promise<void> {
    const src = this.source;
    const { entries, deleted } = await this.untilStopped(read);
    if (own) {
      const ids = [...entries.map((e) => e.id), ...deleted];
      this.cursor = ids.length ? maxId(ids) : '>';
    }
    if (entries.length === 0 && deleted.length === 0) {
      await this.settled();
      this.emit('idle');
      return;
    }
    // A full batch means a backlog: read the next while this one is processed, so the read's
    // round trip overlaps the work (the reading connection is this consumer's own).
    if (!own && entries.length === src.batch && !this.stopping && !this.paused && !this.nextRunner) {
      this.prefetched = this.readAhead(src);
    }
    await this.handle(own ? await this.reader.withDeliveryCounts(entries) : entries, deleted);
  }

  /** Reads the next batch of new entries, and keeps them ours until they are handled (ReadAhead). */
  private readAhead(src: StreamSourceSpec): ReadAhead {
    const read = this.reader.read('>', src.batch, src.blockMs);
    read.catch(() => undefined); // awaited, and its error handled, on the next read
    let released = false;
    let stopKeeping = (): void => undefined;
    void read.then(({ entries }) => {
      if (!released) stopKeeping = this.keepClaimed(src, entries);
    }, () => undefined);
    return {
      read,
      release: () => {
        released = true;
        stopKeeping();
      },
    };
  }

  /**
   * `read`, or a rejection once the consumer has been stopping for STOP_READ_GRACE_MS: a stop does
   * not wait for a read to end. A read answered by then is handled; one still waiting is left
   * alone (what it may yet bring stays pending under our name). Not for a batch in hand: that
   * finishes.
   */
  private untilStopped<T>(read: Promise<T>): Promise<T> {
    const signal = this.abort.signal;
    let timer: NodeJS.Timeout | undefined;
    let onAbort!: () => void;
    const stopped = new Promise<never>((_, reject) => {
      onAbort = () => (timer = setTimeout(() => reject(new Error('stopped')), STOP_READ_GRACE_MS));
      if (signal.aborted) onAbort();
      else signal.addEventListener('abort', onAbort, { once: true });
    });
    stopped.catch(() => undefined);
    return Promise.race([read, stopped]).finally(() => {
      clearTimeout(timer);
      signal.removeEventListener('abort', onAbort);
    });
  }

  /** Claims entries other consumers left idle past `claim_idle_ms`, a batch at a time. */
  private async reclaim(): Promise<void> {
    const src = this.source;
    const now = Date.now();
    if (now - this.lastClaim < Math.max(1000, src.claimIdleMs / 2)) return;
    this.lastClaim = now;
    let cursor = '0-0';
    do {
      const claimed = await this.reader.claim(cursor, src.claimIdleMs, src.batch);
      cursor = claimed.next;
      if (claimed.entries.length) {
        this.opts.logger.info({ stream: src.stream, count: claimed.entries.length }, 'reclaimed entries left pending by another consumer');
        await this.handle(await this.reader.withDeliveryCounts(claimed.entries), []);
      }
    } while (cursor !== '0-0' && !this.stopping);
  }

  /**
   * Runs a batch and settles it; poison entries go to the DLQ unprocessed. When Redis refuses a
   * write that is not the event's fault — a sink's write (out of memory, read-only replica) or the
   * DLQ write itself — the entries concerned stay pending and the pipeline stalls: it reads nothing
   * new, backs off (100 ms doubling to 5 s) and tries them again in place, so no delivery is
   * charged to them, until Redis accepts or the consumer stops (then they are redelivered later).
   */
  private async handle(entries: StreamEntry[], deleted: string[]): Promise<void> {
    // A swap asked for: the batch is the new version's, once the old one's settle has ended. A
    // stalled settle may take long: the batch's entries are kept ours meanwhile (a reclaimed
    // batch has nothing else keeping them so).
    const oldSettle = this.nextRunner ? this.backgroundSettle : undefined;
    if (oldSettle) await this.keepingClaimed(this.source, entries, () => oldSettle);
    this.applySwap();
    this.inBatch = true;
    try {
      await this.handleBatch(entries, deleted);
    } finally {
      this.inBatch = false;
    }
    this.applySwap();
  }

  private async handleBatch(entries: StreamEntry[], deleted: string[]): Promise<void> {
    // The version that runs a batch settles it (into its DLQ), whatever a swap does meanwhile.
    const batch: Batch = { runner: this.runner, target: this.target, source: this.source };
    const max = batch.source.maxDeliveries;
    const poison: Outcome[] = [];
    const fresh: StreamEntry[] = [];
    for (const e of entries) {
      if ((e.deliveries ?? 1) > max) {
        poison.push({ id: e.id, kind: 'dlq', stage: 'delivery', attempts: e.deliveries!, payload: rawPayload(e, batch.source.codec),
          error: `poison: delivered ${e.deliveries} times, over max_deliveries (${max})` });
      } else fresh.push(e);
    }
    const result = await this.keepingClaimed(batch.source, entries, async () => {
      const processed = await batch.runner.process(fresh);
      // One settle at a time, in order: the previous batch's first (a failure of it is thrown
      // here). A stalled one may take long: this batch's entries are kept ours meanwhile.
      await this.settled();
      return processed;
    });
    const settling = this.keepingClaimed(batch.source, entries, () =>
      this.settleInPlace(batch, fresh, [...poison, ...result.outcomes], deleted, result.stageSeconds));
    // Entries a sink deferred run again in place (settleInPlace): that stays in the foreground, so
    // the runner still runs one batch at a time and the next batch's sink writes come after them.
    // A background settle only writes (DLQ entries, acks), and only those it tries again.
    const deferred = result.outcomes.some((o) => o.kind === 'deferred');
    if (this.prefetched && !this.stopping && !this.nextRunner && !deferred) {
      // A backlog: the next batch is already on its way; it is processed while this one settles.
      this.settling = settling;
      settling.catch(() => undefined); // thrown where it is awaited
      const ended: Promise<void> = settling.then(() => undefined, () => undefined).then(() => {
        if (this.backgroundSettle !== ended) return;
        this.backgroundSettle = undefined;
        if (!this.inBatch) this.applySwap(); // a swap asked for meanwhile (none is in hand)
      });
      this.backgroundSettle = ended;
    } else {
      await settling;
    }
  }

  /** Waits for the settle still running in the background, if any (see `settling`). */
  private async settled(): Promise<void> {
    const settling = this.settling;
    this.settling = undefined;
    await settling;
  }

  /**
   * Settles a batch's outcomes. While Redis refuses a write (a sink's, or the DLQ's), the entries
   * concerned stay in hand and the consumer stalls, trying them again in place.
   */
  private async settleInPlace(batch: Batch, fresh: StreamEntry[], outcomes: Outcome[], deleted: string[],
    stageSeconds: BatchResult['stageSeconds']): Promise<void> {
    let unsettled = await this.settle(batch.target, outcomes, deleted, stageSeconds);
    for (let delay = 100; unsettled.length && !this.stopping; delay = Math.min(MAX_ERROR_BACKOFF_MS, delay * 2)) {
      this.stall(unsettled, delay);
      if (!(await sleep(delay, this.abort.signal))) break;
      // Deferred entries run again; entries whose DLQ write was refused are only settled again.
      const again = new Set(unsettled.flatMap((u) => u.outcome.kind === 'deferred' ? [u.outcome.id] : []));
      const rerun = again.size ? (await batch.runner.process(fresh.filter((e) => again.has(e.id)))).outcomes : [];
      unsettled = await this.settle(batch.target, [...unsettled.filter((u) => !again.has(u.outcome.id)).map((u) => u.outcome), ...rerun], []);
    }
    if (this.stalled && !unsettled.length) {
      this.opts.logger.info({ stalledSince: this.stalled.since }, 'Redis accepts the writes again; reading on');
      this.stalled = undefined;
    }
  }

  /**
   * Settles outcomes (DLQ writes + acks) and records the settled ones. Returns what is left
   * pending for a reason other than shutdown: entries deferred by a sink Redis refused, and
   * entries whose DLQ write Redis refused, each with the reason.
   */
  private async settle(target: SettleTarget, outcomes: Outcome[], deleted: string[], stageSeconds?: BatchResult['stageSeconds']): Promise<{ outcome: Outcome; reason: string }[]> {
    let refused: { id: string; error: string }[];
    try {
      ({ refused } = await settleBatch(this.opts.redis, target, outcomes, deleted));
    } catch (err) {
      if (!this.stalled) throw err; // the loop's error path: back off, re-read own pending entries
      // Already stalled: keep the outcomes in hand and try again rather than re-run the events.
      const reason = errorMessage(err);
      return outcomes.filter((o) => o.kind !== 'deferred' || !this.stopping).map((outcome) => ({ outcome, reason }));
    }
    const refusedReason = new Map(refused.map((r) => [r.id, `Redis refused the DLQ write to ${target.dlq}: ${r.error}`]));
    if (refused.length) this.opts.metrics.settleRefused.inc({ pipeline: target.pipeline }, refused.length);
    const unsettled: { outcome: Outcome; reason: string }[] = [];
    const settled: Outcome[] = [];
    for (const o of outcomes) {
      const reason = refusedReason.get(o.id) ?? (o.kind === 'deferred' && !this.stopping ? o.reason : undefined);
      if (reason) unsettled.push({ outcome: o, reason });
      else if (o.kind !== 'deferred') settled.push(o);
    }
    // Poison entries (stage delivery) are counted with the rest: events_total{outcome=dlq} and dlq_total{stage=delivery}.
    this.opts.metrics.recordBatch(target.pipeline, { outcomes: settled, stageSeconds });
    this.emit('settled', settled);
    return unsettled;
  }

  /** Marks the pipeline stalled (for /ready and the admin API) and logs why. */
  private stall(unsettled: { outcome: Outcome; reason: string }[], retryInMs: number): void {
    const reason = unsettled[0]!.reason;
    const now = new Date().toISOString();
    this.lastError = { message: reason, at: now };
    this.stalled = { reason, since: this.stalled?.since ?? now };
    this.opts.logger.warn({ err: reason, entries: unsettled.map((u) => u.outcome.id), retryInMs },
      'Redis refused a write; the entries stay pending and are tried again');
  }

  /**
   * Runs `work` while keeping its entries ours: a batch that takes longer than `claim_idle_ms`
   * (sink retries, a slow model load) would otherwise look abandoned and be reclaimed by another
   * replica while still in flight. Every third of `claim_idle_ms` its entries that have been idle
   * that long are claimed again by this consumer, which resets their idle time (JUSTID: the
   * delivery count stays). An entry another consumer took meanwhile is not idle that long, so it
   * is left alone.
   */
  private async keepingClaimed<T>(src: StreamSourceSpec, entries: StreamEntry[], work: () => Promise<T>): Promise<T> {
    const stopKeeping = this.keepClaimed(src, entries);
    try {
      return await work();
    } finally {
      stopKeeping();
    }
  }

  /** Keeps `entries` ours until the returned function is called (see keepingClaimed). */
  private keepClaimed(src: StreamSourceSpec, entries: StreamEntry[]): () => void {
    if (entries.length === 0) return () => undefined;
    const every = Math.max(250, Math.floor(src.claimIdleMs / 3));
    const ids = entries.map((e) => e.id);
    const timer = setInterval(() => {
      this.opts.redis.call('XCLAIM', src.stream, src.group, this.opts.consumer, String(every), ...ids, 'JUSTID')
        .catch((err: Error) => this.opts.logger.warn({ err: err.message }, 'could not refresh in-flight entries'));
    }, every);
    return () => clearInterval(timer);
  }

  private async housekeeping(): Promise<void> {
    const now = Date.now();
    if (now - this.lastHousekeeping < HOUSEKEEPING_MS) return;
    this.lastHousekeeping = now;
    const { metrics } = this.opts;
    const src = this.source;
    const info = await this.reader.groupInfo();
    if (info) {
      if (info.lag !== null) metrics.lag.set({ pipeline: this.pipelineName, stream: src.stream, group: src.group }, info.lag);
      metrics.pending.set({ pipeline: this.pipelineName }, info.pending);
    }
    // A DLQ key that is not a stream fails only the DLQ writes (see settle), not the loop: an error
    // here would drop the batch read ahead and read it again, charging it a delivery.
    const dlqLength = await this.opts.redis.xlen(this.runner.pipeline.dlq).catch((err: Error) => {
      if (!err.message.includes('WRONGTYPE')) throw err;
    });
    if (dlqLength !== undefined) metrics.dlqLength.set({ stream: this.runner.pipeline.dlq }, dlqLength);
    const removed = await this.reader.removeIdleConsumers(STALE_CONSUMER_MS);
    if (removed.length) this.opts.logger.info({ removed }, 'removed consumers idle for over a day with nothing pending');
  }
}
