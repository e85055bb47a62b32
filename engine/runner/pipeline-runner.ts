import type { CompiledPipeline, SinkSpec } from '../config/load-pipeline.ts';
import { formatValidationErrors } from '../config/schema-registry.ts';
import { BatchError, UnrecoverableError, errorMessage, isWriteRefusal } from '../errors.ts';
import type { Sink, SinkMessage, SinkWriteResult } from '../plugins/define-sink.ts';
import { backoffDelay, sleep } from './backoff.ts';
import { decoders, rawPayload, type StreamEntry } from './codec.ts';
import { shapeEvent } from '../config/event-shape.ts';
import { isTruthy } from './truthy.ts';

/**
 * The stages an event passes through, as DLQ entries and metrics name them. `delivery` is the
 * runtime's own: an entry delivered more than `max_deliveries` times, sent to the DLQ unprocessed.
 */
export type Stage = 'decode' | 'validate' | 'filter' | 'transform' | 'sink' | 'delivery';
/** The stages the runner itself runs. */
export type RunnerStage = Exclude<Stage, 'delivery'>;
export const STAGES: readonly RunnerStage[] = ['decode', 'validate', 'filter', 'transform', 'sink'];

/** What became of one entry. Every entry of a batch gets exactly one. */
export type Outcome =
  /** Reached every sink whose `when` held, and each succeeded. */
  | { id: string; kind: 'sunk'; event: unknown; value: unknown; sinks: string[] }
  /** The filter (or every sink's `when`) said no. Acknowledged. */
  | { id: string; kind: 'filtered'; event: unknown; value?: unknown }
  /** Invalid with `on_invalid: drop`. Acknowledged, not kept. */
  | { id: string; kind: 'dropped'; stage: Stage; error: string; event?: unknown }
  /** To be written to the DLQ, then acknowledged. */
  | { id: string; kind: 'dlq'; stage: Stage; error: string; attempts: number; payload: string; event?: unknown; sink?: string }
  /**
   * Not settled: left pending. At shutdown during a retry back-off (redelivered later), or when a
   * sink kept failing because Redis refused its writes (out of memory, read-only): not the event's
   * fault, so it is tried again rather than dead-lettered.
   */
  | { id: string; kind: 'deferred'; reason: string };

export type OutcomeKind = Outcome['kind'];

/** The result of one batch: an outcome per entry, in entry order, and time spent per stage. */
export interface BatchResult {
  outcomes: Outcome[];
  /** Seconds spent in each stage over the whole batch. */
  stageSeconds: Record<RunnerStage, number>;
}

/** Options of a runner. */
export interface RunnerOptions {
  /** Aborting cuts retry back-offs short: the entries concerned come back `deferred`. */
  signal?: AbortSignal;
  /** Called before each retry; tests use it to observe back-off without waiting. */
  sleep?: (ms: number, signal?: AbortSignal) => Promise<boolean>;
  /**
   * The longest the runner works through a batch without letting the event loop run (the admin
   * API, other pipelines, Redis replies), in ms; default YIELD_EVERY_MS. Checked between events.
   */
  yieldEveryMs?: number;
}

/** Default of RunnerOptions.yieldEveryMs. */
export const YIELD_EVERY_MS = 5;

/**
 * Decoding, validating and evaluating are synchronous: a batch of heavy events would hold the
 * event loop for the whole batch. `pace()`, called between events, lets it run once `everyMs`
 * of work has passed since it last did.
 */
class Pacer {
  private last = performance.now();
  constructor(private readonly everyMs: number) {}

  /**
   * Whether it is time to let the event loop run. Asked synchronously between events, so an
   * event that needs no pause costs no promise and no microtask: `if (pacer.due()) await pacer.pace()`.
   */
  due(): boolean {
    return performance.now() - this.last >= this.everyMs;
  }

  async pace(): Promise<void> {
    await new Promise<void>((resolve) => setImmediate(resolve));
    this.last = performance.now();
  }
}

interface Live {
  index: number;
  entry: StreamEntry;
  event: unknown;
  value: unknown;
}

/**
 * Runs one compiled pipeline over batches of entries: decode → validate → filter → transform →
 * sinks. Knows nothing of Redis: the caller reads entries, and writes DLQ entries and acks from the
 * outcomes. Stages run over the whole batch in turn, so each stage's cost is measured per batch.
 * One runner processes one batch at a time.
 */
