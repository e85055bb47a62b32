import type { Logger } from 'pino';
import type { EngineMetrics } from './metrics.ts';

/**
 * Logs what a limit refused without letting an attacker flood the log: the first refusal of a
 * limit is logged, further ones within `windowMs` are only counted, and the next line logged for
 * that limit says how many were left out. Every refusal counts in `synapse_refused_total{limit}`.
 */
export class RefusalLog {
  private readonly seen = new Map<string, { until: number; suppressed: number }>();

  constructor(private readonly logger: Logger, private readonly metrics?: EngineMetrics, private readonly windowMs = 60_000) {}

  /** Records `count` refusals by `limit` (a stable name, e.g. `admin.host`); `message` says what happened. */
  refuse(limit: string, message: string, fields: Record<string, unknown> = {}, count = 1): void {
    this.metrics?.refused.inc({ limit }, count);
    const now = Date.now();
    const s = this.seen.get(limit);
    if (s && now < s.until) {
      s.suppressed += count;
      return;
    }
    this.logger.warn({ limit, ...fields, ...(s?.suppressed ? { suppressedSinceLastLine: s.suppressed } : {}) }, `refused: ${message}`);
    this.seen.set(limit, { until: now + this.windowMs, suppressed: 0 });
  }
}
