import { createHash } from 'node:crypto';
import { readdir, realpath } from 'node:fs/promises';
import { basename, dirname, isAbsolute, join, relative, resolve } from 'node:path';
import { Ajv2020 } from 'ajv/dist/2020.js';
import type { ValidateFunction } from 'ajv';
import { ConfigInvalidError, PipelineInvalidError, type Diagnostic } from '../errors.ts';
import { compileExpression, ExpressionSyntaxError, DEFAULT_EXPRESSION_TIMEOUT_MS, type CompiledExpression } from '../expr/compile-expression.ts';
import type { SinkDefinition } from '../plugins/define-sink.ts';
import type { SinkRegistry } from '../plugins/sink-registry.ts';
import { checkPipelineSchema, type ExpressionSite } from '../check/check-pipeline.ts';
import { ajvDiagnostics, splitPointer } from './ajv-diagnostics.ts';
import { parseDuration } from './duration.ts';
import { interpolate, type InterpolationProblem } from './interpolate.ts';
import { nearest } from './did-you-mean.ts';
import { pipelineFileSchema } from './pipeline-file-schema.ts';
import { SchemaRegistry } from './schema-registry.ts';
import { SourceDocument, readConfigText, type DocPath } from './source-document.ts';

/** Where a stream pipeline reads from (SPEC §3 `source`). */
export interface StreamSourceSpec {
  kind: 'stream';
  stream: string;
  group: string;
  start: string;
  codec: 'json' | 'fields';
  /** `wrap`: an event without a `data` object is wrapped into the envelope (config/event-shape.ts). */
  envelope: 'keep' | 'wrap';
  batch: number;
  blockMs: number;
  claimIdleMs: number;
  maxDeliveries: number;
}

/** A pipeline that fires on an interval instead of reading a stream. */
export interface ScheduleSourceSpec {
  kind: 'schedule';
  everyMs: number;
  /** The schedule text as written (`60s`). */
  every: string;
  codec: 'json';
  envelope: 'keep';
}

export type SourceSpec = StreamSourceSpec | ScheduleSourceSpec;

/** How failed sink writes are retried. */
export interface RetryPolicy {
  attempts: number;
  backoff: 'exponential' | 'fixed';
  delayMs: number;
  maxDelayMs: number;
}

/** One sink of a pipeline, its plugin resolved and its config validated (defaults filled in). */
export interface SinkSpec {
  id: string;
  type: string;
  when?: CompiledExpression;
  config: Record<string, unknown>;
  definition: SinkDefinition<any>;
}

/** A pipeline file, fully checked and compiled: nothing left to fail at load time. */
export interface CompiledPipeline {
  name: string;
  file: string;
  /** sha256 of the file's text: the version the admin API shows and PUT compares. */
  hash: string;
  /** The file's text this version was compiled from (what an admin dry-run of it compiles again). */
  text: string;
  description?: string;
  enabled: boolean;
  source: SourceSpec;
  validate?: { schemaId: string; schemaFile?: string; validator: ValidateFunction; onInvalid: 'dlq' | 'drop' };
  filter?: CompiledExpression;
  transform?: CompiledExpression;
  sinks: SinkSpec[];
  retry: RetryPolicy;
  dlq: string;
  expressionTimeoutMs: number;
  maxEventBytes: number;
  /**
   * Hints that do not stop the pipeline from loading (a string function on a number field):
   * `synapse validate` prints them, `synapse validate --strict` counts them as errors.
   */
  warnings: Diagnostic[];
}

/** What loading needs: the schemas pipelines refer to and the sink plugins they name. */
export interface LoadContext {
  schemas: SchemaRegistry;
  sinks: SinkRegistry;
  env?: NodeJS.ProcessEnv;
  /**
   * Only these variables may be named by `${VAR}` (even with a default); any other is an error.
   * Set for YAML received over HTTP, which must not read the engine's environment.
   */
  envAllow?: ReadonlySet<string>;
  /**
   * Directories a schema named by file path (`validate.schema: ./x.json`) may be read from.
   * Default: the pipeline file's own directory and the schema directory.
   */
  schemaFileRoots?: readonly string[];
  /** Relative schema paths resolve against this directory instead of the pipeline file's. */
  baseDir?: string;
}

