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

const { pluginSpecs, maxBytes } = workerData as { pluginSpecs: string[]; maxBytes: number };
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
  if (job.kind === 'validate') return { kind: 'valid', name: pipeline.name, stream: pipeline.source.kind === 'stream' ? pipeline.source.stream : null, warnings: pipeline.warnings };
  const result = job.entries
    ? await dryRun(pipeline, job.entries.map(withBuffers), { raw: true })
    : await dryRun(pipeline, job.events ?? []);
  const summary: Record<string, number> = { sunk: 0, filtered: 0, dlq: 0, dropped: 0 };
  for (const o of result.outcomes) if (o.kind in summary) summary[o.kind]!++;
  // The reply is made here, where the heap bound holds, and must fit the byte bound.
  // (Its own ArrayBuffer, never Buffer's shared pool: it is transferred.)
  const body = new TextEncoder().encode(JSON.stringify({ results: result.outcomes.map((o) => describeOutcome(o)), summary }));
  if (body.length > maxBytes) throw new ReplyTooLarge(`the dry-run's reply would be ${body.length} bytes, over the bound of ${maxBytes} (SYNAPSE_SANDBOX_MAX_BYTES); dry-run fewer events`);
  return { kind: 'dry-run', name: pipeline.name, body };
}

class ReplyTooLarge extends Error {}

/** An entry as it crossed from the engine's thread: its bytes arrive as Uint8Arrays; Buffers again. */
function withBuffers(entry: StreamEntry): StreamEntry {
  if (!entry.binary) return entry;
  const binary = new Map<number, Buffer>();
  for (const [i, bytes] of entry.binary) binary.set(i, Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength));
  return { ...entry, binary };
}

parentPort!.on('message', (job: SandboxJob) => {
  run(job).then(
    (reply) => {
      // The reply's bytes move to the engine's thread instead of being copied.
      const transfer = reply.kind === 'dry-run' ? [reply.body.buffer as ArrayBuffer] : [];
      parentPort!.postMessage({ id: job.id, reply }, transfer);
    },
    (err: unknown) => parentPort!.postMessage({
      id: job.id, error: errorMessage(err), stack: (err as Error)?.stack,
      ...(err instanceof ReplyTooLarge ? { limit: 'size' } : {}),
    }),
  );
});
parentPort!.postMessage({ ready: true });
