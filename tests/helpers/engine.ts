import { createHash, randomUUID } from 'node:crypto';
import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { FastifyInstance, InjectOptions, LightMyRequestResponse } from 'fastify';
import type { Redis } from 'ioredis';
import { pino, type Logger } from 'pino';
import { buildAdminServer, type AdminOptions } from '../../engine/admin/server.ts';
import { ConfigWatcher } from '../../engine/runtime/config-watcher.ts';
import { Engine } from '../../engine/runtime/engine.ts';
import { afterAll, afterEach, beforeAll } from 'vitest';
import { startTestRedis, type TestRedis } from './redis.ts';

/** A fresh key (stream, group, service name) for one test. */
export function key(label = ''): string {
  return `test-${randomUUID()}${label ? `-${label}` : ''}`;
}

/** sha256 of a text, hex: what the admin API shows as `hash` / `fileHash` and PUT takes in If-Match. */
export function sha256(text: string): string {
  return createHash('sha256').update(text).digest('hex');
}

/** `$id` of the `ping` schema written by `PING_SCHEMA` (its `event` is the const `ping`). */
export const PING_ID = 'https://synapse.test/admin/ping.json';
/** `$id` of the `pong` schema (its `event` is the const `pong`). */
export const PONG_ID = 'https://synapse.test/admin/pong.json';

/** `{ event: "ping", data: { n: integer, keep?: boolean, tag?: string } }`, event type chosen by `properties.event.const`. */
export function pingSchema(opts: { requireTag?: boolean } = {}): Record<string, unknown> {
  return {
    $schema: 'https://json-schema.org/draft/2020-12/schema',
    $id: PING_ID,
    type: 'object',
    required: ['event', 'data'],
    properties: {
      event: { const: 'ping' },
      source: { type: 'string' },
      timestamp: { type: 'string' },
      data: {
        type: 'object',
        required: opts.requireTag ? ['n', 'tag'] : ['n'],
        properties: { n: { type: 'integer' }, keep: { type: 'boolean' }, tag: { type: 'string' } },
      },
    },
  };
}

export function pongSchema(): Record<string, unknown> {
  return {
    $schema: 'https://json-schema.org/draft/2020-12/schema',
    $id: PONG_ID,
    type: 'object',
    required: ['event'],
    properties: { event: { const: 'pong' }, data: { type: 'object' } },
  };
}

/** The schema files every admin suite starts with. */
export function defaultSchemas(): Record<string, Record<string, unknown>> {
  return { 'ping.json': pingSchema(), 'pong.json': pongSchema() };
}

/** A ping event; `keep: false` makes the standard pipeline filter it out. */
export function ping(n: number, data: Record<string, unknown> = {}): Record<string, unknown> {
  return { event: 'ping', source: 'admin-test', timestamp: '2026-11-26T10:00:00Z', data: { n, keep: true, ...data } };
}

/**
 * The suites' standard pipeline as YAML text, one key per line so tests can point at lines:
 * ping events from `stream`, validated (on_invalid: dlq), `data.keep` kept, transformed to
 * `{ n, version }` (`n = 13` fails the transform with `$error`), published to `out`.
 */
export function pipelineYaml(o: {
  name: string;
  stream: string;
  out: string;
  version?: number;
  validate?: boolean;
  onInvalid?: 'dlq' | 'drop';
  filter?: string | null;
  transform?: string;
  start?: string;
  blockMs?: number;
  batch?: number;
  extra?: string;
}): string {
  const lines = [
    `name: ${o.name}`,
    'source:',
    `  stream: ${o.stream}`,
    `  start: "${o.start ?? '0'}"`,
    `  block_ms: ${o.blockMs ?? 100}`,
    `  batch: ${o.batch ?? 100}`,
  ];
  if (o.validate !== false) lines.push('validate:', `  schema: ${PING_ID}`, `  on_invalid: ${o.onInvalid ?? 'dlq'}`);
  if (o.filter !== null) lines.push(`filter: ${JSON.stringify(o.filter ?? 'data.keep = true')}`);
  lines.push(`transform: ${JSON.stringify(o.transform ?? `data.n = 13 ? $error("thirteen is unlucky") : { "n": data.n, "version": ${o.version ?? 1} }`)}`);
  lines.push('sink:', '  type: publish', `  with: { stream: ${o.out} }`, 'retry: { attempts: 2, backoff: fixed, delay_ms: 5 }');
  if (o.extra) lines.push(o.extra);
  return lines.join('\n') + '\n';
}