export const PIPELINE_DEFAULTS = {
  start: '$',
  codec: 'json' as const,
  envelope: 'keep' as const,
  batch: 100,
  blockMs: 1000,
  claimIdleMs: 30_000,
  maxDeliveries: 10,
  retry: { attempts: 3, backoff: 'exponential' as const, delayMs: 200, maxDelayMs: 30_000 },
  maxEventBytes: 1024 * 1024,
};

// coerceTypes: `batch: ${BATCH:-100}` is a string after interpolation, and means the number.
// validateSchema off: the schema is this module's own constant (tests check it); compiling the
// 2020-12 meta-schema to check it would cost every command start tens of milliseconds.
// verbose: an unknown key's error carries the schema, whose known keys give a "did you mean".
const fileAjv = new Ajv2020({ allErrors: true, strict: false, coerceTypes: true, validateSchema: false, verbose: true });
const validateFile: ValidateFunction = fileAjv.compile(pipelineFileSchema);

/** Whether a file name is a pipeline (not its test file). */
export function isPipelineFile(name: string): boolean {
  return /\.ya?ml$/.test(name) && !/\.test\.ya?ml$/.test(name);
}

/** Reads and compiles one pipeline file. Throws PipelineInvalidError listing every problem. */
export async function loadPipeline(file: string, ctx: LoadContext): Promise<CompiledPipeline> {
  let text: string;
  try {
    text = await readConfigText(file);
  } catch (err) {
    if (err instanceof ConfigInvalidError) throw new PipelineInvalidError(err.diagnostics);
    throw err;
  }
  return compilePipelineText(file, text, ctx);
}

/** Compiles pipeline YAML given as text (a PUT body, an editor buffer) as if read from `file`. */
export async function compilePipelineText(file: string, text: string, ctx: LoadContext): Promise<CompiledPipeline> {
  let doc: SourceDocument;
  try {
    doc = SourceDocument.parse(file, text);
  } catch (err) {
    if (err instanceof ConfigInvalidError) throw new PipelineInvalidError(err.diagnostics);
    throw err;
  }
  return new PipelineCompiler(doc, ctx).compile();
}

class PipelineCompiler {
  private readonly problems: Diagnostic[] = [];
  private readonly warnings: Diagnostic[] = [];
  /** Every expression of the file, for the schema-aware checks (engine/check). */
  private readonly sites: ExpressionSite[] = [];
  /** The registry `validate.schema` was found in (a copy when it was named by file path). */
  private validateSchemas?: SchemaRegistry;

  constructor(private readonly doc: SourceDocument, private readonly ctx: LoadContext) {}

  private fail(path: DocPath, message: string, opts?: { key?: boolean }): void {
    this.problems.push({ ...this.doc.locate(path, opts), message });
  }

