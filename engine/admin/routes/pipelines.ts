import { createHash, randomUUID } from 'node:crypto';
import { readFile, rename, writeFile, rm } from 'node:fs/promises';
import { basename, join, resolve } from 'node:path';
import type { FastifyPluginAsync } from 'fastify';
import { compilePipelineText, isPipelineFile, type CompiledPipeline, type LoadContext } from '../../config/load-pipeline.ts';
import { ConfigInvalidError, SandboxLimitError, formatDiagnostic, type Diagnostic } from '../../errors.ts';
import type { StreamEntry } from '../../runner/codec.ts';
import { toStreamBound } from '../../runtime/stream-ids.ts';
import { entryFromBytes } from '../../runtime/stream-reader.ts';
import { describeHandle, pipelineViewSchema } from '../pipeline-view.ts';
import type { SandboxReply, SandboxRequest, SubmittedContext } from '../sandbox.ts';
import { anyObject, errorReply, nameParam } from '../schemas.ts';
import { PIPELINE_BODY_TYPES, wantsYaml } from '../body-types.ts';
import { didYouMean } from '../../config/did-you-mean.ts';
import type { AdminDeps } from '../server.ts';

const MAX_DRY_RUN_EVENTS = 1000;

/** The body of PUT: the pipeline's YAML (sent as YAML text, it arrives here as `{ yaml }`). */
const pipelineBody = {
  type: 'object', additionalProperties: false, required: ['yaml'],
  properties: { yaml: { type: 'string', minLength: 1, description: 'The pipeline file, as YAML text.' } },
} as const;

/** Limits YAML sent over HTTP can run into, by the text of their diagnostics. */
const SUBMITTED_LIMITS: readonly (readonly [limit: string, marker: string])[] = [
  ['admin.yaml_env', 'is not available to pipeline YAML sent over HTTP'],
  ['admin.yaml_depth', 'nesting deeper than'],
];

/** Serialises PUTs so that the hash check and the write are one step. */
function mutex() {
  let chain: Promise<unknown> = Promise.resolve();
  return <T>(fn: () => Promise<T>): Promise<T> => {
    const run = chain.then(fn);
    chain = run.catch(() => undefined);
    return run;
  };
}

/** A file that failed to load, as the pipeline views show it (with the hash PUT needs). */
async function rejectedView(file: string, diagnostics: Diagnostic[]) {
  const text = await readFile(file, 'utf8').catch(() => undefined);
  return {
    name: basename(file).replace(/\.ya?ml$/, ''), file, status: 'invalid',
    fileHash: text === undefined ? null : sha256(text),
    lastReloadError: diagnostics.map(formatDiagnostic).join('\n'),
  };
}

function sha256(text: string): string {
  return createHash('sha256').update(text).digest('hex');
}

function invalid(diagnostics: Diagnostic[]) {
  return { error: 'pipeline_invalid', message: diagnostics.map(formatDiagnostic).join('\n'), diagnostics };
}

/**
 * Pipelines: list, detail, PUT (validated, written atomically, hot-reloaded, with optimistic
 * concurrency on the file's hash), pause/resume, dry-run (events, or a real slice of the source
 * stream read with XRANGE and never acknowledged), and POST /validate.
 */
