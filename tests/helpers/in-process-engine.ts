import { randomUUID } from 'node:crypto';
import { Engine } from '../../engine/runtime/engine.ts';
import { silentLogger } from '../../engine/logger.ts';
import type { Outcome, OutcomeKind } from '../../engine/runner/pipeline-runner.ts';
import { FIXTURE_SCHEMAS } from './pipelines.ts';

/** An Engine running in the test's own process, with every settled outcome recorded. */
export interface EngineUnderTest {
  engine: Engine;
  /** Every outcome settled so far, per pipeline, in settle order. */
  outcomes: Map<string, Outcome[]>;
  /** How many outcomes of each kind a pipeline has settled. */
  tally(pipeline: string): Record<OutcomeKind, number> & { total: number };
  stop(): Promise<void>;
}

/** Starts an Engine over `pipelines` (schemas: the integration fixtures) with a silent logger. */
export async function startEngine(opts: { redisUrl: string; pipelines: string; schemas?: string; consumer?: string }): Promise<EngineUnderTest> {
  const engine = new Engine({
    redisUrl: opts.redisUrl,
    pipelinesDir: opts.pipelines,
    schemasDir: opts.schemas ?? FIXTURE_SCHEMAS,
    logger: silentLogger,
    consumer: opts.consumer ?? `it-${randomUUID().slice(0, 8)}`,
  });
  const outcomes = new Map<string, Outcome[]>();
  engine.on('settled', (pipeline: string, batch: Outcome[]) => {
    const list = outcomes.get(pipeline) ?? [];
    list.push(...batch);
    outcomes.set(pipeline, list);
  });
  try {
    await engine.start();
  } catch (err) {
    await engine.stop();
    throw err;
  }
  if (engine.rejected.size) {
    await engine.stop();
    throw new Error(`pipelines rejected: ${JSON.stringify([...engine.rejected])}`);
  }
  return {
    engine,
    outcomes,
    tally(pipeline) {
      const t = { sunk: 0, filtered: 0, dropped: 0, dlq: 0, deferred: 0, total: 0 };
      for (const o of outcomes.get(pipeline) ?? []) {
        t[o.kind]++;
        t.total++;
      }
      return t;
    },
    stop: () => engine.stop(),
  };
}
