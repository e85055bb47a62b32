/**
 * `npm run bench`: how fast the engine drains a Redis stream through a pipeline, against a
 * hand-written ioredis consumer doing the same job, on the same Redis in the same run. Two
 * pipelines, one after the other (bench/lib/scenarios.ts): the shipped task-outcomes, and
 * order-totals, whose expressions work over arrays (`items[qty > 0]`, `$sum(items.(price * qty))`,
 * `$round(…, 2)`).
 *
 * 1. Starts a non-persistent redis-server on a free 127.0.0.1 port (unless REDIS_URL is set).
 * 2. Generates N seeded platform-event envelopes (~70% pass the filter, 0.5% invalid) and loads
 *    them once into a template stream with pipelined XADDs.
 * 3. For each side (per round, `--rounds`): COPY the template to a fresh input stream, consume it
 *    to the end, time it from the start of consumption until every entry is settled (written and
 *    acked), note the CPU this process and Redis used, and check that the group is drained, the
 *    output and DLQ hold exactly what they should, and both sides wrote the same payloads.
 * 4. Prints events/s for both, the ratio, CPU per event, the engine's time per stage (from its own
 *    synapse_stage_seconds histogram), and writes all of it to bench/results/stream-throughput.json.
 *    Exits 1 when a check failed (the two sides did not do the same work).
 *
 * Every key it makes starts with `synapse-bench:<run>:` and is deleted at the end.
 *
 * `--replicas N`, `--cluster` and `--streams K` measure scale-out instead: N `synapse run`
 * processes on shared consumer groups, one Redis or a local 3-master cluster (bench/lib/scale-out.ts).
 */
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parse } from 'yaml';
import { runEngine, type EngineResult } from './lib/engine-side.ts';
import { loadStream, type WorkloadSummary } from './lib/events.ts';
import { runHandWritten } from './lib/hand-written.ts';
import { SCENARIOS, type Scenario } from './lib/scenarios.ts';
import { USAGE, UsageError, parseOptions, type BenchOptions } from './lib/options.ts';
import { acquireRedis, deleteKeys, redisCpuSeconds, type BenchRedis } from './lib/redis.ts';
import { formatReport, loadAverage, machineMeta, reportIsClean, summarize, writeReport, type BenchReport, type Checked, type RoundResult } from './lib/report.ts';
import type { SideResult, SideSpec } from './lib/side.ts';
import { compareOutputs, verifySide } from './lib/verify.ts';
import { formatScaleOut, runScaleOut, scaleOutIsClean, writeScaleOut } from './lib/scale-out.ts';

const ROOT = resolve(dirname(fileURLToPath(import.meta.url)), '..');
const SCHEMA_FILE = join(ROOT, 'schemas/platform-event.json');

/** The batch size the pipeline reads with (its `source.batch`, default 100). */
async function shippedBatch(scenario: Scenario): Promise<number> {
  const doc = parse(await readFile(join(ROOT, scenario.pipelineFile), 'utf8')) as { source?: { batch?: number } };
  return doc.source?.batch ?? 100;
}

/** A side's own keys for one round, under the run's prefix. */
function sideSpec(redis: BenchRedis, prefix: string, side: string, batch: number, total: number): SideSpec {
  return {
    redisUrl: redis.url,
    input: `${prefix}${side}:in`,
    output: `${prefix}${side}:out`,
    dlq: `${prefix}${side}:dlq`,
    group: `${side}-group`,
    consumer: `${side}-consumer`,
    batch,
    total,
  };
}

/** Gives a side a fresh copy of the loaded events (server-side COPY: same ids, same entries). */
async function freshInput(redis: BenchRedis, template: string, spec: SideSpec): Promise<void> {
  const copied = await redis.control.copy(template, spec.input);
  if (copied !== 1) throw new Error(`could not copy ${template} to ${spec.input}`);
}

/** Per-side time limit: generous, but a stuck run still ends. */
function sideTimeoutMs(total: number): number {
  return Math.max(60_000, total); // 1 ms per event: 200 s for 200,000
}

