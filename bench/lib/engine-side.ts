import { startProfile } from './profile.ts';
import { copyFile, mkdir, mkdtemp, readdir, readFile, rm, writeFile } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import { parse, stringify } from 'yaml';
import { silentLogger } from '../../engine/logger.ts';
import type { Outcome } from '../../engine/runner/pipeline-runner.ts';
import { STAGES, type RunnerStage } from '../../engine/runner/pipeline-runner.ts';
import { Engine } from '../../engine/runtime/engine.ts';
import { formatDiagnostic } from '../../engine/errors.ts';
import { cpuSecondsBetween, rate, type OutcomeCounts, type SideResult, type SideSpec } from './side.ts';

/**
 * The engine side: a scenario's pipeline (bench/lib/scenarios.ts), pointed at the bench's streams, run by an
 * in-process Engine with a silent logger. Its per-stage timings come from the engine's own
 * `synapse_stage_seconds` histogram.
 */

/** Seconds the engine spent in one stage over the whole run, and its share of the wall time. */
export interface StageTime {
  seconds: number;
  share: number;
  /** Mean microseconds per event read. */
  usPerEvent: number;
}

/** The engine side's measurement. */
export interface EngineResult extends SideResult {
  /** Seconds `engine.start()` took (schemas, pipeline compile, connect); not in `seconds`. */
  startupSeconds: number;
  /** Per runner stage, plus `other`: wall time outside every stage (XREADGROUP, DLQ+XACK settle, loop). */
  stages: Record<RunnerStage | 'other', StageTime>;
}

/** Where the pipeline comes from, the schema it validates against, and where to write config. */
export interface EngineSideFiles {
  pipelineFile: string;
  schemaFile: string;
  /** A scratch directory the caller removes (even when interrupted). */
  workDir: string;
}

/** The bench pipeline's name, whatever the scenario (one pipeline runs at a time). */
const PIPELINE_NAME = 'bench-pipeline';

/**
 * The shipped pipeline with its source, sink and DLQ pointed at the side's keys. Its validate,
 * filter, transform and retry stay as shipped; the publish sink's MAXLEN cap is dropped so the
 * output keeps every event (the hand-written side does not trim either).
 */
export function benchPipelineYaml(shippedYaml: string, spec: SideSpec, name = PIPELINE_NAME): string {
  const doc = parse(shippedYaml) as Record<string, any>;
  if (!doc.sink || doc.sink.type !== 'publish') throw new Error('expected the shipped pipeline to have one publish sink');
  doc.name = name;
  doc.source = { ...doc.source, stream: spec.input, group: spec.group, start: '0', batch: spec.batch };
  doc.sink = { type: 'publish', with: { stream: spec.output } };
  doc.dlq = spec.dlq;
  return stringify(doc);
}

/** Writes a pipelines dir and a schemas dir under `workDir`; returns their paths and a remover. */
async function writeConfig(spec: SideSpec, files: EngineSideFiles, workDir: string) {
  const root = await mkdtemp(join(workDir, 'engine-'));
  const pipelinesDir = join(root, 'pipelines');
  const schemasDir = join(root, 'schemas');
  await mkdir(pipelinesDir);
  await mkdir(schemasDir);
  await writeFile(join(pipelinesDir, `${PIPELINE_NAME}.yaml`), benchPipelineYaml(await readFile(files.pipelineFile, 'utf8'), spec));
  // The schema and the ones beside it, for its `$ref`s (common.json).
  const from = dirname(files.schemaFile);
  for (const name of await readdir(from)) if (name.endsWith('.json')) await copyFile(join(from, name), join(schemasDir, name));
  return { pipelinesDir, schemasDir, remove: () => rm(root, { recursive: true, force: true }) };
}

/** Throws unless the bench pipeline loaded and is running. */
function assertRunning(engine: Engine): void {
  for (const [file, diagnostics] of engine.rejected) {
    throw new Error(`bench pipeline rejected (${file}):\n${diagnostics.map(formatDiagnostic).join('\n')}`);
  }
  const status = engine.handles.get(PIPELINE_NAME)?.status;
  if (status !== 'running') throw new Error(`bench pipeline is ${status ?? 'missing'}, not running`);
}

/** When the last entry was settled: a `performance.now()` time and a `process.cpuUsage()` reading. */
interface DoneAt {
  at: number;
  cpu: NodeJS.CpuUsage;
}

