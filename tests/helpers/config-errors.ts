import { join } from 'node:path';
import { PipelineInvalidError, type Diagnostic } from '../../engine/errors.ts';
import { compilePipelineText, type CompiledPipeline, type LoadContext } from '../../engine/config/load-pipeline.ts';
import { SchemaRegistry } from '../../engine/config/schema-registry.ts';
import { SinkRegistry } from '../../engine/plugins/sink-registry.ts';
import { FIXTURE_SCHEMAS } from './pipelines.ts';

/** The file name pipeline texts are compiled as (it need not exist). */
export const PIPELINE_FILE = join(FIXTURE_SCHEMAS, '..', 'pipelines', 'under-test.yaml');

let loadContext: Promise<LoadContext> | undefined;

/** The load context of the integration suites: their fixture schemas and the built-in sinks. */
export function fixtureLoadContext(): Promise<LoadContext> {
  loadContext ??= SchemaRegistry.load(FIXTURE_SCHEMAS).then((schemas) => ({ schemas, sinks: SinkRegistry.withBuiltins(), env: {} }));
  return loadContext;
}

/**
 * Compiles a pipeline text (`env` is what `${VAR}` reads); resolves with its diagnostics when
 * rejected, fails when it compiles.
 */
export async function diagnosticsOf(text: string, env: NodeJS.ProcessEnv = {}): Promise<Diagnostic[]> {
  const ctx = { ...(await fixtureLoadContext()), env };
  let compiled: CompiledPipeline;
  try {
    compiled = await compilePipelineText(PIPELINE_FILE, text, ctx);
  } catch (err) {
    if (err instanceof PipelineInvalidError) return err.diagnostics;
    throw err;
  }
  throw new Error(`expected the pipeline to be rejected; it compiled (sinks: ${compiled.sinks.map((s) => s.type).join(', ')})`);
}

/** Compiles a pipeline text that must be valid; `env` is what `${VAR}` reads. */
export async function compileText(text: string, env: NodeJS.ProcessEnv = {}): Promise<CompiledPipeline> {
  return compilePipelineText(PIPELINE_FILE, text, { ...(await fixtureLoadContext()), env });
}

/**
 * The 1-based line and column of the `occurrence`-th (1-based) appearance of `needle` in `text`,
 * plus `offset` characters: where a diagnostic about that token must point.
 */
export function positionOf(text: string, needle: string, offset = 0, occurrence = 1): { line: number; col: number } {
  let at = -1;
  for (let i = 0; i < occurrence; i++) {
    at = text.indexOf(needle, at + 1);
    if (at < 0) throw new Error(`'${needle}' (occurrence ${occurrence}) is not in the text`);
  }
  at += offset;
  const before = text.slice(0, at);
  const line = before.split('\n').length;
  const col = at - before.lastIndexOf('\n');
  return { line, col };
}