/** What a round shares: the Redis, the template stream and what the workload should produce. */
interface RunContext {
  redis: BenchRedis;
  prefix: string;
  template: string;
  workload: WorkloadSummary;
  batch: number;
  total: number;
  /** Scratch directory for the engine's pipeline and schema files. */
  workDir: string;
  scenario: Scenario;
}

async function measureHand(ctx: RunContext, spec: SideSpec): Promise<Checked<SideResult>> {
  await freshInput(ctx.redis, ctx.template, spec);
  process.stdout.write('  hand-written ... ');
  const redisCpu0 = await redisCpuSeconds(ctx.redis.control);
  const result = await runHandWritten(spec, SCHEMA_FILE, sideTimeoutMs(spec.total), ctx.scenario.handle);
  result.redisCpuSeconds = (await redisCpuSeconds(ctx.redis.control)) - redisCpu0;
  console.log(`${result.eventsPerSec} events/s`);
  return { ...result, problems: await verifySide(ctx.redis.control, spec, result, ctx.workload) };
}

async function measureEngine(ctx: RunContext, spec: SideSpec): Promise<Checked<EngineResult>> {
  await freshInput(ctx.redis, ctx.template, spec);
  // The group exists before the engine starts, as it would for a long-running deployment.
  await ctx.redis.control.xgroup('CREATE', spec.input, spec.group, '0');
  process.stdout.write('  engine ... ');
  const redisCpu0 = await redisCpuSeconds(ctx.redis.control);
  const result = await runEngine(spec, { pipelineFile: join(ROOT, ctx.scenario.pipelineFile), schemaFile: SCHEMA_FILE, workDir: ctx.workDir }, sideTimeoutMs(spec.total));
  result.redisCpuSeconds = (await redisCpuSeconds(ctx.redis.control)) - redisCpu0;
  console.log(`${result.eventsPerSec} events/s`);
  return { ...result, problems: await verifySide(ctx.redis.control, spec, result, ctx.workload) };
}

/**
 * Generates the workload and loads it into the template stream. Only the expected counts are
 * kept: the payload strings are dropped here so that neither side runs with ~50 MB of someone
 * else's garbage in its heap.
 */
async function loadTemplate(redis: BenchRedis, template: string, opts: BenchOptions, scenario: Scenario): Promise<{ workload: WorkloadSummary; loadSeconds: number }> {
  process.stdout.write(`generating ${opts.events} events ... `);
  const { payloads, ...workload } = scenario.workload(opts.events, opts.seed);
  const loadSeconds = await loadStream(redis.control, template, payloads);
  console.log(`loaded in ${loadSeconds.toFixed(2)} s`);
  return { workload, loadSeconds };
}

/**
 * One round: each selected side on its own fresh copy of the input (odd rounds run the engine
 * first, so neither side always inherits the other's warm caches), then the outputs compared and
 * the round's keys deleted.
 */
async function runRound(ctx: RunContext, round: number, only: BenchOptions['only']): Promise<RoundResult> {
  const hand = sideSpec(ctx.redis, ctx.prefix, `hand-r${round}`, ctx.batch, ctx.total);
  const engine = sideSpec(ctx.redis, ctx.prefix, `engine-r${round}`, ctx.batch, ctx.total);
  const result: RoundResult = {};
  const runHand = async () => { if (only !== 'engine') result.hand = await measureHand(ctx, hand); };
  const runEng = async () => { if (only !== 'hand') result.engine = await measureEngine(ctx, engine); };
  if (round % 2 === 0) {
    await runHand();
    await runEng();
  } else {
    await runEng();
    await runHand();
  }
  if (result.hand && result.engine) result.outputs = await compareOutputs(ctx.redis.control, hand.output, engine.output);
  await deleteKeys(ctx.redis.control, `${ctx.prefix}hand-r${round}:`);
  await deleteKeys(ctx.redis.control, `${ctx.prefix}engine-r${round}:`);
  return result;
}

/** Set once a signal arrived: the failures that follow are the interruption's, not the bench's. */
let interrupted = false;

