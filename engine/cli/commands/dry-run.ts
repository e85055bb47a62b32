import { readFile, stat } from 'node:fs/promises';
import { basename, resolve } from 'node:path';
import { loadPipeline, loadPipelines, type CompiledPipeline, type LoadContext } from '../../config/load-pipeline.ts';
import { PipelineInvalidError, SynapseError } from '../../errors.ts';
import { nearest } from '../../config/did-you-mean.ts';
import { describeOutcome, dryRun } from '../../testing/dry-run.ts';
import { loadContext, pipelinesDir, type CommonOptions } from '../context.ts';

/** Finds a pipeline by file path, or by name in the pipelines directory. */
export async function resolvePipeline(ref: string, ctx: LoadContext, dir?: string): Promise<CompiledPipeline> {
  const asPath = resolve(ref);
  const isFile = await stat(asPath).then((s) => s.isFile(), () => false);
  if (isFile) return loadPipeline(asPath, ctx);
  const loaded = await loadPipelines([pipelinesDir(dir)], ctx);
  const found = loaded.pipelines.find((p) => p.name === ref);
  if (found) return found;
  const rejected = [...loaded.rejected.entries()].find(([f]) => basename(f).replace(/\.ya?ml$/, '') === ref);
  if (rejected) throw new PipelineInvalidError(rejected[1]);
  const near = nearest(ref, loaded.pipelines.map((p) => p.name));
  throw new SynapseError(`no pipeline '${ref}': not a file, nor a pipeline name in ${pipelinesDir(dir)} (${near ? `did you mean '${near}'? ` : ''}found: ${loaded.pipelines.map((p) => p.name).join(', ') || 'none'})`);
}

/**
 * Parses JSON Lines: one event per non-blank line. A line that is not JSON is fed as a raw
 * payload, so the decode stage can be tried too.
 */
export function parseJsonLines(text: string): unknown[] {
  return text.split('\n').filter((l) => l.trim() !== '').map((line) => {
    try {
      return JSON.parse(line);
    } catch {
      return line;
    }
  });
}

/** `synapse dry-run PIPELINE --input FILE.jsonl`: one JSON line per event with its outcome. */
export async function dryRunCommand(ref: string, opts: CommonOptions & { input: string; pipelines?: string }): Promise<number> {
  const ctx = await loadContext(opts);
  const pipeline = await resolvePipeline(ref, ctx, opts.pipelines);
  const text = opts.input === '-' ? await readStdin() : await readFile(opts.input, 'utf8');
  const events = parseJsonLines(text);
  const { outcomes } = await dryRun(pipeline, events);
  for (const o of outcomes) {
    const sunk = o.kind === 'sunk' ? Object.fromEntries(o.sinks.map((s) => [s, o.value])) : undefined;
    process.stdout.write(`${JSON.stringify(describeOutcome(o, sunk))}\n`);
  }
  return 0;
}

async function readStdin(): Promise<string> {
  const chunks: Buffer[] = [];
  for await (const chunk of process.stdin) chunks.push(chunk as Buffer);
  return Buffer.concat(chunks).toString('utf8');
}