export class PipelineRunner {
  private readonly decode;
  private readonly doSleep;

  constructor(
    readonly pipeline: CompiledPipeline,
    private readonly sinks: ReadonlyMap<string, Sink>,
    private readonly options: RunnerOptions = {},
  ) {
    this.decode = decoders[pipeline.source.codec];
    this.doSleep = options.sleep ?? sleep;
    for (const spec of pipeline.sinks) {
      if (!sinks.has(spec.id)) throw new Error(`pipeline ${pipeline.name}: no sink instance for '${spec.id}'`);
    }
  }

  /** Processes a batch; never throws for anything an entry contains. */
  async process(entries: readonly StreamEntry[]): Promise<BatchResult> {
    const p = this.pipeline;
    const outcomes = new Array<Outcome>(entries.length);
    const stageSeconds: Record<RunnerStage, number> = { decode: 0, validate: 0, filter: 0, transform: 0, sink: 0 };
    let t = performance.now();
    const lap = (stage: RunnerStage) => {
      const now = performance.now();
      stageSeconds[stage] += (now - t) / 1000;
      t = now;
    };
    const toDlq = (l: { index: number; entry: StreamEntry; event?: unknown }, stage: Stage, error: string, attempts = 1, sink?: string) => {
      outcomes[l.index] = { id: l.entry.id, kind: 'dlq', stage, error, attempts, payload: rawPayload(l.entry, p.source.codec), event: l.event, sink };
    };

    const pacer = new Pacer(this.options.yieldEveryMs ?? YIELD_EVERY_MS);

    // decode
    let live: Live[] = [];
    for (let i = 0; i < entries.length; i++) {
      const entry = entries[i]!;
      try {
        const event = shapeEvent(this.decode(entry, p.maxEventBytes), p.source.codec, p.source.envelope);
        live.push({ index: i, entry, event, value: undefined });
      } catch (err) {
        toDlq({ index: i, entry }, 'decode', errorMessage(err));
      }
      if (pacer.due()) await pacer.pace();
    }
    lap('decode');

    // validate
    if (p.validate) {
      const { validator, onInvalid, schemaId } = p.validate;
      const valid: Live[] = [];
      for (const l of live) {
        if (validator(l.event)) valid.push(l);
        else {
          const error = `schema ${schemaId}: ${formatValidationErrors(validator.errors)}`;
          if (onInvalid === 'drop') outcomes[l.index] = { id: l.entry.id, kind: 'dropped', stage: 'validate', error, event: l.event };
          else toDlq(l, 'validate', error);
        }
        if (pacer.due()) await pacer.pace();
      }
      live = valid;
    }
    lap('validate');

    // filter
    if (p.filter) {
      const filter = p.filter;
      const kept: Live[] = [];
      for (const l of live) {
        try {
          // Compiled expressions are synchronous: no await (and no microtask) per event.
          const r = filter.evaluate(l.event);
          if (isTruthy(filter.sync ? r : await r)) kept.push(l);
          else outcomes[l.index] = { id: l.entry.id, kind: 'filtered', event: l.event };
        } catch (err) {
          toDlq(l, 'filter', errorMessage(err));
        }
        if (pacer.due()) await pacer.pace();
      }
      live = kept;
    }
    lap('filter');

    // transform
    if (p.transform) {
      const transform = p.transform;
      const kept: Live[] = [];
      for (const l of live) {
        try {
          const r = transform.evaluate(l.event);
          l.value = transform.sync ? r : await r;
          if (l.value === undefined) toDlq(l, 'transform', 'transform produced no value (every path it reads is missing?)');
          else kept.push(l);
        } catch (err) {
          toDlq(l, 'transform', errorMessage(err));
        }
        if (pacer.due()) await pacer.pace();
      }
      live = kept;
    } else {
      for (const l of live) l.value = l.event;
    }
    lap('transform');

    // sinks: each sink gets the events its `when` admits; the sinks run side by side.
    const failures = new Map<number, { sink: string; error: string; attempts: number; deferred: boolean }>();
    const reached = new Map<number, string[]>();
    await Promise.all(p.sinks.map(async (spec) => {
      const admitted: Live[] = [];
      for (const l of live) {
        if (!spec.when) {
          admitted.push(l);
          continue;
        }
        try {
          const r = spec.when.evaluate(l.value, { input: l.event });
          if (isTruthy(spec.when.sync ? r : await r)) admitted.push(l);
        } catch (err) {
          failures.set(l.index, { sink: spec.id, error: `sink ${spec.id} when: ${errorMessage(err)}`, attempts: 1, deferred: false });
        }
        if (pacer.due()) await pacer.pace();
      }
      if (admitted.length === 0) return;
      const results = await this.writeWithRetry(spec, admitted);
      admitted.forEach((l, k) => {
        const r = results[k]!;
        if (r.ok) {
          const list = reached.get(l.index);
          if (list) list.push(spec.id);
          else reached.set(l.index, [spec.id]);
        } else if (!failures.has(l.index) || r.deferred) {
          failures.set(l.index, { sink: spec.id, error: `sink ${spec.id}: ${r.error}`, attempts: r.attempts, deferred: r.deferred });
        }
      });
    }));
    for (const l of live) {
      const failure = failures.get(l.index);
      if (failure?.deferred) outcomes[l.index] = { id: l.entry.id, kind: 'deferred', reason: failure.error };
      else if (failure) toDlq(l, 'sink', failure.error, failure.attempts, failure.sink);
      else if (reached.has(l.index)) {
        // In pipeline order, whatever order the sinks finished in.
        const hit = reached.get(l.index)!;
        const sinks = p.sinks.length === 1 ? hit : p.sinks.map((s) => s.id).filter((id) => hit.includes(id));
        outcomes[l.index] = { id: l.entry.id, kind: 'sunk', event: l.event, value: l.value, sinks };
      }
      else outcomes[l.index] = { id: l.entry.id, kind: 'filtered', event: l.event, value: l.value };
    }
    lap('sink');
    return { outcomes, stageSeconds };
  }