/** Counts settled outcomes and resolves once `total` entries are settled. */
function settledTracker(engine: Engine, total: number) {
  const counts: OutcomeCounts = { sunk: 0, filtered: 0, dlq: 0 };
  let settled = 0;
  let batches = 0;
  let resolveDone!: (at: DoneAt) => void;
  const done = new Promise<DoneAt>((r) => (resolveDone = r));
  engine.on('settled', (_pipeline: string, outcomes: Outcome[]) => {
    batches++;
    for (const o of outcomes) {
      if (o.kind === 'sunk' || o.kind === 'filtered' || o.kind === 'dlq') counts[o.kind]++;
      if (o.kind !== 'deferred') settled++;
    }
    if (settled >= total) resolveDone({ at: performance.now(), cpu: process.cpuUsage() });
  });
  return { counts, done, progress: () => ({ settled, batches }) };
}

/** Rejects after `ms` with what the tracker had seen, so a stuck run still ends. */
function deadline(ms: number, progress: () => { settled: number }): { promise: Promise<never>; cancel: () => void } {
  let timer: NodeJS.Timeout | undefined;
  const promise = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`engine did not settle in ${ms / 1000}s (settled ${progress().settled})`)), ms);
  });
  return { promise, cancel: () => clearTimeout(timer) };
}

/** Sums of the engine's stage histogram for the bench pipeline, by stage. */
async function stageSums(engine: Engine): Promise<Record<RunnerStage, number>> {
  const sums = Object.fromEntries(STAGES.map((s) => [s, 0])) as Record<RunnerStage, number>;
  const metric = await engine.metrics.stageSeconds.get();
  for (const v of metric.values) {
    const stage = v.labels.stage as RunnerStage;
    if (v.metricName === 'synapse_stage_seconds_sum' && v.labels.pipeline === PIPELINE_NAME && stage in sums) sums[stage] += v.value;
  }
  return sums;
}

/** Turns stage sums into seconds, shares of the wall time, and µs per event, plus the remainder. */
export function stageBreakdown(sums: Record<RunnerStage, number>, wallSeconds: number, total: number): EngineResult['stages'] {
  const entry = (seconds: number): StageTime => ({
    seconds,
    share: wallSeconds > 0 ? seconds / wallSeconds : 0,
    usPerEvent: total > 0 ? (seconds * 1e6) / total : 0,
  });
  const inStages = STAGES.reduce((acc, s) => acc + sums[s], 0);
  const out = Object.fromEntries(STAGES.map((s) => [s, entry(sums[s])])) as EngineResult['stages'];
  out.other = entry(Math.max(0, wallSeconds - inStages));
  return out;
}

/**
 * Runs the engine until all `spec.total` entries are settled. The clock starts when
 * `engine.start()` has resolved (the consumer has at most its group check in flight then) and
 * stops at the `settled` event that completes the count: the batch's DLQ writes and XACK are done.
 */
export async function runEngine(spec: SideSpec, files: EngineSideFiles, timeoutMs: number): Promise<EngineResult> {
  const config = await writeConfig(spec, files, files.workDir);
  const engine = new Engine({ redisUrl: spec.redisUrl, pipelinesDir: config.pipelinesDir, schemasDir: config.schemasDir, logger: silentLogger, consumer: spec.consumer });
  const tracker = settledTracker(engine, spec.total);
  try {
    const tStart = performance.now();
    await engine.start();
    const profile = await startProfile('engine');
    const t0 = performance.now();
    const cpu0 = process.cpuUsage();
    assertRunning(engine);
    const limit = deadline(timeoutMs, tracker.progress);
    const end = await Promise.race([tracker.done, limit.promise]).finally(limit.cancel);
    await profile?.();
    const seconds = (end.at - t0) / 1000;
    return {
      seconds,
      eventsPerSec: rate(spec.total, seconds),
      counts: tracker.counts,
      batches: tracker.progress().batches,
      cpuSeconds: cpuSecondsBetween(cpu0, end.cpu),
      startupSeconds: (t0 - tStart) / 1000,
      stages: stageBreakdown(await stageSums(engine), seconds, spec.total),
    };
  } finally {
    await engine.stop(5_000);
    await config.remove();
  }
}
