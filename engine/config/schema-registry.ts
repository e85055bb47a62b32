import { readdir } from 'node:fs/promises';
import { extname, join, resolve } from 'node:path';
import { Ajv2020, type ValidateFunction, type ErrorObject } from 'ajv/dist/2020.js';
import addFormatsModule from 'ajv-formats';
import { SchemaInvalidError, errorMessage, type Diagnostic } from '../errors.ts';
import { SourceDocument } from './source-document.ts';
import { splitPointer } from './ajv-diagnostics.ts';
import { TIMESTAMP_FORMAT, isTimestamp } from './timestamp.ts';

// ajv-formats is CommonJS; its default export arrives wrapped under ESM.
const addFormats = ((addFormatsModule as unknown as { default?: unknown }).default ?? addFormatsModule) as (ajv: Ajv2020) => void;

/** Keywords Synapse's own schemas may carry for documentation and the catalog. */
const ANNOTATION_KEYWORDS = ['x-stream', 'x-producer', 'x-event', 'x-examples', 'x-wire'];

const SCHEMA_EXTENSIONS = new Set(['.json', '.yaml', '.yml']);

/** One schema file known to the registry. */
export interface SchemaEntry {
  id: string;
  file: string;
  schema: Record<string, unknown>;
}

/** Formats ajv's errors about an event into one line for logs, DLQ reasons and API replies. */
export function formatValidationErrors(errors: ErrorObject[] | null | undefined): string {
  if (!errors?.length) return 'invalid';
  // `if`/`then` wrappers only repeat that a branch failed; its own errors say why.
  const useful = errors.filter((e) => e.keyword !== 'if' && e.keyword !== 'then' && e.keyword !== 'else');
  return (useful.length ? useful : errors).map((e) => {
    const at = e.instancePath ? e.instancePath.slice(1).replace(/\//g, '.') : '(root)';
    if (e.keyword === 'additionalProperties') return `${at}: unknown property '${String((e.params as Record<string, unknown>).additionalProperty)}'`;
    return `${at}: ${e.message ?? 'invalid'}`;
  }).join('; ');
}

/**
 * Every JSON Schema (draft 2020-12) of the schema directory, registered by `$id` so pipelines and
 * schemas can refer to each other. Loading compiles each schema, so a broken `$ref` or a typo in a
 * keyword is an error at load, reported as FILE:LINE:COL.
 */
export class SchemaRegistry {
  private readonly ajv: Ajv2020;
  private readonly entries = new Map<string, SchemaEntry>();
  private readonly byFile = new Map<string, SchemaEntry>();
  private readonly compiled = new Map<string, ValidateFunction>();
  /** The directory the schemas were loaded from (schema files named by path may come from it). */
  dir?: string;

  constructor() {
    this.ajv = new Ajv2020({ allErrors: true, strict: true, strictTypes: false, strictTuples: false, strictRequired: false });
    addFormats(this.ajv);
    // ISO 8601 with or without an offset: what the platform's producers write (timestamp.ts).
    this.ajv.addFormat(TIMESTAMP_FORMAT, { type: 'string', validate: isTimestamp });
    for (const keyword of ANNOTATION_KEYWORDS) this.ajv.addKeyword({ keyword });
  }

  /**
   * Loads every *.json / *.yaml file of `dir`. A missing directory is an empty registry.
   * Throws SchemaInvalidError with every problem of every file.
   */
  static async load(dir: string): Promise<SchemaRegistry> {
    const registry = new SchemaRegistry();
    registry.dir = resolve(dir);
    let names: string[] = [];
    try {
      names = (await readdir(dir)).filter((n) => SCHEMA_EXTENSIONS.has(extname(n))).sort();
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'ENOENT') throw err;
    }
    const diagnostics: Diagnostic[] = [];
    const docs: SourceDocument[] = [];
    for (const name of names) {
      try {
        docs.push(await SourceDocument.read(join(dir, name)));
      } catch (err) {
        if (err instanceof SchemaInvalidError || (err as { diagnostics?: Diagnostic[] }).diagnostics) {
          diagnostics.push(...(err as { diagnostics: Diagnostic[] }).diagnostics);
        } else throw err;
      }
    }
    diagnostics.push(...registry.addDocuments(docs));
    if (diagnostics.length) throw new SchemaInvalidError(diagnostics);
    return registry;
  }

  /** Adds parsed schema documents, then compiles all of them; returns the problems found. */
  addDocuments(docs: SourceDocument[]): Diagnostic[] {
    const diagnostics: Diagnostic[] = [];
    const added: { entry: SchemaEntry; doc: SourceDocument }[] = [];
    for (const doc of docs) {
      const schema = doc.value;
      if (!schema || typeof schema !== 'object' || Array.isArray(schema)) {
        diagnostics.push({ ...doc.locate([]), message: 'a schema file must hold a JSON Schema object' });
        continue;
      }
      const id = (schema as Record<string, unknown>).$id;
      if (typeof id !== 'string' || id === '') {
        diagnostics.push({ ...doc.locate([]), message: 'schema has no $id; every schema needs a unique $id (a URL such as https://synapse.dev/schemas/NAME.json)' });
        continue;
      }
      const clash = this.entries.get(id);
      if (clash) {
        diagnostics.push({ ...doc.locate(['$id']), message: `duplicate $id '${id}', also in ${clash.file}` });
        continue;
      }
      try {
        this.ajv.addSchema(schema as object);
      } catch (err) {
        diagnostics.push({ ...this.locateProblem(doc, err), message: `invalid schema: ${errorMessage(err)}` });
        continue;
      }
      const entry: SchemaEntry = { id, file: resolve(doc.file), schema: schema as Record<string, unknown> };
      this.entries.set(id, entry);
      this.byFile.set(entry.file, entry);
      added.push({ entry, doc });
    }
    for (const { entry, doc } of added) {
      try {
        this.compile(entry.id);
      } catch (err) {
        diagnostics.push({ ...this.locateProblem(doc, err), message: `invalid schema: ${errorMessage(err)}` });
        this.ajv.removeSchema(entry.id);
        this.entries.delete(entry.id);
        this.byFile.delete(entry.file);
      }
    }
    return diagnostics;
  }

  /**
   * A copy to add schemas to without touching this registry: what a pipeline names by file path
   * is compiled there, so validating or dry-running YAML never changes the schemas the running
   * engine (and POST /events) sees. Cheap: ajv compiles the copied schemas only when used.
   */
  fork(): SchemaRegistry {
    return SchemaRegistry.fromEntries(this.list(), this.dir);
  }

  /**
   * A registry of schemas another registry already accepted (its `list()`), e.g. sent to a worker
   * thread: they are added as they are, without the checks of loading.
   */
  static fromEntries(entries: readonly SchemaEntry[], dir?: string): SchemaRegistry {
    const copy = new SchemaRegistry();
    copy.dir = dir;
    for (const entry of entries) {
      copy.ajv.addSchema(entry.schema);
      copy.entries.set(entry.id, entry);
      copy.byFile.set(entry.file, entry);
    }
    return copy;
  }

  /** Whether a schema with this $id is registered. */
  has(id: string): boolean {
    return this.entries.has(id);
  }

  /** The entry registered under `id`. */
  get(id: string): SchemaEntry | undefined {
    return this.entries.get(id);
  }

  /** The schema loaded from this file, if any. */
  getByFile(file: string): SchemaEntry | undefined {
    return this.byFile.get(resolve(file));
  }

  /** All registered schemas. */
  list(): SchemaEntry[] {
    return [...this.entries.values()];
  }

  /**
   * The schema for an event type: the one whose `x-event` names it, or whose `properties.event`
   * has it as `const` or in its `enum`. Undefined when no schema claims the type.
   */
  forEventType(type: string): SchemaEntry | undefined {
    for (const entry of this.entries.values()) {
      const s = entry.schema;
      const xEvent = s['x-event'];
      if (xEvent === type || (Array.isArray(xEvent) && xEvent.includes(type))) return entry;
      const ev = (s.properties as Record<string, { const?: unknown; enum?: unknown[] }> | undefined)?.event;
      if (ev && (ev.const === type || (Array.isArray(ev.enum) && ev.enum.includes(type)))) return entry;
    }
    return undefined;
  }

  /**
   * What validating against schema `id` depends on, as one string: the schema and every schema it
   * reaches through `$ref` / `$dynamicRef` (resolved against the referring schema's `$id`),
   * each with its content. Two registries give the same fingerprint for `id` exactly when its
   * validation is built from the same schemas; a reference to no registered schema counts as
   * `missing`. Undefined when `id` is not registered.
   */
  fingerprint(id: string): string | undefined {
    if (!this.entries.has(id)) return undefined;
    const seen = new Map<string, string>();
    const queue = [id];
    while (queue.length) {
      const current = queue.pop()!;
      if (seen.has(current)) continue;
      const entry = this.entries.get(current);
      seen.set(current, entry ? JSON.stringify(entry.schema) : 'missing');
      if (!entry) continue;
      for (const ref of referencesOf(entry.schema)) {
        const target = resolveReference(ref, current);
        if (target !== undefined && target !== current) queue.push(target);
      }
    }
    return [...seen.entries()].sort(([a], [b]) => a.localeCompare(b)).map(([k, v]) => `${k}\n${v}`).join('\n');
  }

  /** The compiled validator of schema `id` (compiled once, then cached). */
  compile(id: string): ValidateFunction {
    let fn = this.compiled.get(id);
    if (!fn) {
      const found = this.ajv.getSchema(id);
      if (!found) throw new Error(`unknown schema '${id}'`);
      fn = found;
      this.compiled.set(id, fn);
    }
    return fn;
  }

  /** Where in a schema file an ajv compile error points: the broken `$ref` or the bad keyword. */
  private locateProblem(doc: SourceDocument, err: unknown) {
    const missingRef = (err as { missingRef?: string }).missingRef;
    if (missingRef) {
      const path = findPath(doc.value, (key, value) => key === '$ref' && typeof value === 'string' && missingRef.endsWith(value.replace(/^#/, '') || '#'));
      if (path) return doc.locate(path);
    }
    const keyword = /unknown keyword: "([^"]+)"/.exec(errorMessage(err))?.[1];
    if (keyword) {
      const path = findPath(doc.value, (key) => key === keyword);
      if (path) return doc.locate(path, { key: true });
    }
    // "schema is invalid: data/properties/a/type must be equal to one of the allowed values"
    const pointer = /data(\/[^ ,]*) must/.exec(errorMessage(err))?.[1];
    if (pointer) return doc.locate(splitPointer(pointer));
    const refMatch = /reference "?([^" ]+)"? /.exec(errorMessage(err))?.[1];
    if (refMatch) {
      const path = findPath(doc.value, (key, value) => key === '$ref' && value === refMatch);
      if (path) return doc.locate(path);
    }
    return doc.locate([]);
  }
}