  async compile(): Promise<CompiledPipeline> {
    const { doc } = this;
    if (!doc.value || typeof doc.value !== 'object' || Array.isArray(doc.value)) {
      throw new PipelineInvalidError([{ ...doc.locate([]), message: 'a pipeline file must be a YAML mapping (name:, source:, sink:, ...)' }]);
    }
    const envProblems: InterpolationProblem[] = [];
    const raw = interpolate(doc.value, this.ctx.env ?? process.env, envProblems, [], this.ctx.envAllow) as Record<string, any>;
    // One diagnostic per variable, at its first use; a value still holding `${VAR}` then fails
    // other checks (a type, a URL pattern) only because of it, so those are left out below.
    const envSpots = new Set<string>();
    const byVariable = new Map<string, { first: InterpolationProblem; more: string[] }>();
    for (const p of envProblems) {
      const loc = doc.locate(p.path);
      envSpots.add(`${loc.line}:${loc.col}`);
      const seen = byVariable.get(p.variable);
      if (seen) seen.more.push(`${loc.line}:${loc.col}`);
      else byVariable.set(p.variable, { first: p, more: [] });
    }
    for (const { first, more } of byVariable.values()) this.fail(first.path, more.length ? `${first.message}; also used at ${more.join(', ')}` : first.message);
    const envCount = this.problems.length;

    // Schema errors are reported, and every part of the file they do not touch is still
    // compiled, so one run shows every problem.
    const bad = new Set<string>();
    if (!validateFile(raw)) {
      this.problems.push(...ajvDiagnostics(validateFile.errors ?? [], doc));
      for (const e of validateFile.errors ?? []) {
        const root = splitPointer(e.instancePath)[0];
        if (root !== undefined) bad.add(String(root));
        else if (e.keyword === 'required') bad.add(String((e.params as { missingProperty?: string }).missingProperty));
      }
    }
    const ok = (key: string) => !bad.has(key);

    const name: string = ok('name') && raw.name ? raw.name : basename(doc.file).replace(/\.ya?ml$/, '');
    const timeoutMs: number = ok('expression_timeout_ms') ? (raw.expression_timeout_ms ?? DEFAULT_EXPRESSION_TIMEOUT_MS) : DEFAULT_EXPRESSION_TIMEOUT_MS;
    const source = ok('source') ? this.compileSource(raw.source ?? {}, name) : undefined;
    const validate = ok('validate') ? await this.compileValidate(raw.validate) : undefined;
    const filter = ok('filter') ? this.compileExpr(raw.filter, ['filter'], timeoutMs) : undefined;
    const transform = ok('transform') ? this.compileExpr(raw.transform, ['transform'], timeoutMs) : undefined;
    const sinks = ok('sink') && ok('sinks') ? this.compileSinks(raw, timeoutMs) : [];
    if (source?.kind === 'schedule' && validate) this.fail(['validate'], 'a schedule source produces tick events; validate: does not apply');
    // Expressions are checked against the schema only once everything else holds: a finding
    // about a file that does not even compile would only add noise.
    if (!this.problems.length) this.checkAgainstSchema(validate?.schemaId);

    if (envSpots.size) {
      const derived = (d: Diagnostic, i: number) => i >= envCount && envSpots.has(`${d.line}:${d.col}`);
      const kept = this.problems.filter((d, i) => !derived(d, i));
      this.problems.splice(0, this.problems.length, ...kept);
    }
    if (this.problems.length || !source) throw new PipelineInvalidError(sortDiagnostics(this.problems));

    const retry = raw.retry ?? {};
    const d = PIPELINE_DEFAULTS.retry;
    return {
      name,
      file: resolve(doc.file),
      hash: createHash('sha256').update(doc.text).digest('hex'),
      text: doc.text,
      description: raw.description,
      enabled: raw.enabled ?? true,
      source,
      validate,
      filter,
      transform,
      sinks,
      retry: {
        attempts: retry.attempts ?? d.attempts,
        backoff: retry.backoff ?? d.backoff,
        delayMs: retry.delay_ms ?? d.delayMs,
        maxDelayMs: retry.max_delay_ms ?? d.maxDelayMs,
      },
      dlq: raw.dlq ?? `${source.kind === 'stream' ? source.stream : `schedule:${name}`}:dlq`,
      expressionTimeoutMs: timeoutMs,
      maxEventBytes: raw.max_event_bytes ?? PIPELINE_DEFAULTS.maxEventBytes,
      warnings: sortDiagnostics(this.warnings),
    };
  }

  private checkAgainstSchema(schemaId: string | undefined): void {
    const schemas = this.validateSchemas;
    const findings = checkPipelineSchema(schemaId && schemas ? { id: schemaId, lookup: (id) => schemas.get(id) } : undefined, this.sites);
    for (const f of findings) {
      const d = { ...this.doc.locateInScalar(f.path, f.offset), message: f.message };
      (f.severity === 'error' ? this.problems : this.warnings).push(d);
    }
  }

