import { readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { SHARE_ENV, Worker } from 'node:worker_threads';
import type { Logger } from 'pino';
import type { SchemaEntry, SchemaRegistry } from '../config/schema-registry.ts';
import { SandboxLimitError, errorMessage, type Diagnostic } from '../errors.ts';
import type { StreamEntry } from '../runner/codec.ts';

/** The bounds of the thread admin dry-runs and validations run in (docs/security.md). */
export interface SandboxLimits {
  /** Heap of the worker thread, MB (SYNAPSE_SANDBOX_MEMORY_MB, default 512). */
  memoryMb: number;
  /** Wall time of one request in the worker, ms (SYNAPSE_SANDBOX_TIMEOUT_MS, default 30 s). */
  timeoutMs: number;
  /** Requests waiting for the worker beyond the one it runs (default 16). */
  maxQueued: number;
}

export const DEFAULT_SANDBOX_LIMITS: SandboxLimits = { memoryMb: 512, timeoutMs: 30_000, maxQueued: 16 };

/** The limits set in the environment, over the defaults. */
export function sandboxLimitsFromEnv(env: NodeJS.ProcessEnv = process.env): SandboxLimits {
  const num = (name: string, fallback: number) => {
    const v = Number(env[name]);
    return env[name] && Number.isInteger(v) && v > 0 ? v : fallback;
  };
  return {
    memoryMb: num('SYNAPSE_SANDBOX_MEMORY_MB', DEFAULT_SANDBOX_LIMITS.memoryMb),
    timeoutMs: num('SYNAPSE_SANDBOX_TIMEOUT_MS', DEFAULT_SANDBOX_LIMITS.timeoutMs),
    maxQueued: DEFAULT_SANDBOX_LIMITS.maxQueued,
  };
}

/** How YAML received over HTTP is compiled (see LoadContext): sent as plain data. */
export interface SubmittedContext {
  envAllow: string[];
  schemaFileRoots: string[];
  baseDir: string;
}

/** One request to the worker. */
export interface SandboxJob {
  id: number;
  kind: 'validate' | 'dry-run';
  file: string;
  text: string;
  /** Set for YAML received over HTTP; absent for a file the operator put on disk. */
  submitted?: SubmittedContext;
  /** The engine's schemas: `entries` only when the worker has not seen this `key` yet. */
  schemas: { key: number; dir?: string; entries?: SchemaEntry[] };
  events?: unknown[];
  entries?: StreamEntry[];
}

/** What the worker answers. */
export type SandboxReply =
  | { kind: 'invalid'; diagnostics: Diagnostic[] }
  /** `stream`: the source stream (null for a schedule source). */
  | { kind: 'valid'; name: string; stream: string | null }
  | { kind: 'dry-run'; name: string; results: Record<string, unknown>[]; summary: Record<string, number> };

/** A request as the routes make it; the sandbox adds the id and the schemas. */
export type SandboxRequest = Omit<SandboxJob, 'id' | 'schemas'> & { schemas: SchemaRegistry };

// The worker is TypeScript when the engine runs from its sources (tests, development): then the
// thread registers the same loader first.
const FROM_SOURCES = import.meta.url.endsWith('.ts');
const WORKER_URL = new URL(`./sandbox-worker.${FROM_SOURCES ? 'ts' : 'js'}`, import.meta.url).href;
const BOOT = FROM_SOURCES
  ? `import(${JSON.stringify(tsxEsmApi())}).then((tsx) => { tsx.register(); return import(${JSON.stringify(WORKER_URL)}); })`
  : `import(${JSON.stringify(WORKER_URL)})`;

/** Where tsx's ESM loader API is (its package's `exports`), for a worker that loads TypeScript. */
function tsxEsmApi(): string {
  const manifest = createRequire(import.meta.url).resolve('tsx/package.json');
  const pkg = JSON.parse(readFileSync(manifest, 'utf8')) as { exports: Record<string, { import: { default: string } }> };
  return pathToFileURL(join(dirname(manifest), pkg.exports['./esm/api']!.import.default)).href;
}

interface Running {
  worker: Worker;
  ready: Promise<void>;
  /** The key of the schemas this worker has. */
  schemasKey?: number;
  pending?: { id: number; resolve: (r: SandboxReply) => void; reject: (e: Error) => void };
  /** Why the worker is going away, for the request it was running. */
  ending?: SandboxLimitError;
}

/**
 * Runs admin dry-runs and validations of pipeline YAML in a worker thread with a memory bound
 * (V8 resource limits) and a time bound per request, one request at a time. Whatever a submitted
 * pipeline or event does there — a string doubled until memory runs out, an expression that never
 * ends — ends that thread, not the engine: the request is answered with the bound it hit, and the
 * next request starts a fresh worker.
 */
export class AdminSandbox {
  private running?: Running;
  private queue: Promise<unknown> = Promise.resolve();
  private queued = 0;
  private nextId = 1;
  private readonly schemaKeys = new WeakMap<SchemaRegistry, number>();
  private nextSchemaKey = 1;
  private closed = false;

  constructor(private readonly opts: { limits: SandboxLimits; pluginSpecs: string[]; logger?: Logger }) {}

  /** Runs one request; throws SandboxLimitError when it went past a bound. */
  run(request: SandboxRequest): Promise<SandboxReply> {
    if (this.queued > this.opts.limits.maxQueued) {
      return Promise.reject(new SandboxLimitError('busy', `${this.queued} dry-runs and validations are waiting already; try again shortly`));
    }
    this.queued++;
    const result = this.queue.then(() => this.runNow(request)).finally(() => this.queued--);
    this.queue = result.catch(() => undefined);
    return result;
  }

  /** Stops the worker; requests after this fail. */
  async close(): Promise<void> {
    this.closed = true;
    const running = this.running;
    this.running = undefined;
    await running?.worker.terminate();
  }

  private async runNow(request: SandboxRequest): Promise<SandboxReply> {
    if (this.closed) throw new SandboxLimitError('crash', 'the engine is stopping');
    const running = this.running ?? this.start();
    await running.ready;
    const key = this.keyOf(request.schemas);
    const job: SandboxJob = {
      ...request,
      id: this.nextId++,
      schemas: { key, dir: request.schemas.dir, ...(running.schemasKey === key ? {} : { entries: request.schemas.list() }) },
    };
    running.schemasKey = key;
    return new Promise<SandboxReply>((resolve, reject) => {
      const { timeoutMs } = this.opts.limits;
      const timer = setTimeout(() => {
        this.end(running, new SandboxLimitError('time', `stopped after ${timeoutMs} ms, the time bound of a dry-run or validation (SYNAPSE_SANDBOX_TIMEOUT_MS)`));
      }, timeoutMs);
      running.pending = {
        id: job.id,
        resolve: (r) => { clearTimeout(timer); resolve(r); },
        reject: (e) => { clearTimeout(timer); reject(e); },
      };
      running.worker.postMessage(job);
    });
  }

  private keyOf(schemas: SchemaRegistry): number {
    let key = this.schemaKeys.get(schemas);
    if (key === undefined) this.schemaKeys.set(schemas, (key = this.nextSchemaKey++));
    return key;
  }

  private start(): Running {
    const { memoryMb } = this.opts.limits;
    const worker = new Worker(BOOT, {
      eval: true,
      workerData: { pluginSpecs: this.opts.pluginSpecs },
      // The engine's environment, as the engine sees it now (files on disk interpolate ${VAR}).
      env: SHARE_ENV,
      resourceLimits: { maxOldGenerationSizeMb: memoryMb, maxYoungGenerationSizeMb: Math.min(64, Math.max(8, memoryMb / 8)) },
      stdout: false,
      stderr: false,
    });
    // An idle worker never keeps the engine's process alive.
    worker.unref();
    let markReady!: () => void;
    let failStart!: (e: Error) => void;
    const running: Running = {
      worker,
      ready: new Promise<void>((resolve, reject) => { markReady = resolve; failStart = reject; }),
    };
    running.ready.catch(() => undefined);
    worker.on('message', (msg: { ready?: true; id?: number; reply?: SandboxReply; error?: string }) => {
      if (msg.ready) return markReady();
      const pending = running.pending;
      if (!pending || pending.id !== msg.id) return;
      running.pending = undefined;
      if (msg.error !== undefined) pending.reject(new Error(msg.error));
      else pending.resolve(msg.reply!);
    });
    worker.on('error', (err: Error & { code?: string }) => {
      const ending = err.code === 'ERR_WORKER_OUT_OF_MEMORY'
        ? new SandboxLimitError('memory', `ran out of its ${memoryMb} MB memory bound and was stopped (SYNAPSE_SANDBOX_MEMORY_MB)`)
        : new SandboxLimitError('crash', `the dry-run worker failed: ${errorMessage(err)}`);
      this.end(running, ending);
    });
    worker.on('exit', () => {
      if (this.running === running) this.running = undefined;
      const ending = running.ending ?? new SandboxLimitError('crash', 'the dry-run worker stopped');
      failStart(ending);
      running.pending?.reject(ending);
      running.pending = undefined;
    });
    this.running = running;
    return running;
  }

  /** Ends a worker for `why`: its request is answered with it once the thread is gone. */
  private end(running: Running, why: SandboxLimitError): void {
    running.ending ??= why;
    if (this.running === running) this.running = undefined;
    this.opts.logger?.warn({ limit: why.limit }, `admin sandbox: ${why.message}`);
    void running.worker.terminate();
  }
}
