import { parentPort, workerData } from 'node:worker_threads';
import { compilePipelineText, type LoadContext } from '../config/load-pipeline.ts';
import { SchemaRegistry, type SchemaEntry } from '../config/schema-registry.ts';
import { ConfigInvalidError, errorMessage } from '../errors.ts';
import { SinkRegistry } from '../plugins/sink-registry.ts';
import type { StreamEntry } from '../runner/codec.ts';
import { describeOutcome, dryRun } from '../testing/dry-run.ts';
import type { SandboxJob, SandboxReply } from './sandbox.ts';

// The worker thread of AdminSandbox: compiles pipeline YAML and dry-runs it with the same code the
// engine runs, inside the memory and time bounds the main thread set for this thread. It sees the
// engine's schemas as they were sent with each job, and loads the same sink plugins.

const { pluginSpecs } = workerData as { pluginSpecs: string[] };
const sinks = SinkRegistry.withBuiltins();
await sinks.loadPlugins(pluginSpecs);

/** The last schema registry built, by the key the engine gave it: schemas change rarely. */
let schemas: { key: number; registry: SchemaRegistry } | undefined;

function registryFor(job: SandboxJob): SchemaRegistry {
  if (schemas?.key !== job.schemas.key) {
    if (!job.schemas.entries) throw new Error(`schemas ${job.schemas.key} were not sent`);
    schemas = { key: job.schemas.key, registry: SchemaRegistry.fromEntries(job.schemas.entries as SchemaEntry[], job.schemas.dir) };
  }
  return schemas.registry;
}

async function run(job: SandboxJob): Promise<SandboxReply> {
  const { submitted } = job;
  const ctx: LoadContext = {
    schemas: registryFor(job),
    sinks,
    ...(submitted ? { envAllow: new Set(submitted.envAllow), schemaFileRoots: submitted.schemaFileRoots, baseDir: submitted.baseDir } : {}),
  };
  let pipeline;
  try {
    pipeline = await compilePipelineText(job.file, job.text, ctx);
  } catch (err) {
    if (err instanceof ConfigInvalidError) return { kind: 'invalid', diagnostics: err.diagnostics };
    throw err;
  }
  if (job.kind === 'validate') return { kind: 'valid', name: pipeline.name, stream: pipeline.source.kind === 'stream' ? pipeline.source.stream : null };
  const result = job.entries
    ? await dryRun(pipeline, job.entries as StreamEntry[], { raw: true })
    : await dryRun(pipeline, job.events ?? []);
  const summary: Record<string, number> = { sunk: 0, filtered: 0, dlq: 0, dropped: 0 };
  for (const o of result.outcomes) if (o.kind in summary) summary[o.kind]!++;
  return { kind: 'dry-run', name: pipeline.name, results: result.outcomes.map((o) => describeOutcome(o)), summary };
}

parentPort!.on('message', (job: SandboxJob) => {
  run(job).then(
    (reply) => parentPort!.postMessage({ id: job.id, reply }),
    (err: unknown) => parentPort!.postMessage({ id: job.id, error: errorMessage(err) }),
  );
});
parentPort!.postMessage({ ready: true });
