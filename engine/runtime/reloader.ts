import { access } from 'node:fs/promises';
import { performance } from 'node:perf_hooks';
import { resolve } from 'node:path';
import { loadPipeline, sharedGroupMessage, type CompiledPipeline } from '../config/load-pipeline.ts';
import { SchemaRegistry } from '../config/schema-registry.ts';
import { ConfigInvalidError, formatDiagnostic } from '../errors.ts';
import { logWarnings, type Engine, type ReloadResult } from './engine.ts';

/** Options of one reload. */
export interface ReloadOptions {
  /** Reload even when the file's content is unchanged (its schemas changed). */
  force?: boolean;
  /** Why it is reloaded, for the log: `file changed`, `PUT /pipelines/x`, `schema changed: x.json`. */
  cause?: string;
}

/**
 * Hot reload (SPEC §5): turns changed files into new running versions of the engine's pipelines.
 * A file is compiled completely before anything running is touched; an invalid one leaves the
 * running version as it is and says why (FILE:LINE:COL). Reloads of one file run one at a time,
 * in order; reloads of different files run side by side. A schema change reloads only the
 * pipelines whose validation uses a changed schema, directly or through `$ref`.
 */
export class Reloader {
  /** The last reload of each file, queued or running: the next one of that file waits for it. */
  private readonly files = new Map<string, Promise<unknown>>();
  /** Schema reloads run one at a time, in order. */
  private schemas: Promise<unknown> = Promise.resolve();
  /**
   * The error a rejected schema reload left on the validating pipelines. The next good schema
   * load clears it from those that still show it, the pipelines it does not reload included.
   */
  private schemaError?: string;

  constructor(private readonly engine: Engine) {}

  /** Resolves when no reload is running or queued. */
  async idle(): Promise<void> {
    for (;;) {
      const schemas = this.schemas;
      await Promise.all([schemas, ...this.files.values()]);
      if (this.files.size === 0 && this.schemas === schemas) return;
    }
  }

  /**
   * Reloads one pipeline file (SPEC §5): compiled completely first; invalid keeps the running
   * version and records `lastReloadError`; valid replaces the running version at a batch
   * boundary; a missing file stops its pipeline (its consumer group is kept). Reloads of the
   * same file are serialised; the reload and its cause are logged.
   */
  reloadFile(file: string, opts: ReloadOptions = {}): Promise<ReloadResult> {
    const abs = resolve(file);
    const previous = this.files.get(abs) ?? Promise.resolve();
    const run = previous.then(() => this.doReloadFile(abs, opts.force ?? false, opts.cause ?? 'requested'));
    const settled = run.catch(() => undefined);
    this.files.set(abs, settled);
    void settled.then(() => {
      if (this.files.get(abs) === settled) this.files.delete(abs);
    });
    return run;
  }

