import { Counter, Gauge, Histogram, Registry, collectDefaultMetrics } from 'prom-client';
import type { BatchResult } from './runner/pipeline-runner.ts';

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

  constructor(opts: { defaultMetrics?: boolean } = {}) {
    if (opts.defaultMetrics !== false) collectDefaultMetrics({ register: this.registry });
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

  /** Records entries sent to the DLQ outside the runner (poison entries). */
  recordPoison(pipeline: string, n: number): void {
    this.events.inc({ pipeline, outcome: 'dlq' }, n);
    this.dlq.inc({ pipeline, stage: 'delivery' }, n);
  }
}
