import { resolve } from 'node:path';
import { loadPipelines, type CompiledPipeline, type LoadContext } from '../config/load-pipeline.ts';
import { displayPath } from '../errors.ts';
import { fuzzPipeline, type FuzzResult } from './fuzz.ts';

/** A pipeline `--fuzz` left out, and why. */
export interface FuzzSkip {
  pipeline: string;
  file: string;
  reason: string;
}

/**
 * Fuzzes the pipelines of the given directories (all of them, or the one named `only`, or the
 * one in `file`), each pipeline once; pipelines without `validate.schema` are skipped, with why.
 */
export async function fuzzPipelines(
  targets: { dir: string; only?: string; file?: string }[],
  ctx: LoadContext,
  opts: { runs: number; seed: number },
): Promise<(FuzzResult | FuzzSkip)[]> {
  const seen = new Set<string>();
  const out: (FuzzResult | FuzzSkip)[] = [];
  const loadedDirs = new Map<string, CompiledPipeline[]>();
  for (const t of targets) {
    let pipelines = loadedDirs.get(t.dir);
    if (!pipelines) {
      // A rejected file is reported by `synapse validate` and by its test file's run.
      pipelines = (await loadPipelines([t.dir], ctx)).pipelines;
      loadedDirs.set(t.dir, pipelines);
    }
    const chosen = pipelines.filter((p) => (t.only === undefined || p.name === t.only) && (t.file === undefined || p.file === resolve(t.file)));
    for (const p of chosen) {
      if (seen.has(p.file)) continue;
      seen.add(p.file);
      if (!p.validate) {
        out.push({ pipeline: p.name, file: p.file, reason: p.source.kind === 'schedule' ? 'a schedule source: its events are ticks' : 'no validate.schema to generate events from' });
        continue;
      }
      const started = performance.now();
      out.push({ ...(await fuzzPipeline(p, ctx.schemas, opts)), seconds: (performance.now() - started) / 1000 });
    }
  }
  return out;
}

/** Prints fuzz results as `synapse test --fuzz` shows them; each pipeline fuzzed passes or fails. */
export function formatFuzzResults(results: (FuzzResult | FuzzSkip)[], opts: { runs: number; seed: number }): { text: string; passed: number; failed: number } {
  const lines = [`fuzz: ${opts.runs} valid event(s) per pipeline from its input schema, seed ${opts.seed} (replay: --fuzz ${opts.runs} --seed ${opts.seed})`];
  let passed = 0;
  let failed = 0;
  for (const r of results) {
    lines.push(`${displayPath(r.file)} (pipeline ${r.pipeline})`);
    if ('reason' in r) {
      lines.push(`  - not fuzzed: ${r.reason}`);
      continue;
    }
    if (r.valid === 0) {
      failed++;
      lines.push(`  ✗ fuzz: none of ${r.generated} events generated from ${r.schemaId} passed the pipeline's own validation; the schema may be unsatisfiable`);
      continue;
    }
    const short = r.valid < opts.runs ? ` (only ${r.valid} of ${r.generated} generated were valid)` : '';
    if (!r.failures.length) {
      passed++;
      lines.push(`  ✓ fuzz: ${r.valid} valid event(s), none dead-lettered${short}`);
      continue;
    }
    failed++;
    const dead = r.failures.reduce((n, f) => n + f.count, 0);
    lines.push(`  ✗ fuzz: ${dead} of ${r.valid} valid event(s) dead-lettered by the pipeline${short}`);
    for (const f of r.failures) {
      lines.push(`      ${f.count}× at ${f.stage}${f.sink ? ` (sink ${f.sink})` : ''}: ${f.error}`);
      lines.push(`        smallest: ${JSON.stringify(f.example)}`);
    }
  }
  return { text: lines.join('\n'), passed, failed };
}
