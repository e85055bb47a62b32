import type { CompiledPipeline } from '../config/load-pipeline.ts';
import { STAGES, type Outcome, type Stage } from './pipeline-runner.ts';

/** One step of an event's path through a pipeline. */
export interface TraceStep {
  stage: Stage;
  result: 'passed' | 'skipped' | 'filtered' | 'failed' | 'dropped';
  detail?: string;
}

/** An event's path through the stages, and why it stopped where it did (GET /tap). */
export interface Trace {
  pipeline: string;
  id: string;
  outcome: Outcome['kind'];
  path: TraceStep[];
  event?: unknown;
  value?: unknown;
}

/** Rebuilds the path an entry took from its outcome and the pipeline's stages. */
export function traceOutcome(p: CompiledPipeline, o: Outcome): Trace {
  const configured: Record<Stage, boolean> = {
    decode: true, validate: !!p.validate, filter: !!p.filter, transform: !!p.transform, sink: true, delivery: true,
  };
  const path: TraceStep[] = [];
  const stopAt: Stage | undefined = o.kind === 'dlq' || o.kind === 'dropped' ? o.stage : o.kind === 'filtered' ? (p.filter ? 'filter' : 'sink') : o.kind === 'deferred' ? 'sink' : undefined;
  if (stopAt === 'delivery') path.push({ stage: 'delivery', result: 'failed', detail: o.kind === 'dlq' ? o.error : undefined });
  else {
    for (const stage of STAGES) {
      if (stage === stopAt) {
        if (o.kind === 'filtered') path.push({ stage, result: 'filtered', detail: stage === 'filter' ? `filter was falsy: ${p.filter?.source}` : 'no sink\'s when: matched' });
        else if (o.kind === 'dropped') path.push({ stage, result: 'dropped', detail: o.error });
        else if (o.kind === 'dlq') path.push({ stage, result: 'failed', detail: o.error });
        else if (o.kind === 'deferred') path.push({ stage, result: 'failed', detail: o.reason });
        break;
      }
      path.push({ stage, result: configured[stage] ? 'passed' : 'skipped', ...(stage === 'sink' && o.kind === 'sunk' ? { detail: o.sinks.join(', ') } : {}) });
    }
  }
  return {
    pipeline: p.name,
    id: o.id,
    outcome: o.kind,
    path,
    event: 'event' in o ? o.event : undefined,
    value: o.kind === 'sunk' ? o.value : undefined,
  };
}
