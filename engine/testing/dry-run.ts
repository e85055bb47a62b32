import type { CompiledPipeline } from '../config/load-pipeline.ts';
import { SinkClosedError } from '../errors.ts';
import type { Sink, SinkMessage } from '../plugins/define-sink.ts';
import { encodeForCodec, type StreamEntry } from '../runner/codec.ts';
import { PipelineRunner, type Outcome } from '../runner/pipeline-runner.ts';

/** A sink that keeps what it is given, in order: what `synapse test` and dry-runs compare. */
export class CaptureSink implements Sink {
  readonly received: SinkMessage[] = [];
  private closed = false;

  async write(batch: readonly SinkMessage[]): Promise<void> {
    if (this.closed) throw new SinkClosedError('capture sink is closed');
    this.received.push(...batch);
  }

  async close(): Promise<void> {
    this.closed = true;
  }
}

/** What a dry run produced. */
export interface DryRunResult {
  outcomes: Outcome[];
  /** Per sink id, the transformed events that reached it, in order. */
  sunk: Record<string, unknown[]>;
}

/**
 * Feeds events through the real compiled pipeline with every sink replaced by a CaptureSink;
 * no Redis, no side effects. Each event is encoded the way a producer writes it for the
 * pipeline's codec (a string is a raw `payload`), so decoding runs for real too.
 * Stream-like ids (`0-1`, `0-2`, ...) are given unless entries carry their own.
 */
export async function dryRun(pipeline: CompiledPipeline, events: readonly unknown[] | readonly StreamEntry[], opts: { raw?: boolean } = {}): Promise<DryRunResult> {
  const captures = new Map(pipeline.sinks.map((s) => [s.id, new CaptureSink()]));
  // Retries of a capture sink cannot help; skip the waiting.
  const runner = new PipelineRunner(pipeline, captures, { sleep: async () => true });
  const entries: StreamEntry[] = opts.raw
    ? (events as StreamEntry[])
    : (events as unknown[]).map((event, i) => ({ id: `0-${i + 1}`, fields: encodeForCodec(pipeline.source.codec, event) }));
  const { outcomes } = await runner.process(entries);
  const sunk: Record<string, unknown[]> = {};
  for (const [id, sink] of captures) sunk[id] = sink.received.map((m) => m.value);
  return { outcomes, sunk };
}

/** One JSON-friendly line describing an outcome, as `synapse dry-run` prints it. */
export function describeOutcome(o: Outcome, sunk?: Record<string, unknown>): Record<string, unknown> {
  switch (o.kind) {
    case 'sunk': return { id: o.id, outcome: 'sunk', sinks: sunk ?? Object.fromEntries(o.sinks.map((s) => [s, o.value])) };
    case 'filtered': return { id: o.id, outcome: 'filtered' };
    case 'dropped': return { id: o.id, outcome: 'dropped', stage: o.stage, error: o.error };
    case 'dlq': return { id: o.id, outcome: 'dlq', stage: o.stage, error: o.error, ...(o.sink ? { sink: o.sink } : {}) };
    case 'deferred': return { id: o.id, outcome: 'deferred', error: o.reason };
  }
}