export const pipelineRoutes: FastifyPluginAsync<AdminDeps> = async (app, { engine, envAllow, refusals, sandbox }) => {
  const exclusive = mutex();
  /**
   * How YAML received over HTTP is compiled: `${VAR}` only for allow-listed variables, schema
   * files only from the schema and pipeline directories (relative to the pipeline directory),
   * and schemas found by path never join the running registry.
   */
  const submitted = (): LoadContext => {
    const dirs = [resolve(engine.options.pipelinesDir), resolve(engine.options.schemasDir)];
    return { ...engine.loadContext, envAllow, schemaFileRoots: dirs, baseDir: dirs[0] };
  };
  /** Logs (bounded) and counts what a limit refused in YAML received over HTTP. */
  const noteRefusals = (file: string, diagnostics: readonly Diagnostic[]) => {
    for (const [limit, marker] of SUBMITTED_LIMITS) {
      if (diagnostics.some((d) => d.message.includes(marker))) refusals.refuse(limit, `pipeline YAML sent over HTTP: ${marker}`, { file });
    }
  };
  /** Compiles YAML received over HTTP in this thread (PUT: what it writes, the engine loads). */
  const compileSubmitted = async (file: string, text: string): Promise<CompiledPipeline> => {
    try {
      return await compilePipelineText(file, text, submitted());
    } catch (err) {
      if (err instanceof ConfigInvalidError) noteRefusals(file, err.diagnostics);
      throw err;
    }
  };
  /**
   * Validates or dry-runs in the sandbox thread (memory and time bounds). YAML received over HTTP
   * is compiled there as `submitted()` says; a running pipeline from its own text, as on disk.
   */
  const inSandbox = async (request: Omit<SandboxRequest, 'schemas'>, signal?: AbortSignal): Promise<SandboxReply> => {
    try {
      const reply = await sandbox.run({ ...request, schemas: engine.loadContext.schemas }, signal);
      if (reply.kind === 'invalid' && request.submitted) noteRefusals(request.file, reply.diagnostics);
      return reply;
    } catch (err) {
      if (err instanceof SandboxLimitError && err.limit !== 'stopping' && err.limit !== 'gone') {
        refusals.refuse(`admin.sandbox_${err.limit}`, `${request.kind} of '${basename(request.file)}': ${err.message}`, { file: request.file });
      }
      throw err;
    }
  };
  const submittedData = (): SubmittedContext => {
    const ctx = submitted();
    return { envAllow: [...ctx.envAllow!], schemaFileRoots: [...ctx.schemaFileRoots!], baseDir: ctx.baseDir! };
  };

  app.get('/pipelines', {
    schema: {
      tags: ['pipelines'], summary: 'Every pipeline with its status, generation, hash and counters; rejected files too',
      response: { 200: { type: 'object', properties: { pipelines: { type: 'array', items: pipelineViewSchema } } } },
    },
  }, async () => {
    const running = await Promise.all([...engine.handles.values()].map((h) => describeHandle(h, engine.connection)));
    const rejected = await Promise.all([...engine.rejected.entries()].map(([file, diagnostics]) => rejectedView(file, diagnostics)));
    return { pipelines: [...running, ...rejected].sort((a, b) => a.name.localeCompare(b.name)) };
  });

  /** The file of pipeline `name`: the running one's, a rejected file of that name, or where PUT would write it. */
  const fileOf = (name: string): { file: string; running: boolean; rejected?: Diagnostic[] } => {
    const h = engine.handles.get(name);
    if (h) return { file: h.pipeline.file, running: true };
    const rejected = [...engine.rejected.entries()].find(([file]) => basename(file).replace(/\.ya?ml$/, '') === name);
    if (rejected) return { file: rejected[0], running: false, rejected: rejected[1] };
    return { file: resolve(join(engine.options.pipelinesDir, `${name}.yaml`)), running: false };
  };

  app.get<{ Params: { name: string } }>('/pipelines/:name', {
    schema: {
      tags: ['pipelines'],
      summary: 'One pipeline: status, generation, hash, counters, lag, pending, lastError, lastDlq, lastReloadError; or its YAML file',
      description: 'With `Accept: application/yaml`, the file as it is on disk. Either way the ETag is the sha256 of the file (what PUT and DELETE take in If-Match).',
      params: nameParam, produces: ['application/json', 'application/yaml'], response: { 200: pipelineViewSchema, 404: errorReply },
    },
  }, async (req, reply) => {
    const { name } = req.params;
    const { file, running, rejected } = fileOf(name);
    if (!running && !rejected) return reply.code(404).send({ error: 'not_found', message: `no pipeline '${name}'${didYouMean(name, engine.handles.keys())}` });
    const text = await readFile(file, 'utf8').catch(() => undefined);
    if (text !== undefined) void reply.header('etag', `"${sha256(text)}"`).header('vary', 'Accept');
    if (wantsYaml(req.headers.accept)) {
      if (text === undefined) return reply.code(404).send({ error: 'not_found', message: `pipeline '${name}' has no file on disk (${file})` });
      return reply.type('application/yaml; charset=utf-8').serializer((body: string) => body).send(text);
    }
    return rejected ? rejectedView(file, rejected) : describeHandle(engine.handles.get(name)!, engine.connection);
  });

  app.delete<{ Params: { name: string }; Headers: { 'if-match'?: string } }>('/pipelines/:name', {
    schema: {
      tags: ['pipelines'],
      summary: 'Delete a pipeline: its file is removed and the pipeline stops (its consumer group and DLQ stay in Redis)',
      description: 'Send the hash of the file you mean to delete in If-Match (the ETag of GET /pipelines/:name); a stale hash gets 409, none 428.',
      params: nameParam,
      headers: { type: 'object', properties: { 'if-match': { type: 'string' } } },
      response: {
        200: { type: 'object', properties: { name: { type: 'string' }, change: { type: 'string' }, file: { type: 'string' } } },
        404: errorReply, 409: errorReply, 428: errorReply,
      },
    },
  }, async (req, reply) => exclusive(async () => {
    const { name } = req.params;
    const { file, running, rejected } = fileOf(name);
    const current = running || rejected ? await readFile(file, 'utf8').catch(() => undefined) : undefined;
    if (current === undefined) return reply.code(404).send({ error: 'not_found', message: `no pipeline '${name}'${didYouMean(name, engine.handles.keys())}` });
    const ifMatch = (req.headers['if-match'] ?? '').replace(/^W\//, '').replace(/"/g, '');
    if (!ifMatch) {
      return reply.code(428).send({ error: 'precondition_required', message: `send the hash of the file you mean to delete in If-Match (current: ${sha256(current)})` });
    }
    if (ifMatch !== sha256(current)) {
      return reply.code(409).send({ error: 'conflict', message: `pipeline '${name}' changed since you read it: you sent ${ifMatch}, it is now ${sha256(current)}; GET it again` });
    }
    await rm(file);
    await engine.reloadFile(file, { cause: `DELETE /pipelines/${name}` });
    return { name, change: 'removed', file };
  }));

  app.put<{ Params: { name: string }; Body: { yaml: string }; Headers: { 'if-match'?: string } }>('/pipelines/:name', {
    config: { accepts: PIPELINE_BODY_TYPES },
    schema: {
      tags: ['pipelines'],
      summary: 'Replace (or create) a pipeline from YAML: validated, written atomically to disk, hot-reloaded',
      description: 'Send the YAML as the body (Content-Type: application/yaml), or JSON `{ "yaml": "…" }`. For an existing pipeline, send the hash you edited in If-Match; a stale hash gets 409. To create, send If-None-Match: * or no precondition.',
      params: nameParam,
      headers: { type: 'object', properties: { 'if-match': { type: 'string' }, 'if-none-match': { type: 'string' } } },
      body: pipelineBody,
      response: {
        200: { type: 'object', properties: { name: { type: 'string' }, hash: { type: 'string' }, generation: { type: 'integer' }, change: { type: 'string' } } },
        201: { type: 'object', properties: { name: { type: 'string' }, hash: { type: 'string' }, generation: { type: 'integer' }, change: { type: 'string' } } },
        400: errorReply, 409: errorReply, 422: errorReply, 428: errorReply,
      },
    },
  }, async (req, reply) => exclusive(async () => {
    const { name } = req.params;
    // `x.test` would be written as x.test.yaml: a test file, which no restart loads as a pipeline.
    if (!isPipelineFile(`${name}.yaml`)) {
      return reply.code(400).send({ error: 'bad_name', message: `'${name}' cannot name a pipeline: ${name}.yaml would be read as a pipeline test file; choose a name not ending in .test` });
    }
    const existing = engine.handles.get(name);
    const file = existing?.pipeline.file ?? resolve(join(engine.options.pipelinesDir, `${name}.yaml`));
    const current = await readFile(file, 'utf8').catch(() => undefined);
    const ifMatch = (req.headers['if-match'] ?? '').replace(/^W\//, '').replace(/"/g, '');
    if (current !== undefined) {
      if (!ifMatch) {
        return reply.code(428).send({ error: 'precondition_required', message: `pipeline '${name}' exists: send the hash you edited in If-Match (current: ${sha256(current)})` });
      }
      if (ifMatch !== sha256(current)) {
        return reply.code(409).send({ error: 'conflict', message: `pipeline '${name}' changed since you read it: you sent ${ifMatch}, it is now ${sha256(current)}; GET it again and reapply your edit` });
      }
    } else if (ifMatch) {
      return reply.code(409).send({ error: 'conflict', message: `pipeline '${name}' does not exist, but If-Match was sent` });
    }
    let compiled: CompiledPipeline;
    try {
      compiled = await compileSubmitted(file, req.body.yaml);
    } catch (err) {
      if (err instanceof ConfigInvalidError) return reply.code(422).send(invalid(err.diagnostics));
      throw err;
    }
    if (compiled.name !== name) {
      return reply.code(422).send(invalid([{ file, line: 1, col: 1, message: `the file names its pipeline '${compiled.name}', but it was PUT as '${name}'` }]));
    }
    const tmp = join(resolve(engine.options.pipelinesDir), `.${name}.yaml.${randomUUID()}.tmp`);
    await writeFile(tmp, req.body.yaml);
    try {
      await rename(tmp, file);
    } catch (err) {
      await rm(tmp, { force: true });
      throw err;
    }
    const result = await engine.reloadFile(file, { cause: `PUT /pipelines/${name}` });
    if (!result.ok) return reply.code(422).send(invalid(result.diagnostics));
    return reply.code(current === undefined ? 201 : 200).send({ name, hash: compiled.hash, generation: result.generation, change: result.change });
  }));

  for (const action of ['pause', 'resume'] as const) {
    app.post<{ Params: { name: string } }>(`/pipelines/:name/${action}`, {
      schema: {
        tags: ['pipelines'], summary: action === 'pause' ? 'Stop reading after the batch in hand' : 'Read again', params: nameParam,
        response: { 200: { type: 'object', properties: { name: { type: 'string' }, status: { type: 'string' } } }, 404: errorReply },
      },
    }, async (req, reply) => {
      const ok = action === 'pause' ? engine.pause(req.params.name) : engine.resume(req.params.name);
      if (!ok) return reply.code(404).send({ error: 'not_found', message: `no running pipeline '${req.params.name}'${didYouMean(req.params.name, engine.handles.keys())}` });
      return { name: req.params.name, status: engine.handles.get(req.params.name)!.status };
    });
  }

  app.post<{ Params: { name: string }; Body: { events?: unknown[]; yaml?: string; from?: string; to?: string; count?: number }; Querystring: { from?: string; to?: string; count?: number } }>('/pipelines/:name/dry-run', {
    config: { accepts: PIPELINE_BODY_TYPES },
    schema: {
      tags: ['pipelines'],
      summary: 'Run events through the pipeline without side effects',
      description: 'With `events`, those; otherwise a slice of the source stream (XRANGE from/to — ids or ISO times — or the latest `count`), read and never acknowledged. With `yaml`, an edited version is compiled and run instead of the running one. The body may also be the edited YAML itself (Content-Type: application/yaml), run on the slice the query string names (`?from=&to=&count=`).',
      params: nameParam,
      querystring: {
        type: 'object', additionalProperties: false,
        properties: { from: { type: 'string' }, to: { type: 'string' }, count: { type: 'integer', minimum: 1, maximum: MAX_DRY_RUN_EVENTS } },
      },
      body: {
        type: 'object', additionalProperties: false,
        properties: {
          events: { type: 'array', maxItems: MAX_DRY_RUN_EVENTS },
          yaml: { type: 'string', description: 'An edited pipeline to try instead of the running version.' },
          from: { type: 'string' }, to: { type: 'string' },
          count: { type: 'integer', minimum: 1, maximum: MAX_DRY_RUN_EVENTS, default: 100 },
        },
      },
      response: {
        200: { type: 'object', properties: { results: { type: 'array', items: anyObject }, summary: anyObject } },
        404: errorReply, 422: errorReply,
      },
    },
  }, async (req, reply) => {
    const h = engine.handles.get(req.params.name);
    // A YAML body brings no range of its own: the query string's, over the body's defaults.
    const range = { ...req.body, ...req.query };
    if (!h && !req.body.yaml) return reply.code(404).send({ error: 'not_found', message: `no pipeline '${req.params.name}'${didYouMean(req.params.name, engine.handles.keys())}` });
    // A client that goes away while its dry-run waits for its turn gives the turn up.
    const gone = new AbortController();
    reply.raw.once('close', () => { if (!reply.raw.writableEnded) gone.abort(); });
    const file = h?.pipeline.file ?? join(engine.options.pipelinesDir, `${req.params.name}.yaml`);
    const version = req.body.yaml
      ? { file, text: req.body.yaml, submitted: submittedData() }
      : { file, text: h!.pipeline.text };
    let entries: StreamEntry[] | undefined;
    if (!req.body.events) {
      // The source stream of the version being tried, read here and never acknowledged.
      let stream = h?.pipeline.source.kind === 'stream' ? h.pipeline.source.stream : null;
      if (req.body.yaml) {
        const checked = await inSandbox({ kind: 'validate', ...version }, gone.signal);
        if (checked.kind === 'invalid') return reply.code(422).send(invalid(checked.diagnostics));
        stream = checked.kind === 'valid' ? checked.stream : null;
      }
      if (stream === null) return reply.code(422).send({ error: 'no_stream', message: 'a schedule pipeline has no stream to read; send events' });
      const slice = await readSlice(engine.connection, stream, range, sandbox.limits.maxBytes);
      if ('error' in slice) return reply.code(422).send(slice);
      entries = slice;
    }
    const result = await inSandbox({ kind: 'dry-run', ...version, ...(entries ? { entries } : { events: req.body.events }) }, gone.signal);
    if (result.kind === 'invalid') return reply.code(422).send(invalid(result.diagnostics));
    if (result.kind !== 'dry-run') throw new Error(`unexpected sandbox reply ${result.kind}`);
    // The JSON the worker made, sent as it is.
    return reply.type('application/json; charset=utf-8').send(Buffer.from(result.body.buffer, result.body.byteOffset, result.body.byteLength));
  });

  app.post<{ Body: { yaml: string; file?: string }; Querystring: { file?: string } }>('/validate', {
    config: { accepts: PIPELINE_BODY_TYPES },
    schema: {
      tags: ['pipelines'], summary: 'Validate pipeline YAML without running it',
      description: 'The body is JSON `{ "yaml": "…", "file": "…" }`, or the YAML itself (Content-Type: application/yaml) with `?file=` to name it.',
      querystring: { type: 'object', additionalProperties: false, properties: { file: { type: 'string' } } },
      body: { type: 'object', additionalProperties: false, required: ['yaml'], properties: { yaml: { type: 'string' }, file: { type: 'string', description: 'The name to report errors under (default pipeline.yaml).' } } },
      response: { 200: { type: 'object', properties: { valid: { type: 'boolean' }, name: { type: 'string' }, diagnostics: errorReply.properties.diagnostics, warnings: { ...errorReply.properties.diagnostics, description: 'Hints that do not stop the pipeline from loading (as `synapse validate` prints them); only for valid YAML.' } } } },
    },
  }, async (req) => {
    const result = await inSandbox({ kind: 'validate', file: req.body.file ?? req.query.file ?? 'pipeline.yaml', text: req.body.yaml, submitted: submittedData() });
    if (result.kind === 'invalid') return { valid: false, diagnostics: result.diagnostics, warnings: [] };
    if (result.kind !== 'valid') throw new Error(`unexpected sandbox reply ${result.kind}`);
    return { valid: true, name: result.name, diagnostics: [], warnings: result.warnings };
  });
};

/**
 * Entries of a stream slice for a dry-run: from/to bounds, or the latest `count`. Read a few at a
 * time, and refused once they hold more than `maxBytes`: a slice of huge entries never fills the
 * engine's memory.
 */
async function readSlice(redis: import('../../runtime/redis-client.ts').RedisConnection, stream: string, q: { from?: string; to?: string; count?: number }, maxBytes: number): Promise<StreamEntry[] | { error: string; message: string }> {
  const count = q.count ?? 100;
  const latest = !(q.from || q.to);
  let from = toStreamBound(q.from ?? '-');
  let to = toStreamBound(q.to ?? '+');
  if (!from || !to) return { error: 'bad_range', message: `from/to must be stream ids or ISO 8601 times (got ${q.from ?? '-'} .. ${q.to ?? '+'})` };
  const PAGE = 10;
  const out: StreamEntry[] = [];
  let bytes = 0;
  while (out.length < count) {
    const page = Math.min(PAGE, count - out.length);
    const raw: [Buffer, Buffer[]][] = latest
      ? await redis.xrevrangeBuffer(stream, to, '-', 'COUNT', page)
      : await redis.xrangeBuffer(stream, from, to, 'COUNT', page);
    for (const [id, fields] of raw) {
      for (const f of fields) bytes += f.length;
      if (bytes > maxBytes) {
        return { error: 'slice_too_large', message: `the slice holds more than ${maxBytes} bytes (SYNAPSE_SANDBOX_MAX_BYTES); ask for fewer entries (count) or a narrower range` };
      }
      // As bytes, as the consumer reads them: a value that is not UTF-8 fails at decode here too.
      out.push(entryFromBytes(id.toString(), fields));
    }
    if (raw.length < page) break;
    const last = raw[raw.length - 1]![0].toString();
    if (latest) to = `(${last}`;
    else from = `(${last}`;
  }
  return latest ? out.reverse() : out;
}
