/**
 * Generates docs/catalog.md from the catalog's own files — the pipelines and schemas that
 * catalog.json lists — so the catalog cannot drift from them: `npm run catalog` writes it,
 * `npm run catalog -- --check` exits 1 when the committed copy is stale (a test does the same).
 * Pipelines and schemas a user adds to pipelines/ and schemas/ are not the catalog's, so they
 * change neither the page nor the check.
 */
import { access, cp, mkdtemp, readdir, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { basename, join, relative, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { loadPipelines, type CompiledPipeline } from '../engine/config/load-pipeline.ts';
import { SchemaRegistry, type SchemaEntry } from '../engine/config/schema-registry.ts';
import { SinkRegistry } from '../engine/plugins/sink-registry.ts';

const root = resolve(fileURLToPath(new URL('..', import.meta.url)));

function cell(text: unknown): string {
  return String(text ?? '').replace(/\|/g, '\\|').replace(/\s*\n\s*/g, ' ').trim();
}

function eventTypes(s: SchemaEntry): string[] {
  const ev = (s.schema.properties as Record<string, { const?: string; enum?: string[] }> | undefined)?.event;
  const x = s.schema['x-event'];
  return [...new Set([...(ev?.const ? [ev.const] : []), ...(ev?.enum ?? []), ...(Array.isArray(x) ? x : typeof x === 'string' ? [x] : [])])];
}

function sinkSummary(p: CompiledPipeline): string {
  return p.sinks.map((s) => {
    const c = s.config as Record<string, unknown>;
    const target = c.stream ?? c.channel ?? c.queue ?? c.inbox ?? c.url ?? (s.type === 'aggregate' ? `by ${c.key}` : '');
    return `${s.type}${target ? ` → ${target}` : ''}${s.when ? ` (when ${s.when.source})` : ''}`;
  }).join('<br>');
}

/** The decisions behind the catalog, kept here so the generated page states them. */
const CONVENTIONS = [
  '## Conventions',
  '',
  '- **Schemas.** One schema per event type, its `$id` `https://synapse.dev/schemas/<type>.json`, with `properties.event.const` naming the type (so `synapse publish` and `POST /events/:stream` pick it by type), and `x-producer` / `x-stream` annotations. Shared envelopes and definitions live in `common.json`, `platform-event.json`, `platform-service-event.json` and `helox-event.json`.',
  '- **Validation per stream.** Pipelines validate against the `stream-<stream>.json` schema of their stream: an event of a known type is checked against its own schema (so the DLQ reason names the field), an unknown type only has to be a valid envelope and is then filtered out.',
  '- **Helox** writes flat field maps from Python: every value is a string, nested values are JSON strings (`codec: fields` decodes objects and arrays). Its schemas accept numbers and booleans as strings (`numberish`, `booleanish` in `common.json`). Write such events with `synapse publish --fields` or `POST /events/:stream?codec=fields`.',
  '- **Timestamps** are ISO 8601 with an offset (`new Date().toISOString()`) or without one (Python\'s `datetime.utcnow().isoformat()`), which is taken as UTC (`common.json#/$defs/timestamp`, format `iso-timestamp`). Pipelines that forward a timestamp give a naive one its `Z`; aggregate windows read it as UTC.',
  '- **`null` is absent.** Python publishers pass `None` for every optional argument not given (JSON `null`; in a field map, `str(None)` is `None`). The engine removes such values after decoding, before validation, so schemas, filters, transforms and aggregates see the field missing.',
  '- **Flat or envelope.** Cyrex\'s publishers build flat dicts; the platform\'s consumers read envelopes (`event.data.*`). Pipelines on JSON streams set `source.envelope: wrap`: a flat event is read as the envelope, every key but event, source, timestamp, id, trace_id, correlation_id, service and action under `data`. The table above says, per stream, which shapes arrive.',
  '- **Consumer groups** are named after the consuming service, with a `.purpose` suffix when a service has several pipelines on one stream; two pipelines may not share a stream and group (the loader refuses it).',
  '- **A task-completed event carries no title, often no user.** The service template writes `{taskId, completedAt, result}`: notifications take the user from `data.userId`, else `data.result.userId` (no user: nobody is notified), and call a task by `data.title`, else `data.result.title`, else `data.taskName`, else `Task <taskId>`: "Report has completed." / "Task t-2 failed: worker lost". Challenges and achievements fall back the same way. Notification types are `success`, `error` and `achievement`.',
  '- **Realtime**: per-user events (those with a userId) go to that user only (`audience`); `integration-status-changed`, `model-health-alert` and error events go to the `ops` channel. The `ops` channel is private: it needs the admin token or a JWT whose `channels` claim names it (SYNAPSE_WS_PRIVATE_CHANNELS).',
  '- **Model health** alerts when a model\'s error rate exceeds 10% or its average latency exceeds 5 s in a 5-minute window, with no minimum request count.',
  '',
];

/** What catalog.json lists: the catalog's pipelines (by name) and schemas (by file name). */
export interface CatalogManifest {
  pipelines: string[];
  schemas: string[];
}

/** Reads `<dir>/catalog.json`. */
export async function readManifest(dir = root): Promise<CatalogManifest> {
  return JSON.parse(await readFile(join(dir, 'catalog.json'), 'utf8')) as CatalogManifest;
}

/**
 * Copies the catalog's own files of `dir` — its listed pipelines with their test files, and its
 * listed schemas — into a new temporary directory (`pipelines/`, `schemas/`). Whatever else
 * `dir/pipelines` and `dir/schemas` hold is left behind. Fails when a listed file is missing.
 */
export async function copyCatalog(dir = root): Promise<{ dir: string; pipelines: string; schemas: string; remove(): Promise<void> }> {
  const manifest = await readManifest(dir);
  const out = await mkdtemp(join(tmpdir(), 'synapse-catalog-'));
  const pipelines = join(out, 'pipelines');
  const schemas = join(out, 'schemas');
  try {
    for (const name of manifest.pipelines) {
      await cp(join(dir, 'pipelines', `${name}.yaml`), join(pipelines, `${name}.yaml`));
      const test = join(dir, 'pipelines', `${name}.test.yaml`);
      if (await access(test).then(() => true, () => false)) await cp(test, join(pipelines, `${name}.test.yaml`));
    }
    for (const file of manifest.schemas) await cp(join(dir, 'schemas', file), join(schemas, file));
  } catch (err) {
    await rm(out, { recursive: true, force: true });
    throw new Error(`catalog.json lists a file that is missing: ${(err as Error).message}`);
  }
  return { dir: out, pipelines, schemas, remove: () => rm(out, { recursive: true, force: true }) };
}

/** The catalog of `dir` (default: this repository) as Markdown: its catalog.json's files only. */
export async function renderCatalog(dir = root): Promise<string> {
  const copy = await copyCatalog(dir);
  try {
    return await renderFrom(copy.pipelines, copy.schemas);
  } finally {
    await copy.remove();
  }
}

async function renderFrom(pipelinesDir: string, schemasDir: string): Promise<string> {
  const schemas = await SchemaRegistry.load(schemasDir);
  const { pipelines, errors } = await loadPipelines([pipelinesDir], { schemas, sinks: SinkRegistry.withBuiltins() });
  if (errors.length) throw new Error(`pipelines with errors: run synapse validate (${errors.length} problem(s))`);
  // Links point into the repository, wherever the files were read from.
  const rel = (f: string) => `${f.startsWith(schemasDir) ? 'schemas' : 'pipelines'}/${basename(f)}`;
  const out: string[] = [
    '# The platform event catalog',
    '',
    '<!-- Generated by `npm run catalog` from schemas/ and pipelines/. Do not edit by hand: a test fails when this file is stale. -->',
    '',
    '## Event types',
    '',
    '| event | stream | producer | schema |',
    '| --- | --- | --- | --- |',
  ];
  const rows: string[][] = [];
  for (const s of schemas.list()) {
    for (const type of eventTypes(s)) rows.push([type, cell(s.schema['x-stream']), cell(s.schema['x-producer']), `[${basename(s.file)}](../${rel(s.file)})`]);
  }
  rows.sort((a, b) => a[1]!.localeCompare(b[1]!) || a[0]!.localeCompare(b[0]!));
  for (const r of rows) out.push(`| ${r.join(' | ')} |`);
  const shared = schemas.list().filter((s) => eventTypes(s).length === 0);
  if (shared.length) {
    out.push('', 'Shared schemas (envelopes and definitions): ' + shared.map((s) => `[${basename(s.file)}](../${rel(s.file)})`).join(', ') + '.');
  }
  const streams = schemas.list().filter((s) => typeof s.schema['x-wire'] === 'string')
    .sort((a, b) => String(a.schema['x-stream']).localeCompare(String(b.schema['x-stream'])));
  if (streams.length) {
    out.push('', '## Streams: what arrives on each', '', '| stream | how its producers write it, and the shapes pipelines accept | schema |', '| --- | --- | --- |');
    for (const s of streams) out.push(`| ${cell(s.schema['x-stream'])} | ${cell(s.schema['x-wire'])} | [${basename(s.file)}](../${rel(s.file)}) |`);
  }
  out.push('', '## Pipelines', '', '| pipeline | source | group | schema | filter | sinks |', '| --- | --- | --- | --- | --- | --- |');
  for (const p of [...pipelines].sort((a, b) => a.name.localeCompare(b.name))) {
    const src = p.source.kind === 'stream' ? `${p.source.stream}${p.source.codec === 'fields' ? ' (fields)' : ''}` : `every ${p.source.every}`;
    const group = p.source.kind === 'stream' ? p.source.group : '';
    const schema = p.validate ? basename(p.validate.schemaFile ?? p.validate.schemaId) : '';
    out.push(`| [${p.name}](../${rel(p.file)}) | ${cell(src)} | ${cell(group)} | ${cell(schema)} | ${p.filter ? '`' + cell(p.filter.source) + '`' : ''} | ${sinkSummary(p)} |`);
  }
  out.push('', ...pipelines.filter((p) => p.description).sort((a, b) => a.name.localeCompare(b.name)).map((p) => `- **${p.name}**: ${cell(p.description)}`), '');
  out.push(...CONVENTIONS);
  return out.join('\n');
}

/** Files of pipelines/ and schemas/ that catalog.json does not list: the user's own. */
export async function filesOutsideCatalog(dir = root): Promise<string[]> {
  const manifest = await readManifest(dir);
  const listed = new Set([...manifest.pipelines.flatMap((n) => [`pipelines/${n}.yaml`, `pipelines/${n}.test.yaml`]), ...manifest.schemas.map((f) => `schemas/${f}`)]);
  const found: string[] = [];
  for (const sub of ['pipelines', 'schemas']) {
    const names = await readdir(join(dir, sub)).catch(() => [] as string[]);
    for (const n of names.sort()) if (/\.(ya?ml|json)$/.test(n) && !listed.has(`${sub}/${n}`)) found.push(`${sub}/${n}`);
  }
  return found;
}

if (process.argv[1] && resolve(process.argv[1]) === fileURLToPath(import.meta.url)) {
  const file = resolve(root, 'docs/catalog.md');
  const rendered = await renderCatalog();
  const own = await filesOutsideCatalog();
  if (own.length) console.log(`not in the catalog (yours; list them in catalog.json to ship them): ${own.join(', ')}`);
  if (process.argv.includes('--check')) {
    const committed = await readFile(file, 'utf8').catch(() => '');
    if (committed !== rendered) {
      console.error(`${relative(process.cwd(), file)} is stale: run npm run catalog`);
      process.exit(1);
    }
    console.log(`${relative(process.cwd(), file)} is up to date`);
  } else {
    await writeFile(file, rendered);
    console.log(`wrote ${relative(process.cwd(), file)}`);
  }
}