  private compileSource(src: Record<string, any>, name: string): SourceSpec | undefined {
    if (src.stream && src.schedule) {
      this.fail(['source', 'schedule'], 'source has both stream: and schedule:; a pipeline reads one', { key: true });
      return undefined;
    }
    if (src.schedule) {
      const streamOnly = ['group', 'start', 'codec', 'envelope', 'batch', 'block_ms', 'claim_idle_ms', 'max_deliveries'].filter((k) => k in src);
      for (const k of streamOnly) this.fail(['source', k], `'source.${k}' applies to stream sources, not to schedule:`, { key: true });
      return { kind: 'schedule', every: src.schedule, everyMs: parseDuration(src.schedule)!, codec: 'json', envelope: 'keep' };
    }
    if (!src.stream) {
      this.fail(['source'], 'source needs stream: (a Redis stream key) or schedule: (an interval such as 60s)');
      return undefined;
    }
    const D = PIPELINE_DEFAULTS;
    return {
      kind: 'stream',
      stream: src.stream,
      group: src.group ?? name,
      start: src.start ?? D.start,
      codec: src.codec ?? D.codec,
      envelope: src.envelope ?? D.envelope,
      batch: src.batch ?? D.batch,
      blockMs: src.block_ms ?? D.blockMs,
      claimIdleMs: src.claim_idle_ms ?? D.claimIdleMs,
      maxDeliveries: src.max_deliveries ?? D.maxDeliveries,
    };
  }

  private async compileValidate(v: { schema: string; on_invalid?: 'dlq' | 'drop' } | undefined): Promise<CompiledPipeline['validate']> {
    if (!v) return undefined;
    let { schemas } = this.ctx;
    let schemaId = v.schema;
    if (!schemas.has(schemaId)) {
      // Not a known $id: try it as a path relative to the pipeline file — but only a file inside
      // the schema or pipeline directory, so that a pipeline (one sent over HTTP, say) can
      // neither read nor probe the rest of the file system.
      const path = resolve(this.ctx.baseDir ?? dirname(resolve(this.doc.file)), v.schema);
      const file = await this.schemaFile(path);
      const known = file && (schemas.getByFile(path) ?? schemas.getByFile(file));
      if (known) schemaId = known.id;
      else if (file) {
        // Compiled in a copy of the registry: the running engine's schemas stay as they are.
        schemas = schemas.fork();
        try {
          const problems = schemas.addDocuments([await SourceDocument.read(file)]);
          if (problems.length) {
            this.problems.push(...problems);
            return undefined;
          }
        } catch (err) {
          if (err instanceof ConfigInvalidError) {
            this.problems.push(...err.diagnostics);
            return undefined;
          }
          throw err;
        }
        const added = schemas.getByFile(file);
        if (!added) return undefined;
        schemaId = added.id;
      } else {
        const ids = this.ctx.schemas.list().map((s) => s.id);
        // A typo in the $id, or in its last segment (`ordr.json` for https://…/order.json).
        const byLast = new Map(ids.map((id) => [id.split('/').pop()!, id]));
        const nearLast = nearest(v.schema.split('/').pop()!, byLast.keys());
        const near = nearest(v.schema, ids) ?? (nearLast === undefined ? undefined : byLast.get(nearLast));
        const hint = near ? ` (did you mean '${near}'?)` : ids.length ? ` (known: ${ids.slice(0, 5).join(', ')}${ids.length > 5 ? ', ...' : ''})` : ' (the schema directory is empty)';
        this.fail(['validate', 'schema'], `unknown schema '${v.schema}': not a $id in the schema directory nor a file in the schema or pipeline directory${hint}`);
        return undefined;
      }
    }
    this.validateSchemas = schemas;
    return {
      schemaId,
      schemaFile: schemas.get(schemaId)?.file,
      validator: schemas.compile(schemaId),
      onInvalid: v.on_invalid ?? 'dlq',
    };
  }

  /**
   * The real path of a schema file named by a pipeline, when it exists inside one of the allowed
   * directories (symbolic links resolved, so a link cannot lead outside); otherwise undefined —
   * the same answer for a missing file, an unreadable one and one outside, so nothing is probed.
   */
  private async schemaFile(path: string): Promise<string | undefined> {
    const roots = this.ctx.schemaFileRoots ?? [dirname(resolve(this.doc.file)), ...(this.ctx.schemas.dir ? [this.ctx.schemas.dir] : [])];
    if (!roots.some((root) => isInside(resolve(root), path))) return undefined;
    let real: string;
    try {
      real = await realpath(path);
    } catch {
      return undefined;
    }
    const realRoots = await Promise.all(roots.map((root) => realpath(root).catch(() => resolve(root))));
    return realRoots.some((root) => isInside(root, real)) ? real : undefined;
  }