  private async doReloadFile(file: string, force: boolean, cause: string): Promise<ReloadResult> {
    if (this.engine.stopping) return { ok: false, diagnostics: [] };
    const { logger } = this.engine;
    const existing = this.engine.handleForFile(file);
    const present = await access(file).then(() => true, () => false);
    if (!present) {
      this.engine.rejected.delete(file);
      if (!existing) return { ok: true, change: 'unchanged', name: '' };
      await this.engine.removePipeline(existing.pipeline.name, { deleted: true });
      this.engine.metrics.reloads.inc({ result: 'ok' });
      logger.info({ pipeline: existing.pipeline.name, file, cause }, 'pipeline file deleted: pipeline stopped (its consumer group is kept)');
      // A file rejected while this one held its name (a rename, a copy) may load now.
      await Promise.all([...this.engine.rejected.keys()].map((other) => this.reloadFile(other, { cause: `${existing.pipeline.name} was removed` })));
      return { ok: true, change: 'removed', name: existing.pipeline.name };
    }
    const started = performance.now();
    let compiled: CompiledPipeline;
    try {
      compiled = await loadPipeline(file, this.engine.loadContext);
      const clash = this.engine.handles.get(compiled.name);
      if (clash && clash.pipeline.file !== file) {
        throw new ConfigInvalidError([{ file, line: 1, col: 1, message: `duplicate pipeline name '${compiled.name}', also in ${clash.pipeline.file}` }]);
      }
      const src = compiled.source;
      const sharing = src.kind === 'stream'
        ? [...this.engine.handles.values()].filter((h) => h.pipeline.file !== file && h.pipeline.source.kind === 'stream'
          && h.pipeline.source.stream === src.stream && h.pipeline.source.group === src.group)
        : [];
      if (sharing.length) {
        throw new ConfigInvalidError([{ file, line: 1, col: 1, message: sharedGroupMessage(compiled, sharing.map((h) => h.pipeline)) }]);
      }
    } catch (err) {
      if (!(err instanceof ConfigInvalidError)) throw err;
      const text = err.diagnostics.map(formatDiagnostic).join('\n');
      if (existing) existing.lastReloadError = text;
      else this.engine.rejected.set(file, err.diagnostics);
      this.engine.metrics.reloads.inc({ result: 'error' });
      for (const d of err.diagnostics) logger.error({ file, pipeline: existing?.pipeline.name, cause }, `reload rejected, the running version stays: ${formatDiagnostic(d)}`);
      return { ok: false, name: existing?.pipeline.name, diagnostics: err.diagnostics };
    }
    this.engine.rejected.delete(file);
    if (existing && existing.pipeline.hash === compiled.hash && !force) {
      existing.lastReloadError = undefined;
      logger.debug({ pipeline: compiled.name, cause }, 'pipeline file unchanged: nothing reloaded');
      return { ok: true, change: 'unchanged', name: compiled.name, generation: existing.generation, hash: compiled.hash };
    }
    logWarnings(logger, compiled);
    const handle = await this.engine.replacePipeline(existing, compiled);
    this.engine.metrics.reloads.inc({ result: 'ok' });
    const ms = Math.round((performance.now() - started) * 10) / 10;
    logger.info({ pipeline: compiled.name, generation: handle.generation, hash: compiled.hash.slice(0, 12), cause, ms }, existing ? 'pipeline reloaded' : 'pipeline added');
    return { ok: true, change: existing ? 'updated' : 'added', name: compiled.name, generation: handle.generation, hash: compiled.hash };
  }

  /**
   * Reloads the schema directory. An invalid schema keeps the old set. Otherwise the new set
   * replaces it, and the pipelines whose validation it changes — the schema they name, or one
   * reached from it through `$ref` — are recompiled and swapped in, side by side; the others keep
   * running untouched. Files rejected earlier are tried again (a schema they lacked may exist now).
   */
  reloadSchemas(opts: { cause?: string } = {}): Promise<ReloadResult[]> {
    const cause = opts.cause ?? 'schemas changed';
    const run = this.schemas.then(async (): Promise<ReloadResult[]> => {
      const { logger } = this.engine;
      const started = performance.now();
      let schemas: SchemaRegistry;
      try {
        schemas = await SchemaRegistry.load(this.engine.options.schemasDir);
      } catch (err) {
        if (!(err instanceof ConfigInvalidError)) throw err;
        this.engine.metrics.reloads.inc({ result: 'error' });
        const text = err.diagnostics.map(formatDiagnostic).join('\n');
        for (const h of this.engine.handles.values()) if (h.pipeline.validate) h.lastReloadError = text;
        this.schemaError = text;
        for (const d of err.diagnostics) logger.error({ cause }, `schema reload rejected, the running schemas stay: ${formatDiagnostic(d)}`);
        return [{ ok: false, diagnostics: err.diagnostics }];
      }
      const before = this.engine.loadContext.schemas;
      this.engine.useSchemas(schemas);
      if (this.schemaError !== undefined) {
        for (const h of this.engine.handles.values()) if (h.lastReloadError === this.schemaError) h.lastReloadError = undefined;
        this.schemaError = undefined;
      }
      const affected = [...this.engine.handles.values()].filter((h) => {
        const id = h.pipeline.validate?.schemaId;
        if (id === undefined) return false;
        const now = schemas.fingerprint(id);
        // A schema named by a file path outside the registry: its file may have changed too.
        return now === undefined || now !== before.fingerprint(id);
      });
      const files = [...affected.map((h) => h.pipeline.file), ...this.engine.rejected.keys()];
      logger.info({ cause, reloading: affected.map((h) => h.pipeline.name), retrying: this.engine.rejected.size, untouched: this.engine.handles.size - affected.length },
        affected.length ? `schemas reloaded: ${affected.length} pipeline(s) use a changed schema` : 'schemas reloaded: no pipeline uses a changed schema');
      const results = await Promise.all(files.map((file) => this.reloadFile(file, { force: true, cause })));
      logger.debug({ ms: Math.round(performance.now() - started) }, 'schema reload done');
      return results;
    });
    this.schemas = run.catch(() => undefined);
    return run;
  }
}