  /**
   * Writes messages to one sink, retrying the failed ones per the pipeline's retry policy.
   * UnrecoverableError is final at once; an abort during back-off defers what is left, and so
   * does Redis still refusing writes (isWriteRefusal) once the attempts are spent.
   */
  private async writeWithRetry(spec: SinkSpec, admitted: Live[]): Promise<WriteOutcome[]> {
    const sink = this.sinks.get(spec.id)!;
    const policy = this.pipeline.retry;
    const results: WriteOutcome[] = admitted.map(() => ({ ok: true, error: '', attempts: 0, deferred: false }));
    let pending = admitted.map((_, k) => k);
    for (let attempt = 1; pending.length > 0; attempt++) {
      const batch: SinkMessage[] = pending.map((k) => ({ id: admitted[k]!.entry.id, value: admitted[k]!.value, event: admitted[k]!.event, attempt }));
      const errors = await callWrite(sink, batch);
      const retry: number[] = [];
      pending.forEach((k, j) => {
        const err = errors[j];
        results[k] = { ok: !err, error: err ? errorMessage(err) : '', attempts: attempt, deferred: false };
        if (err && !(err instanceof UnrecoverableError)) {
          if (attempt < policy.attempts) retry.push(k);
          else if (isWriteRefusal(err)) results[k]!.deferred = true;
        }
      });
      pending = retry;
      if (pending.length === 0) break;
      const waited = await this.doSleep(backoffDelay(policy, attempt), this.options.signal);
      if (!waited) {
        for (const k of pending) results[k] = { ok: false, error: `${results[k]!.error} (shutting down before retry ${attempt + 1})`, attempts: attempt, deferred: true };
        break;
      }
    }
    return results;
  }
}

interface WriteOutcome {
  ok: boolean;
  error: string;
  attempts: number;
  deferred: boolean;
}

/** Calls `sink.write` and returns one error-or-undefined per message, whatever way the sink reported it. */
async function callWrite(sink: Sink, batch: SinkMessage[]): Promise<SinkWriteResult[]> {
  try {
    const results = await sink.write(batch);
    if (!results) return batch.map(() => undefined);
    return batch.map((_, i) => results[i]);
  } catch (err) {
    if (err instanceof BatchError) return batch.map((_, i) => err.errors[i]);
    const e = err instanceof Error ? err : new Error(errorMessage(err));
    return batch.map(() => e);
  }
}
