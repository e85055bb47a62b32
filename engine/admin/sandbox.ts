import { readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { SHARE_ENV, Worker } from 'node:worker_threads';
import type { Logger } from 'pino';
import type { SchemaEntry, SchemaRegistry } from '../config/schema-registry.ts';
import { SandboxLimitError, errorMessage, type Diagnostic } from '../errors.ts';
import type { StreamEntry } from '../runner/codec.ts';
import { numericSetting, type NumericSetting } from '../settings.ts';

/** The bounds of the thread admin dry-runs and validations run in (docs/security.md). */
export interface SandboxLimits {
  /** Heap of the worker thread, MB (SYNAPSE_SANDBOX_MEMORY_MB, default 512). */
  memoryMb: number;
  /** Wall time of one request in the worker, ms (SYNAPSE_SANDBOX_TIMEOUT_MS, default 30 s); a worker's start has 60 s of its own. */
  timeoutMs: number;
  /** Bytes a dry-run may read from its stream and may answer with (SYNAPSE_SANDBOX_MAX_BYTES, default 16 MiB). */
  maxBytes: number;
  /** Requests waiting for the worker beyond the one it runs (default 16). */
  maxQueued: number;
}

export const DEFAULT_SANDBOX_LIMITS: SandboxLimits = { memoryMb: 512, timeoutMs: 30_000, maxBytes: 16 * 1024 * 1024, maxQueued: 16 };

/** The limits set in the environment, over the defaults. */
export function sandboxLimitsFromEnv(env: NodeJS.ProcessEnv = process.env): SandboxLimits {
  const num = (name: NumericSetting, fallback: number) => numericSetting(name, fallback, env);
  const d = DEFAULT_SANDBOX_LIMITS;
  return {
    memoryMb: num('SYNAPSE_SANDBOX_MEMORY_MB', d.memoryMb),
    timeoutMs: num('SYNAPSE_SANDBOX_TIMEOUT_MS', d.timeoutMs),
    maxBytes: num('SYNAPSE_SANDBOX_MAX_BYTES', d.maxBytes),
    maxQueued: d.maxQueued,
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
  | { kind: 'valid'; name: string; stream: string | null; warnings: Diagnostic[] }
  /**
   * `body`: the reply `{ results, summary }` as JSON bytes, made in the worker (its size counted
   * against the worker's heap and `maxBytes`) and handed over without a copy.
   */
  | { kind: 'dry-run'; name: string; body: Uint8Array };

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

/** How long a worker may take to start (load the engine's code and the sink plugins). */
const STARTUP_TIMEOUT_MS = 60_000;

interface Running {
  worker: Worker;
  ready: Promise<void>;
  /** The key of the schemas this worker has. */
  schemasKey?: number;
  pending?: { id: number; resolve: (r: SandboxReply) => void; reject: (e: Error) => void };
  /** Why the worker is going away, for the request it was running; set, it answers nothing more. */
  ending?: SandboxLimitError;
}

/** What the worker posts: ready, a reply, or the error of a request (with its stack, for the log). */
type WorkerMessage = { ready: true } | { id: number; reply: SandboxReply } | { id: number; error: string; stack?: string; limit?: 'size' };

/**
 * Runs admin dry-runs and validations of pipeline YAML in a worker thread with a memory bound
 * (V8 resource limits) and a time bound per request, one request at a time. Whatever a submitted
 * pipeline or event does there — a string doubled until memory runs out, an expression that never
 * ends, a reply of gigabytes — ends that request in that thread, not the engine: the request is
 * answered with the bound it hit, and the next request starts a fresh worker when it had to go.
 */
export class AdminSandbox {
  private running?: Running;
  private queue: Promise<unknown> = Promise.resolve();
  /** Requests waiting, not counting the one running. */
  private waiting = 0;
  private nextId = 1;
  private readonly schemaKeys = new WeakMap<SchemaRegistry, number>();
  private nextSchemaKey = 1;
  private closed = false;

  constructor(private readonly opts: { limits: SandboxLimits; pluginSpecs: string[]; logger?: Logger }) {}

  get limits(): SandboxLimits {
    return this.opts.limits;
  }

  /**
   * Runs one request; throws SandboxLimitError when it went past a bound. `signal`: the caller
   * went away; a request still waiting for its turn is dropped.
   */
  run(request: SandboxRequest, signal?: AbortSignal): Promise<SandboxReply> {
    if (this.closed) return Promise.reject(stopping());
    if (this.waiting >= this.opts.limits.maxQueued) {
      return Promise.reject(new SandboxLimitError('busy', `${this.waiting} dry-runs and validations are waiting for the one running; try again shortly`));
    }
    this.waiting++;
    const result = this.queue.then(() => {
      this.waiting--;
      if (signal?.aborted) throw new SandboxLimitError('gone', 'the client went away before its turn');
      return this.runNow(request);
    });
    this.queue = result.catch(() => undefined);
    return result;
  }

  /** Stops the worker: the request it runs and those waiting are answered "stopping"; later ones too. */
  async close(): Promise<void> {
    this.closed = true;
    const running = this.running;
    if (running) {
      running.ending ??= stopping();
      this.running = undefined;
      await running.worker.terminate();
    }
  }

  private async runNow(request: SandboxRequest): Promise<SandboxReply> {
    if (this.closed) throw stopping();
    const running = this.running ?? this.start();
    const key = this.keyOf(request.schemas);
    return new Promise<SandboxReply>((resolve, reject) => {
      const { timeoutMs } = this.opts.limits;
      let timer: NodeJS.Timeout | undefined;
      const id = this.nextId++;
      running.pending = {
        id,
        resolve: (r) => { clearTimeout(timer); resolve(r); },
        reject: (e) => { clearTimeout(timer); reject(e); },
      };
      running.ready.then(() => {
        if (running.pending?.id !== id) return; // the worker ended while starting
        const job: SandboxJob = {
          ...request,
          id,
          schemas: { key, dir: request.schemas.dir, ...(running.schemasKey === key ? {} : { entries: request.schemas.list() }) },
        };
        try {
          running.worker.postMessage(job);
        } catch (err) {
          // The request cannot be copied to the thread (nested too deep, say): the worker is fine.
          running.pending = undefined;
          reject(new SandboxLimitError('input', `the request cannot be handed to the dry-run thread: ${errorMessage(err)}`));
          return;
        }
        running.schemasKey = key;
        timer = setTimeout(() => {
          this.end(running, new SandboxLimitError('time', `stopped after ${timeoutMs} ms, the time bound of a dry-run or validation (SYNAPSE_SANDBOX_TIMEOUT_MS)`));
        }, timeoutMs);
      }, () => undefined);
    });
  }

  private keyOf(schemas: SchemaRegistry): number {
    let key = this.schemaKeys.get(schemas);
    if (key === undefined) this.schemaKeys.set(schemas, (key = this.nextSchemaKey++));
    return key;
  }

  private start(): Running {
    const { memoryMb, maxBytes } = this.opts.limits;
    const worker = new Worker(BOOT, {
      eval: true,
      workerData: { pluginSpecs: this.opts.pluginSpecs, maxBytes },
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
    // A worker that does not start (a plugin hanging as it loads) is given up on.
    const starting = setTimeout(() => {
      this.end(running, new SandboxLimitError('crash', `the dry-run thread did not start within ${STARTUP_TIMEOUT_MS / 1000} s; see the engine log`), new Error('sandbox worker start timed out'));
    }, STARTUP_TIMEOUT_MS);
    starting.unref();
    worker.on('message', (msg: WorkerMessage) => {
      if ('ready' in msg) {
        clearTimeout(starting);
        return markReady();
      }
      const pending = running.pending;
      // A reply after the time bound fired (or to a request that is gone) is not answered.
      if (running.ending || !pending || pending.id !== msg.id) return;
      running.pending = undefined;
      if ('reply' in msg) return pending.resolve(msg.reply);
      if (msg.limit === 'size') return pending.reject(new SandboxLimitError('size', msg.error));
      this.opts.logger?.error({ err: { message: msg.error, stack: msg.stack } }, 'admin sandbox: a dry-run or validation failed');
      pending.reject(new SandboxLimitError('crash', 'the dry-run or validation failed inside its thread; see the engine log'));
    });
    worker.on('messageerror', (err) => {
      this.end(running, new SandboxLimitError('crash', 'a reply of the dry-run thread could not be read; see the engine log'), err);
    });
    worker.on('error', (err: Error & { code?: string }) => {
      const ending = err.code === 'ERR_WORKER_OUT_OF_MEMORY'
        ? new SandboxLimitError('memory', `ran out of its ${memoryMb} MB memory bound and was stopped (SYNAPSE_SANDBOX_MEMORY_MB)`)
        : new SandboxLimitError('crash', 'the dry-run thread failed; see the engine log');
      this.end(running, ending, ending.limit === 'crash' ? err : undefined);
    });
    worker.on('exit', () => {
      clearTimeout(starting);
      if (this.running === running) this.running = undefined;
      const ending = running.ending ?? new SandboxLimitError('crash', 'the dry-run thread stopped; see the engine log');
      failStart(ending);
      running.pending?.reject(ending);
      running.pending = undefined;
    });
    this.running = running;
    return running;
  }

  /** Ends a worker for `why`: its request is answered with it once the thread is gone. */
  private end(running: Running, why: SandboxLimitError, err?: unknown): void {
    running.ending ??= why;
    if (this.running === running) this.running = undefined;
    if (err) this.opts.logger?.error({ err }, `admin sandbox: ${why.message}`);
    void running.worker.terminate();
  }
}

function stopping(): SandboxLimitError {
  return new SandboxLimitError('stopping', 'the engine is stopping');
}