  private compileExpr(source: string | undefined, path: DocPath, timeoutMs: number): CompiledExpression | undefined {
    if (source === undefined) return undefined;
    try {
      // filter: and a sink's when: are conditions: their value is JSONata's $boolean of the result.
      const compiled = compileExpression(source, { timeoutMs, condition: path[0] === 'filter' || path.at(-1) === 'when' });
      this.sites.push({ path, source, over: path[0] === 'filter' || path[0] === 'transform' ? 'event' : 'output' });
      return compiled;
    } catch (err) {
      if (!(err instanceof ExpressionSyntaxError)) throw err;
      this.problems.push({ ...this.doc.locateInScalar(path, err.offset), message: `${path.join('.')}: ${err.message}` });
      return undefined;
    }
  }

  private compileSinks(raw: Record<string, any>, timeoutMs: number): SinkSpec[] {
    if (raw.sink && raw.sinks) {
      this.fail(['sinks'], 'use either sink: or sinks:, not both', { key: true });
      return [];
    }
    if (!raw.sink && !raw.sinks) {
      this.fail([], 'the pipeline has no sink: add sink: { type: log } or a sinks: list');
      return [];
    }
    const list: { spec: Record<string, any>; path: DocPath }[] = raw.sink
      ? [{ spec: raw.sink, path: ['sink'] }]
      : (raw.sinks as Record<string, any>[]).map((spec, i) => ({ spec, path: ['sinks', i] }));
    const out: SinkSpec[] = [];
    const ids = new Set<string>();
    const typeCount = new Map<string, number>();
    for (const { spec, path } of list) {
      const registered = this.ctx.sinks.get(spec.type);
      if (!registered) {
        const near = nearest(String(spec.type), this.ctx.sinks.names());
        this.fail([...path, 'type'], `unknown sink type '${spec.type}' (${near ? `did you mean '${near}'? ` : ''}known: ${this.ctx.sinks.names().join(', ')})`);
        continue;
      }
      const n = (typeCount.get(spec.type) ?? 0) + 1;
      typeCount.set(spec.type, n);
      const id: string = spec.id ?? (n === 1 ? spec.type : `${spec.type}#${n}`);
      if (ids.has(id)) {
        this.fail([...path, 'id'], `duplicate sink id '${id}'`);
        continue;
      }
      ids.add(id);
      const config = structuredClone(spec.with ?? {}) as Record<string, unknown>;
      if (!registered.validateConfig(config)) {
        this.problems.push(...ajvDiagnostics(registered.validateConfig.errors ?? [], this.doc, [...path, 'with'], `${spec.type} sink 'with'`));
        continue;
      }
      const problems = registered.definition.check?.(config) ?? [];
      for (const pr of problems) {
        const at = [...path, 'with', ...pr.path];
        const loc = pr.offset === undefined ? this.doc.locate(at) : this.doc.locateInScalar(at, pr.offset);
        this.problems.push({ ...loc, message: `${spec.type} sink 'with.${pr.path.join('.')}': ${pr.message}` });
      }
      if (problems.length) continue;
      for (const key of Object.keys(registered.definition.expressions ?? {})) {
        const value = config[key];
        if (typeof value === 'string') this.sites.push({ path: [...path, 'with', key], source: value, over: 'output' });
      }
      out.push({ id, type: spec.type, config, definition: registered.definition,
        when: this.compileExpr(spec.when, [...path, 'when'], timeoutMs) });
    }
    return out;
  }
}

/** Whether `path` lies strictly inside directory `root` (both absolute). */
function isInside(root: string, path: string): boolean {
  const rel = relative(root, path);
  return rel !== '' && !rel.startsWith('..') && !isAbsolute(rel);
}

