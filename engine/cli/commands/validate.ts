import { readdir, stat } from 'node:fs/promises';
import { basename, dirname, extname, join, resolve } from 'node:path';
import { expandPipelineFiles, loadPipelines, isPipelineFile } from '../../config/load-pipeline.ts';
import { SchemaRegistry } from '../../config/schema-registry.ts';
import { SourceDocument } from '../../config/source-document.ts';
import { SinkRegistry, pluginSpecsFromEnv } from '../../plugins/sink-registry.ts';
import { ConfigInvalidError, formatDiagnostic, type Diagnostic } from '../../errors.ts';
import { isTestFile, loadTestFile } from '../../testing/run-test-file.ts';
import { schemasDir, pipelinesDir, type CommonOptions } from '../context.ts';

/** What `synapse validate` found. */
export interface ValidateReport {
  pipelines: number;
  testFiles: number;
  schemas: number;
  diagnostics: Diagnostic[];
  /** Hints that do not reject a file (engine/check's type hints); errors with --strict. */
  warnings: Diagnostic[];
}

/**
 * Lints pipelines, their test files and the schema directory. Paths may be directories or files;
 * none given: ./pipelines. The schema directory is always checked, since pipelines depend on it.
 */
export async function validatePaths(paths: string[], opts: CommonOptions): Promise<ValidateReport> {
  const diagnostics: Diagnostic[] = [];
  const targets = paths.length ? paths.map((p) => resolve(p)) : [pipelinesDir()];
  const schemaDir = schemasDir(opts);
  const pipelineFiles: string[] = [];
  const testFiles: string[] = [];
  const extraSchemas: string[] = [];
  for (const target of targets) {
    let isDir = false;
    try {
      isDir = (await stat(target)).isDirectory();
    } catch {
      diagnostics.push({ file: target, line: 1, col: 1, message: 'no such file or directory' });
      continue;
    }
    const files = isDir ? (await readdir(target)).sort().map((n) => join(target, n)) : [target];
    for (const f of files) {
      if (isTestFile(f)) testFiles.push(f);
      else if (isPipelineFile(f)) pipelineFiles.push(f);
      else if (extname(f) === '.json' && resolve(dirname(f)) !== schemaDir) extraSchemas.push(f);
    }
  }

  let schemas: SchemaRegistry;
  try {
    schemas = await SchemaRegistry.load(schemaDir);
  } catch (err) {
    if (!(err instanceof ConfigInvalidError)) throw err;
    diagnostics.push(...err.diagnostics);
    schemas = new SchemaRegistry();
  }
  // Schema files named outside the schema directory are checked too, alongside it (they may
  // refer to its schemas by $id).
  for (const file of extraSchemas) {
    try {
      diagnostics.push(...schemas.addDocuments([await SourceDocument.read(file)]));
    } catch (err) {
      if (!(err instanceof ConfigInvalidError)) throw err;
      diagnostics.push(...err.diagnostics);
    }
  }
  const sinks = SinkRegistry.withBuiltins();
  await sinks.loadPlugins(pluginSpecsFromEnv());
  const ctx = { schemas, sinks };
  const loaded = await loadPipelines(pipelineFiles, ctx);
  diagnostics.push(...loaded.errors);

  // A test file must parse and name a pipeline that exists beside it (or among the given files).
  const known = new Set(loaded.pipelines.map((p) => p.name));
  const givenFiles = new Set(pipelineFiles.map((f) => resolve(f)));
  const dirsChecked = new Map<string, Set<string>>();
  for (const file of testFiles) {
    try {
      const { doc, spec } = await loadTestFile(file);
      const dir = dirname(file);
      let names = dirsChecked.get(dir);
      if (!names) {
        // The directory's pipelines are those just loaded when they are exactly the files given
        // (`synapse validate` of one directory): reuse them rather than compile them twice.
        const dirFiles = (await expandPipelineFiles([dir])).map((f) => resolve(f));
        const sameFiles = dirFiles.length === pipelineFiles.length && dirFiles.every((f) => givenFiles.has(f));
        names = new Set((sameFiles ? loaded : await loadPipelines([dir], ctx)).pipelines.map((p) => p.name));
        dirsChecked.set(dir, names);
      }
      if (!names.has(spec.pipeline) && !known.has(spec.pipeline)) {
        const rejected = loaded.rejected.size > 0 && [...loaded.rejected.keys()].some((f) => basename(f).replace(/\.ya?ml$/, '') === spec.pipeline);
        if (!rejected) diagnostics.push({ ...doc.locate(['pipeline']), message: `no pipeline named '${spec.pipeline}' in ${dir}` });
      }
    } catch (err) {
      if (!(err instanceof ConfigInvalidError)) throw err;
      diagnostics.push(...err.diagnostics);
    }
  }
  const warnings = loaded.pipelines.flatMap((p) => p.warnings);
  return { pipelines: pipelineFiles.length, testFiles: testFiles.length, schemas: schemas.list().length, diagnostics, warnings };
}

/**
 * `synapse validate`: prints every problem as FILE:LINE:COL message, and every warning as
 * FILE:LINE:COL warning: message; exit code 1 on any error (on any warning too with `strict`).
 */
export async function validateCommand(paths: string[], opts: CommonOptions & { strict?: boolean }): Promise<number> {
  const report = await validatePaths(paths, opts);
  const errors = opts.strict ? [...report.diagnostics, ...report.warnings] : report.diagnostics;
  const lines = [
    ...report.diagnostics.map((d) => ({ d, text: formatDiagnostic(d) })),
    ...report.warnings.map((d) => ({ d, text: formatDiagnostic({ ...d, message: `${opts.strict ? 'error' : 'warning'}: ${d.message}` }) })),
  ].sort((a, b) => a.d.file.localeCompare(b.d.file) || a.d.line - b.d.line || a.d.col - b.d.col);
  for (const l of lines) process.stdout.write(`${l.text}\n`);
  const warned = !opts.strict && report.warnings.length ? `, ${report.warnings.length} warning(s)` : '';
  const summary = `${report.pipelines} pipeline(s), ${report.testFiles} test file(s), ${report.schemas} schema(s): ${errors.length} error(s)${warned}`;
  process.stdout.write(`${summary}\n`);
  return errors.length ? 1 : 0;
}
