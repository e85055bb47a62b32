import type { Logger } from 'pino';
import type { Outcome } from '../runner/pipeline-runner.ts';

/** Default of DlqLog's interval: at most one line per pipeline per this many ms (SYNAPSE_DLQ_LOG_INTERVAL_MS). */
export const DLQ_LOG_INTERVAL_MS = 10_000;

/** The latest dead-lettered event of a pipeline, as the admin API shows it. */
export interface DlqNote {
  /** Why: the error of the stage that failed. */
  reason: string;
  stage: string;
  /** The sink that failed, when the stage was a sink. */
  sink?: string;
  /** The source entry id (stream id, or the tick's id for a schedule). */
  id: string;
  attempts: number;
  /** When it was dead-lettered (ISO 8601). */
  at: string;
}

type DlqOutcome = Extract<Outcome, { kind: 'dlq' }>;

/**
 * Logs dead-lettered events at warn, one line per pipeline per interval: the first one of an
 * interval at once (pipeline, stage, sink, reason, source id), the rest counted, and when the
 * interval ends a line with how many more went to the DLQ and the latest reason. A flood of
 * failures thus costs one line per pipeline per interval, and a single failure is never silent.
 */
export class DlqLog {
  private readonly windows = new Map<string, { timer: NodeJS.Timeout; more: number; latest?: DlqNote; dlq: string }>();

  constructor(private readonly logger: Logger, private readonly intervalMs = DLQ_LOG_INTERVAL_MS) {}

  /** Notes the dead-lettered outcomes of one batch of `pipeline`; returns the latest as a DlqNote. */
  record(pipeline: string, dlq: string, outcomes: readonly Outcome[]): DlqNote | undefined {
    let latest: DlqNote | undefined;
    for (const o of outcomes) {
      if (o.kind !== 'dlq') continue;
      latest = noteOf(o);
      const window = this.windows.get(pipeline);
      if (window) {
        window.more++;
        window.latest = latest;
        continue;
      }
      this.logger.warn({ pipeline, dlq, stage: latest.stage, ...(latest.sink ? { sink: latest.sink } : {}), reason: latest.reason, id: latest.id, attempts: latest.attempts },
        `event dead-lettered at ${latest.stage}${latest.sink ? ` (sink ${latest.sink})` : ''}: ${latest.reason}`);
      const timer = setTimeout(() => this.close(pipeline), this.intervalMs);
      timer.unref();
      this.windows.set(pipeline, { timer, more: 0, dlq });
    }
    return latest;
  }

  /** Ends every open interval, logging what was counted (at shutdown). */
  flush(): void {
    for (const pipeline of [...this.windows.keys()]) this.close(pipeline);
  }

  private close(pipeline: string): void {
    const window = this.windows.get(pipeline);
    if (!window) return;
    clearTimeout(window.timer);
    this.windows.delete(pipeline);
    const latest = window.latest;
    if (!window.more || !latest) return;
    this.logger.warn({ pipeline, dlq: window.dlq, count: window.more, intervalMs: this.intervalMs, stage: latest.stage, ...(latest.sink ? { sink: latest.sink } : {}), reason: latest.reason, id: latest.id },
      `${window.more} more event${window.more === 1 ? '' : 's'} dead-lettered in ${this.intervalMs / 1000} s; latest at ${latest.stage}: ${latest.reason}`);
  }
}

function noteOf(o: DlqOutcome): DlqNote {
  return { reason: o.error, stage: o.stage, ...(o.sink ? { sink: o.sink } : {}), id: o.id, attempts: o.attempts, at: new Date().toISOString() };
}
