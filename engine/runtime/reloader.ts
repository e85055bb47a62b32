import { access } from 'node:fs/promises';
import { resolve } from 'node:path';
import { loadPipeline, sharedGroupMessage, type CompiledPipeline } from '../config/load-pipeline.ts';
import { SchemaRegistry } from '../config/schema-registry.ts';
import { ConfigInvalidError, formatDiagnostic } from '../errors.ts';
import type { Engine, ReloadResult } from './engine.ts';

/**
 * Hot reload (SPEC §5): turns changed files into new running versions of the engine's pipelines,
 * one reload at a time. A file is compiled completely before anything running is touched; an
 * invalid one leaves the running version as it is and says why (FILE:LINE:COL).
 */
export class Reloader {
  /** Reloads run one at a time, in order. */
  private chain: Promise<unknown> = Promise.resolve();

  constructor(private readonly engine: Engine) {}

  /** Resolves when no reload is running or queued. */
  async idle(): Promise<void> {
    await this.chain;
  }

  /**
   * Reloads one pipeline file (SPEC §5): compiled completely first; invalid keeps the running
   * version and records `lastReloadError`; valid replaces the running version at a batch
   * boundary; a missing file stops its pipeline (its consumer group is kept). Reloads are
   * serialised.
   */
  reloadFile(file: string, opts: { force?: boolean } = {}): Promise<ReloadResult> {
    const run = this.chain.then(() => this.doReloadFile(resolve(file), opts.force ?? false));
    this.chain = run.catch(() => undefined);
    return run;
  }

  private async doReloadFile(file: string, force: boolean): Promise<ReloadResult> {
    if (this.engine.stopping) return { ok: false, diagnostics: [] };
    const existing = this.engine.handleForFile(file);
    const present = await access(file).then(() => true, () => false);
    if (!present) {
      this.engine.rejected.delete(file);
      if (!existing) return { ok: true, change: 'unchanged', name: '' };
      await this.engine.removePipeline(existing.pipeline.name, { deleted: true });
      this.engine.metrics.reloads.inc({ result: 'ok' });
      this.engine.logger.info({ pipeline: existing.pipeline.name, file }, 'pipeline file deleted: pipeline stopped (its consumer group is kept)');
      // A file rejected while this one held its name (a rename, a copy) may load now.
      for (const other of [...this.engine.rejected.keys()]) await this.doReloadFile(other, false);
      return { ok: true, change: 'removed', name: existing.pipeline.name };
    }
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
      for (const d of err.diagnostics) this.engine.logger.error({ file, pipeline: existing?.pipeline.name }, `reload rejected, the running version stays: ${formatDiagnostic(d)}`);
      return { ok: false, name: existing?.pipeline.name, diagnostics: err.diagnostics };
    }
    this.engine.rejected.delete(file);
    if (existing && existing.pipeline.hash === compiled.hash && !force) {
      existing.lastReloadError = undefined;
      return { ok: true, change: 'unchanged', name: compiled.name, generation: existing.generation, hash: compiled.hash };
    }
    const handle = await this.engine.replacePipeline(existing, compiled);
    this.engine.metrics.reloads.inc({ result: 'ok' });
    this.engine.logger.info({ pipeline: compiled.name, generation: handle.generation, hash: compiled.hash.slice(0, 12) }, existing ? 'pipeline reloaded' : 'pipeline added');
    return { ok: true, change: existing ? 'updated' : 'added', name: compiled.name, generation: handle.generation, hash: compiled.hash };
  }

  /**
   * Reloads the schema directory; on success every pipeline that validates is recompiled
   * against the new schemas and swapped in. An invalid schema keeps the old set.
   */
  reloadSchemas(): Promise<ReloadResult[]> {
    const run = this.chain.then(async (): Promise<ReloadResult[]> => {
      let schemas: SchemaRegistry;
      try {
        schemas = await SchemaRegistry.load(this.engine.options.schemasDir);
      } catch (err) {
        if (!(err instanceof ConfigInvalidError)) throw err;
        this.engine.metrics.reloads.inc({ result: 'error' });
        const text = err.diagnostics.map(formatDiagnostic).join('\n');
        for (const h of this.engine.handles.values()) if (h.pipeline.validate) h.lastReloadError = text;
        for (const d of err.diagnostics) this.engine.logger.error(`schema reload rejected, the running schemas stay: ${formatDiagnostic(d)}`);
        return [{ ok: false, diagnostics: err.diagnostics }];
      }
      this.engine.useSchemas(schemas);
      const results: ReloadResult[] = [];
      const files = [...this.engine.handles.values()].filter((h) => h.pipeline.validate).map((h) => h.pipeline.file);
      // Files rejected earlier may have failed for want of a schema that now exists.
      files.push(...this.engine.rejected.keys());
      for (const file of files) results.push(await this.doReloadFile(file, true));
      return results;
    });
    this.chain = run.catch(() => undefined);
    return run;
  }
}