/** A started engine with its admin API, over temp pipeline and schema dirs. */
export interface EngineFixture {
  engine: Engine;
  app: FastifyInstance;
  /** The temp dir holding `pipelines/` and `schemas/`. */
  dir: string;
  pipelinesDir: string;
  schemasDir: string;
  redis: TestRedis;
  /** A plain client for the test's own reads and writes. */
  client: Redis;
  watcher?: ConfigWatcher;
  /** Injects a request, with the bearer token when one is set (unless `auth: false`). */
  inject(opts: InjectOptions & { auth?: boolean }): Promise<LightMyRequestResponse>;
  /** Writes a pipeline file (no reload unless the watcher is on). */
  writePipeline(name: string, yaml: string): Promise<string>;
  writeSchema(file: string, schema: Record<string, unknown> | string): Promise<string>;
  close(): Promise<void>;
}

/**
 * Writes `pipelines` (`name` → YAML, as `<name>.yaml`) and `schemas` (file → JSON) to a temp
 * dir, starts an Engine on it with a silent logger, and builds the admin API on it. With
 * `watch`, a ConfigWatcher watches both dirs. Pass `redis` to share one server across a suite
 * (then `close()` leaves it running); otherwise a server is started and stopped with the fixture.
 */
export async function startEngine(opts: {
  pipelines?: Record<string, string>;
  schemas?: Record<string, Record<string, unknown> | string>;
  token?: string;
  redis?: TestRedis;
  /** Without `redis`: start a redis-server of the fixture's own even when REDIS_URL is set (a test that stops it). */
  ownRedis?: boolean;
  watch?: boolean;
  debounceMs?: number;
  /** Accept pipeline files that fail to load (default: such a file fails the start). */
  allowRejected?: boolean;
  /** More options of the admin server (limits, allow-lists). */
  admin?: Partial<AdminOptions>;
  /** The engine's logger (default: silent). */
  logger?: Logger;
} = {}): Promise<EngineFixture> {
  const redis = opts.redis ?? (await startTestRedis({ own: opts.ownRedis }));
  const ownsRedis = !opts.redis;
  const dir = await mkdtemp(join(tmpdir(), 'synapse-admin-'));
  const pipelinesDir = join(dir, 'pipelines');
  const schemasDir = join(dir, 'schemas');
  await mkdir(pipelinesDir);
  await mkdir(schemasDir);
  const writePipeline = async (name: string, yaml: string) => {
    const file = join(pipelinesDir, `${name}.yaml`);
    await writeFile(file, yaml);
    return file;
  };
  const writeSchema = async (file: string, schema: Record<string, unknown> | string) => {
    const path = join(schemasDir, file);
    await writeFile(path, typeof schema === 'string' ? schema : JSON.stringify(schema, null, 2));
    return path;
  };
  for (const [file, schema] of Object.entries(opts.schemas ?? defaultSchemas())) await writeSchema(file, schema);
  for (const [name, yaml] of Object.entries(opts.pipelines ?? {})) await writePipeline(name, yaml);

  const logger = opts.logger ?? pino({ level: 'silent' });
  const engine = new Engine({ redisUrl: redis.url, pipelinesDir, schemasDir, logger, consumer: `admin-it-${randomUUID().slice(0, 8)}` });
  let app: FastifyInstance | undefined;
  let watcher: ConfigWatcher | undefined;
  const client = redis.client();
  const close = async () => {
    await watcher?.close();
    await app?.close();
    await engine.stop();
    client.disconnect();
    if (ownsRedis) await redis.close();
    await rm(dir, { recursive: true, force: true });
  };
  try {
    await engine.start();
    if (engine.rejected.size && !opts.allowRejected) {
      throw new Error(`pipelines rejected: ${JSON.stringify([...engine.rejected])}`);
    }
    app = await buildAdminServer({ engine, logger, token: opts.token, ...opts.admin });
    await app.ready();
    if (opts.watch) {
      watcher = new ConfigWatcher(engine, logger, opts.debounceMs);
      await watcher.start();
    }
  } catch (err) {
    await close();
    throw err;
  }
  const theApp = app;
  return {
    engine, app: theApp, dir, pipelinesDir, schemasDir, redis, client, watcher,
    inject({ auth = true, ...req }) {
      const headers = { ...(req.headers ?? {}) } as Record<string, string>;
      if (opts.token && auth && !('authorization' in headers)) headers.authorization = `Bearer ${opts.token}`;
      return theApp.inject({ ...req, headers });
    },
    writePipeline,
    writeSchema,
    close,
  };
}