/**
 * On Ctrl-C or SIGTERM, runs `cleanup` (stopping our redis-server) and exits, so an interrupted
 * run leaves no server behind. Returns the function that removes the handlers again.
 */
function stopOnSignal(cleanup: () => Promise<void>): () => void {
  const handler = (signal: NodeJS.Signals) => {
    interrupted = true;
    console.error(`\n${signal}: stopping`);
    cleanup().finally(() => process.exit(130));
  };
  process.once('SIGINT', handler);
  process.once('SIGTERM', handler);
  return () => {
    process.off('SIGINT', handler);
    process.off('SIGTERM', handler);
  };
}

async function run(opts: BenchOptions, scenario: Scenario): Promise<BenchReport> {
  const batch = opts.batch ?? (await shippedBatch(scenario));
  const machine = machineMeta();
  const loadBefore = loadAverage();
  const redis = await acquireRedis();
  const workDir = await mkdtemp(join(tmpdir(), 'synapse-bench-'));
  const releaseOnSignal = stopOnSignal(async () => {
    await redis.close();
    await rm(workDir, { recursive: true, force: true });
  });
  const prefix = `synapse-bench:${process.pid}-${Date.now()}:`;
  try {
    const template = `${prefix}template`;
    const { workload, loadSeconds } = await loadTemplate(redis, template, opts, scenario);
    const ctx: RunContext = { redis, prefix, template, workload, batch, total: opts.events, workDir, scenario };
    const rounds: RoundResult[] = [];
    for (let r = 0; r < opts.rounds; r++) {
      if (opts.rounds > 1) console.log(`round ${r + 1} of ${opts.rounds}`);
      rounds.push(await runRound(ctx, r, opts.only));
    }
    const meta = {
      ...machine, events: opts.events, batch, rounds: opts.rounds, seed: opts.seed,
      redis: { version: redis.version, owned: redis.owned }, workload, loadSeconds,
      loadAverage: { before: loadBefore, after: loadAverage() },
    };
    return summarize(meta, rounds);
  } finally {
    releaseOnSignal();
    await deleteKeys(redis.control, prefix).catch(() => undefined);
    await redis.close();
    await rm(workDir, { recursive: true, force: true });
  }
}

async function main(): Promise<number> {
  const opts = parseOptions(process.argv.slice(2));
  if (opts === 'help') {
    console.log(USAGE);
    return 0;
  }
  let clean = true;
  for (const [k, name] of opts.pipelines.entries()) {
    const scenario = SCENARIOS.find((s) => s.name === name)!;
    console.log(`\n== ${scenario.name} (${scenario.pipelineFile}) ==`);
    if (opts.replicas !== undefined) {
      const batch = opts.batch ?? (await shippedBatch(scenario));
      const report = await runScaleOut({ ...opts, replicas: opts.replicas, batch }, scenario, SCHEMA_FILE, stopOnSignal);
      console.log(`\n${scenario.name}:\n${formatScaleOut(report)}`);
      if (opts.out) {
        const out = k === 0 ? opts.out : opts.out.replace(/(\.json)?$/, `-${scenario.name}.json`);
        await writeScaleOut(resolve(ROOT, out), report);
        console.log(`\nresults written to ${out}`);
      }
      clean &&= scaleOutIsClean(report);
      continue;
    }
    const report = await run(opts, scenario);
    console.log(`\n${scenario.name}:\n${formatReport(report)}`);
    if (opts.out) {
      // The first scenario keeps the plain file name; the others get theirs as a suffix.
      const out = k === 0 ? opts.out : opts.out.replace(/(\.json)?$/, `-${scenario.name}.json`);
      await writeReport(resolve(ROOT, out), report);
      console.log(`\nresults written to ${out}`);
    }
    clean &&= reportIsClean(report);
  }
  return clean ? 0 : 1;
}

main().then(
  (code) => process.exit(code),
  (err) => {
    if (interrupted) return; // the signal handler cleans up and exits
    console.error(err instanceof UsageError ? err.message : err instanceof Error ? err.stack ?? err.message : err);
    process.exit(err instanceof UsageError ? 2 : 1);
  },
);