/** Every `$ref` and `$dynamicRef` value in a schema, at any depth. */
function referencesOf(value: unknown, out: string[] = []): string[] {
  if (Array.isArray(value)) for (const v of value) referencesOf(v, out);
  else if (value && typeof value === 'object') {
    for (const [k, v] of Object.entries(value)) {
      if ((k === '$ref' || k === '$dynamicRef') && typeof v === 'string') out.push(v);
      else referencesOf(v, out);
    }
  }
  return out;
}

/** The `$id` a reference made in schema `base` points into (without its fragment); undefined for one into `base` itself. */
function resolveReference(ref: string, base: string): string | undefined {
  if (ref.startsWith('#')) return undefined;
  try {
    const url = new URL(ref, base);
    url.hash = '';
    return url.href;
  } catch {
    return ref.split('#')[0];
  }
}

/** Depth-first search for the first key/value pair matching `test`; returns its path. */
function findPath(value: unknown, test: (key: string, value: unknown) => boolean, path: (string | number)[] = []): (string | number)[] | undefined {
  if (Array.isArray(value)) {
    for (let i = 0; i < value.length; i++) {
      const found = findPath(value[i], test, [...path, i]);
      if (found) return found;
    }
  } else if (value && typeof value === 'object') {
    for (const [k, v] of Object.entries(value)) {
      if (test(k, v)) return [...path, k];
      const found = findPath(v, test, [...path, k]);
      if (found) return found;
    }
  }
  return undefined;
}