/** XADDs each event as a `payload` field (a string is written as is); returns the entry ids. */
export async function publish(redis: Redis, stream: string, events: readonly (Record<string, unknown> | string)[]): Promise<string[]> {
  if (events.length === 0) return [];
  const multi = redis.multi();
  for (const e of events) multi.xadd(stream, '*', 'payload', typeof e === 'string' ? e : JSON.stringify(e));
  const results = (await multi.exec()) ?? [];
  return results.map(([err, id]) => {
    if (err) throw err;
    return id as string;
  });
}

/** Every entry of a stream, oldest first, its fields as an object. */
export async function entries(redis: Redis, stream: string): Promise<{ id: string; fields: Record<string, string> }[]> {
  const out: { id: string; fields: Record<string, string> }[] = [];
  let start = '-';
  for (;;) {
    const rows = (await redis.xrange(stream, start, '+', 'COUNT', 1000)) as [string, string[]][];
    for (const [id, flat] of rows) {
      const fields: Record<string, string> = {};
      for (let i = 0; i < flat.length; i += 2) fields[flat[i]!] = flat[i + 1]!;
      out.push({ id, fields });
    }
    if (rows.length < 1000) return out;
    start = `(${rows[rows.length - 1]![0]}`;
  }
}

/** The JSON payloads of a stream's entries, oldest first. */
export async function payloads<T = Record<string, unknown>>(redis: Redis, stream: string): Promise<T[]> {
  return (await entries(redis, stream)).map((e) => JSON.parse(e.fields.payload!) as T);
}

/** XINFO GROUPS of a stream as objects (`name`, `pending`, `lag`, `last-delivered-id`, ...). */
export async function groupsOf(redis: Redis, stream: string): Promise<Record<string, unknown>[]> {
  const rows = (await redis.xinfo('GROUPS', stream)) as unknown[][];
  return rows.map((row) => {
    const g: Record<string, unknown> = {};
    for (let i = 0; i < row.length; i += 2) g[String(row[i])] = row[i + 1];
    return g;
  });
}

/** The value of one sample of a Prometheus text exposition, or undefined when absent. */
export function metricValue(text: string, name: string, labels: Record<string, string> = {}): number | undefined {
  for (const line of text.split('\n')) {
    if (line.startsWith('#')) continue;
    const m = /^([a-zA-Z_:][a-zA-Z0-9_:]*)(?:\{(.*)\})?\s+(\S+)$/.exec(line);
    if (!m || m[1] !== name) continue;
    const have: Record<string, string> = {};
    for (const lm of (m[2] ?? '').matchAll(/([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\]|\\.)*)"/g)) have[lm[1]!] = lm[2]!;
    if (Object.entries(labels).every(([k, v]) => have[k] === v) && Object.keys(have).length === Object.keys(labels).length) return Number(m[3]);
  }
  return undefined;
}

/** Asserts nothing in an error reply looks like a stack trace. */
export function hasStackTrace(body: string): boolean {
  return /\bat [^\s]+ \(|(\n|\\n)\s+at |"stack"|\.[cm]?[jt]s:\d+:\d+\)/.test(body);
}

/**
 * The usual suite set-up: one Redis for the file, and `start()` for engine fixtures that are
 * closed after each test. Call at the top level of a test file.
 */
export function useEngines(): { start(opts?: Parameters<typeof startEngine>[0]): Promise<EngineFixture> } {
  let redis: TestRedis | undefined;
  const open: EngineFixture[] = [];
  beforeAll(async () => {
    redis = await startTestRedis();
  });
  afterEach(async () => {
    await Promise.all(open.splice(0).map((f) => f.close()));
  });
  afterAll(async () => {
    await redis?.close();
  });
  return {
    async start(opts = {}) {
      const f = await startEngine({ redis, ...opts });
      open.push(f);
      return f;
    },
  };
}