function sortDiagnostics(d: Diagnostic[]): Diagnostic[] {
  return [...d].sort((a, b) => a.file.localeCompare(b.file) || a.line - b.line || a.col - b.col);
}

/** The result of loading a directory: every valid pipeline, and every problem of the rest. */
export interface LoadedPipelines {
  pipelines: CompiledPipeline[];
  errors: Diagnostic[];
  /** Files rejected, with their diagnostics. */
  rejected: Map<string, Diagnostic[]>;
}

/**
 * Loads every pipeline file of a directory (or the given files). A file with an error is rejected
 * whole; the others still load. Two files claiming the same name are both an error.
 */
export async function loadPipelines(paths: string[], ctx: LoadContext): Promise<LoadedPipelines> {
  const files = await expandPipelineFiles(paths);
  const pipelines: CompiledPipeline[] = [];
  const rejected = new Map<string, Diagnostic[]>();
  for (const file of files) {
    try {
      pipelines.push(await loadPipeline(file, ctx));
    } catch (err) {
      if (!(err instanceof ConfigInvalidError)) throw err;
      rejected.set(file, err.diagnostics);
    }
  }
  // Two files claiming one name are both rejected: neither can be chosen without guessing.
  const byName = new Map<string, CompiledPipeline[]>();
  for (const p of pipelines) byName.set(p.name, [...(byName.get(p.name) ?? []), p]);
  const unique: CompiledPipeline[] = [];
  for (const [name, group] of byName) {
    if (group.length === 1) {
      unique.push(group[0]!);
      continue;
    }
    for (const p of group) {
      const others = group.filter((o) => o !== p).map((o) => o.file).join(', ');
      rejected.set(p.file, [{ ...(await nameLocation(p.file)), message: `duplicate pipeline name '${name}', also in ${others}` }]);
    }
  }
  // Two pipelines reading one stream through one group would each see only part of it.
  const byGroup = new Map<string, CompiledPipeline[]>();
  for (const p of unique) {
    if (p.source.kind !== 'stream') continue;
    const key = `${p.source.stream}\u0000${p.source.group}`;
    byGroup.set(key, [...(byGroup.get(key) ?? []), p]);
  }
  const clashing = new Set<CompiledPipeline>();
  for (const group of byGroup.values()) {
    if (group.length < 2) continue;
    for (const p of group) {
      clashing.add(p);
      rejected.set(p.file, [{ ...(await keyLocation(p.file, ['source', 'group'])), message: sharedGroupMessage(p, group.filter((o) => o !== p)) }]);
    }
  }
  const loaded = unique.filter((p) => !clashing.has(p));
  return { pipelines: loaded, errors: [...rejected.values()].flat(), rejected };
}

/** Where a key of a file is (falling back to its nearest ancestor, or 1:1). */
async function keyLocation(file: string, path: DocPath): Promise<{ file: string; line: number; col: number }> {
  try {
    return SourceDocument.parse(file, await readConfigText(file)).locate(path, { key: true });
  } catch {
    return { file, line: 1, col: 1 };
  }
}

async function nameLocation(file: string) {
  return keyLocation(file, ['name']);
}

/** Why a pipeline may not share its stream's consumer group with others. */
export function sharedGroupMessage(p: CompiledPipeline, others: CompiledPipeline[]): string {
  const src = p.source as StreamSourceSpec;
  return `pipelines ${[p, ...others].map((o) => `'${o.name}'`).join(' and ')} all read stream '${src.stream}' through group '${src.group}': each would see only part of the stream; give each its own source.group`;
}

/** Pipeline files under the given files and directories (not recursive), sorted. */
export async function expandPipelineFiles(paths: string[]): Promise<string[]> {
  const out: string[] = [];
  for (const p of paths) {
    let names: string[] | undefined;
    try {
      names = await readdir(p);
    } catch (err) {
      const code = (err as NodeJS.ErrnoException).code;
      if (code === 'ENOTDIR') {
        out.push(p);
        continue;
      }
      if (code === 'ENOENT') continue;
      throw err;
    }
    out.push(...names.filter(isPipelineFile).sort().map((n) => join(p, n)));
  }
  return out;
}
