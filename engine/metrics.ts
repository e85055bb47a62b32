import { Counter, Gauge, Histogram, Registry, collectDefaultMetrics } from 'prom-client';
import type { BatchResult } from './runner/pipeline-runner.ts';

/**
 * The states synapse_pipeline_state reports, as GET /pipelines shows them, plus `stalled`: running
 * but unable to settle what it read (Redis refuses its DLQ writes), so it reads nothing new.
 * `invalid` is a file that failed to load and runs no version at all.
 */
export const PIPELINE_STATES = ['running', 'paused', 'stalled', 'disabled', 'invalid'] as const;
export type PipelineState = (typeof PIPELINE_STATES)[number];

/** What the state gauges read from the engine at each scrape (see EngineMetrics.observe). */
export interface ObservedEngine {
  /** The shared Redis connection's status (`ready` when connected). */
  readonly redisStatus: string;
  /** Every pipeline as GET /pipelines lists it, with its state and whether its latest load or reload failed. */
  pipelineStates(): Iterable<{ pipeline: string; state: PipelineState; loadError: boolean }>;
}

/**
 * The engine's Prometheus metrics (SPEC §10), on a registry of its own so several engines in one
 * process (tests) do not collide. Every entry read is counted once, under its final outcome.
 */
export class EngineMetrics {
  readonly registry = new Registry();
  readonly events = new Counter({ name: 'synapse_events_total', help: 'Entries settled, by final outcome (sunk|filtered|dlq|dropped)', labelNames: ['pipeline', 'outcome'], registers: [this.registry] });
  readonly dlq = new Counter({ name: 'synapse_dlq_total', help: 'Entries sent to the DLQ, by the stage that failed', labelNames: ['pipeline', 'stage'], registers: [this.registry] });
  readonly stageSeconds = new Histogram({ name: 'synapse_stage_seconds', help: 'Time one batch spent in a stage', labelNames: ['pipeline', 'stage'], buckets: [0.0001, 0.0005, 0.001, 0.005, 0.01, 0.05, 0.1, 0.5, 1, 5], registers: [this.registry] });
  readonly lag = new Gauge({ name: 'synapse_consumer_lag', help: 'Entries in the stream not yet delivered to the group', labelNames: ['pipeline', 'stream', 'group'], registers: [this.registry] });
  readonly pending = new Gauge({ name: 'synapse_pending_entries', help: "Entries delivered to the pipeline's group but not yet acknowledged", labelNames: ['pipeline'], registers: [this.registry] });
  readonly dlqLength = new Gauge({ name: 'synapse_dlq_length', help: 'Length of each DLQ stream', labelNames: ['stream'], registers: [this.registry] });
  readonly up = new Gauge({ name: 'synapse_pipeline_up', help: '1 while the pipeline runs, 0 when paused or stopped', labelNames: ['pipeline'], registers: [this.registry] });
  readonly reloads = new Counter({ name: 'synapse_reloads_total', help: 'Hot reloads, by result (ok|error)', labelNames: ['result'], registers: [this.registry] });
  readonly settleRefused = new Counter({ name: 'synapse_dlq_write_refused_total', help: 'DLQ writes Redis refused (the entry stays pending and the write is retried)', labelNames: ['pipeline'], registers: [this.registry] });
  readonly refused = new Counter({ name: 'synapse_refused_total', help: 'Requests, messages, connections and entries refused by a limit (docs/security.md), by limit', labelNames: ['limit'], registers: [this.registry] });
  readonly wsConnections = new Gauge({ name: 'synapse_ws_connections', help: 'Open WebSocket connections of /ws', registers: [this.registry] });
  readonly wsSubscriptions = new Gauge({ name: 'synapse_ws_subscriptions', help: 'Channel subscriptions of all /ws clients', registers: [this.registry] });
  readonly wsDropped = new Counter({ name: 'synapse_ws_dropped_messages_total', help: 'Messages not sent to a /ws client whose send buffer was full', registers: [this.registry] });
  readonly plugin = new Counter({ name: 'synapse_plugin_events_total', help: 'Things plugins counted', labelNames: ['pipeline', 'sink', 'name'], registers: [this.registry] });

  // State, not events: these gauges are read from the engine at each scrape (observe()), so they
  // are exact at that moment, and a pipeline that is gone has no series left.
  private observed?: ObservedEngine;
  readonly redisUp: Gauge = new Gauge({
    name: 'synapse_redis_up', help: "1 while the engine's Redis connection is ready, 0 while it is connecting, reconnecting or closed", registers: [this.registry],
    collect: () => this.redisUp.set(this.observed?.redisStatus === 'ready' ? 1 : 0),
  });
  readonly pipelineState: Gauge<'pipeline' | 'state'> = new Gauge({
    name: 'synapse_pipeline_state', help: `1 for the state each pipeline is in (${PIPELINE_STATES.join('|')}), 0 for the others`, labelNames: ['pipeline', 'state'], registers: [this.registry],
    collect: () => {
      this.pipelineState.reset();
      for (const p of this.observed?.pipelineStates() ?? []) {
        for (const state of PIPELINE_STATES) this.pipelineState.set({ pipeline: p.pipeline, state }, p.state === state ? 1 : 0);
      }
    },
  });
  readonly loadError: Gauge<'pipeline'> = new Gauge({
    name: 'synapse_pipeline_load_error', help: "1 while the pipeline's latest load or reload was rejected (a running version runs on; an invalid file runs nothing), else 0", labelNames: ['pipeline'], registers: [this.registry],
    collect: () => {
      this.loadError.reset();
      for (const p of this.observed?.pipelineStates() ?? []) this.loadError.set({ pipeline: p.pipeline }, p.loadError ? 1 : 0);
    },
  });

  constructor(opts: { defaultMetrics?: boolean } = {}) {
    if (opts.defaultMetrics !== false) collectDefaultMetrics({ register: this.registry });
  }

  /** The engine the state gauges (synapse_redis_up, synapse_pipeline_state, synapse_pipeline_load_error) read. */
  observe(engine: ObservedEngine): void {
    this.observed = engine;
  }

  /**
   * Records settled outcomes, and the batch's time per stage when given. Deferred entries are not
   * counted: they will be read again.
   */
  recordBatch(pipeline: string, result: { outcomes: BatchResult['outcomes']; stageSeconds?: BatchResult['stageSeconds'] }): void {
    const counts = { sunk: 0, filtered: 0, dlq: 0, dropped: 0 };
    for (const o of result.outcomes) {
      if (o.kind === 'deferred') continue;
      counts[o.kind]++;
      if (o.kind === 'dlq') this.dlq.inc({ pipeline, stage: o.stage });
    }
    for (const [outcome, n] of Object.entries(counts)) if (n) this.events.inc({ pipeline, outcome }, n);
    for (const [stage, seconds] of Object.entries(result.stageSeconds ?? {})) this.stageSeconds.observe({ pipeline, stage }, seconds);
  }
}
