import { spawn, type ChildProcess } from 'node:child_process';
import { copyFile, mkdir, mkdtemp, readdir, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { Cluster, Redis } from 'ioredis';
import { freePort, startRedisCluster } from '../../engine/runtime/redis-server.ts';
import type { Scenario } from './scenarios.ts';
import type { WorkloadSummary } from './events.ts';
import { loadStream } from './events.ts';
import { benchPipelineYaml } from './engine-side.ts';
import { acquireRedis, groupState, isDrained, redisCpuSeconds } from './redis.ts';
import { machineMeta, loadAverage } from './report.ts';
import { rate } from './side.ts';

/**
 * The scale-out bench (`--replicas N`, `--cluster`, `--streams K`): the events are split over K
 * input streams, one pipeline per stream, and N `synapse run` processes (each its own
 * SYNAPSE_CONSUMER and admin port) run all K pipelines on the same consumer groups. On a cluster
 * each stream's keys (input, output, DLQ, template) share one hash tag, and the tags are chosen so
 * that stream k lands on master k mod 3: the streams are spread over the masters and every
 * pipeline still settles in one script.
 *
 * The clock: every replica starts on empty input streams (its groups already made) and blocks in
 * XREADGROUP. Once all have logged "engine started", one script per stream appends the stream's
 * template entries (same ids) in one go — Redis runs a script atomically, so nothing is read
 * before it ends — and the clock starts when the last script has returned. It stops at the first
 * poll (every 10 ms) that finds every group drained: all entries read and acknowledged. CPU is
 * read at both moments: the engine processes' from /proc/<pid>/stat, each Redis node's from INFO cpu.
 */

export interface ScaleOutOptions {
  events: number;
  batch: number;
  seed: number;
  rounds: number;
  replicas: number;
  cluster: boolean;
  streams: number;
}

/** One measured round. */
export interface ScaleOutRound {
  /** From the end of the gate scripts until every group was seen drained. */
  seconds: number;
  eventsPerSec: number;
  /** CPU seconds of all engine processes together, and of each. */
  engineCpuSeconds: number | null;
  engineCpuByReplica: (number | null)[];
  /** CPU seconds of the Redis server(s) together, and of each master. */
  redisCpuSeconds: number;
  redisCpuByNode: number[];
  /** CPU microseconds per event: engines, Redis, both. */
  usPerEvent: { engine: number | null; redis: number; total: number | null };
  /** Entries in the output streams and the DLQs, all streams together. */
  outputs: { sunk: number; dlq: number };
  problems: string[];
}

export interface ScaleOutReport {
  benchmark: 'stream-throughput-scale-out';
  meta: ReturnType<typeof machineMeta> & {
    scenario: string;
    events: number;
    batch: number;
    rounds: number;
    seed: number;
    replicas: number;
    cluster: boolean;
    streams: number;
    /** Port of the Redis node each stream lives on (on a cluster: its master). */
    streamNodes: number[];
    redis: { version: string; owned: boolean; masters: number };
    workload: WorkloadSummary;
    loadSeconds: number;
    loadAverage: { before: number[]; after: number[] };
  };
  rounds: ScaleOutRound[];
  /** The round with the median events/s. */
  median: ScaleOutRound;
}

type Control = Redis | Cluster;

/** The Redis (one server or a cluster) a scale-out run uses. */
interface ScaleRedis {
  url: string;
  owned: boolean;
  version: string;
  control: Control;
  /** One connection per master (one server: the control connection itself). */
  masters: { port: number; conn: Redis }[];
  close(): Promise<void>;
}

async function acquire(cluster: boolean, tmp: string): Promise<ScaleRedis> {
  if (!cluster) {
    const r = await acquireRedis();
    const port = Number(new URL(r.url).port || 6379);
    return { url: r.url, owned: r.owned, version: r.version, control: r.control, masters: [{ port, conn: r.control }], close: () => r.close() };
  }
  process.stdout.write('starting a 3-master Redis Cluster ... ');
  const owned = await startRedisCluster({ dir: join(tmp, 'cluster'), masters: 3, persistent: false });
  console.log(owned.nodes.map((n) => n.port).join(', '));
  const control = new Cluster([{ host: '127.0.0.1', port: owned.nodes[0]!.port }], { redisOptions: { maxRetriesPerRequest: 3 } });
  control.on('error', () => undefined);
  const masters = owned.nodes.map((n) => ({ port: n.port, conn: new Redis(n.url, { maxRetriesPerRequest: 3 }) }));
  const version = /redis_version:(\S+)/.exec(await masters[0]!.conn.info('server'))?.[1] ?? 'unknown';
  return {
    url: owned.url, owned: true, version, control, masters,
    async close() {
      control.disconnect();
      for (const m of masters) m.conn.disconnect();
      await owned.close();
    },
  };
}

/**
 * One hash tag per stream. One server: `{<prefix>s<k>}`. A cluster: the first `{<prefix>s<k>-<j>}`
 * whose slot master k mod <masters> serves, so the streams are spread evenly over the masters.
 * Returns the tags and the port of the node each lands on.
 */
export async function streamTags(redis: ScaleRedis, prefix: string, streams: number): Promise<{ tags: string[]; nodes: number[] }> {
  if (!(redis.control instanceof Cluster)) return { tags: Array.from({ length: streams }, (_, k) => `{${prefix}s${k}}`), nodes: Array(streams).fill(redis.masters[0]!.port) };
  const probe = redis.masters[0]!.conn;
  const ranges = await probe.cluster('SLOTS');
  const ports = [...new Set(ranges.map((r) => r[2]![1]))].sort((a, b) => a - b);
  const tags: string[] = [];
  const nodes: number[] = [];
  for (let k = 0; k < streams; k++) {
    const want = ports[k % ports.length]!;
    for (let j = 0; ; j++) {
      if (j > 10_000) throw new Error(`no hash tag found for master ${want}`);
      const tag = `{${prefix}s${k}-${j}}`;
      const slot = Number(await probe.cluster('KEYSLOT', tag));
      const owner = ranges.find(([from, to]) => slot >= from && slot <= to)![2]![1];
      if (owner === want) {
        tags.push(tag);
        nodes.push(owner);
        break;
      }
    }
  }
  return { tags, nodes };
}

/** CPU seconds (user + system) of a process so far, from /proc/<pid>/stat; null where there is none. */
export async function processCpuSeconds(pid: number): Promise<number | null> {
  try {
    const stat = await readFile(`/proc/${pid}/stat`, 'utf8');
    const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    // Fields 14 and 15 of stat (utime, stime), in clock ticks: 100 per second on Linux.
    return (Number(fields[11]) + Number(fields[12])) / 100;
  } catch {
    return null;
  }
}

/** A `synapse run` replica. */
interface Replica {
  child: ChildProcess;
  consumer: string;
  started: Promise<void>;
  output(): string;
  stop(): Promise<void>;
}

/** Replicas running now: stopped by the cleanup that runs on SIGINT/SIGTERM too. */
const live = new Set<Replica>();

const ROOT = join(dirname(new URL(import.meta.url).pathname), '..', '..');
const SYNAPSE_BIN = join(ROOT, 'bin', 'synapse.mjs');

/** Starts `node bin/synapse.mjs run` as `consumer` on a free admin port; `started` resolves at "engine started". */
async function spawnReplica(consumer: string, redisUrl: string, pipelinesDir: string, schemasDir: string, pipelines: string[], timeoutMs: number): Promise<Replica> {
  const env: NodeJS.ProcessEnv = { ...process.env, SYNAPSE_CONSUMER: consumer, SYNAPSE_LOG_LEVEL: 'info' };
  delete env.REDIS_URL;
  const port = await freePort();
  const child = spawn(process.execPath, [SYNAPSE_BIN, 'run', '--pipelines', pipelinesDir, '--schemas', schemasDir, '--redis', redisUrl, '--port', String(port)], { cwd: ROOT, env, stdio: ['ignore', 'pipe', 'pipe'] });
  let out = '';
  const keep = (chunk: string) => (out = (out + chunk).slice(-8000));
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
  void exited.then(() => live.delete(replica));
  const started = new Promise<void>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`replica ${consumer} did not start in ${timeoutMs / 1000} s:\n${out}`)), timeoutMs);
    let partial = '';
    child.stdout!.setEncoding('utf8').on('data', (chunk: string) => {
      keep(chunk);
      const lines = (partial + chunk).split('\n');
      partial = lines.pop()!;
      for (const line of lines) {
        if (!line.includes('"engine started"')) continue;
        clearTimeout(timer);
        const running = (JSON.parse(line) as { pipelines?: string[] }).pipelines ?? [];
        const missing = pipelines.filter((p) => !running.includes(p));
        if (missing.length) reject(new Error(`replica ${consumer} started without ${missing.join(', ')}:\n${out}`));
        else resolve();
      }
    });
    child.once('exit', (code, signal) => {
      clearTimeout(timer);
      reject(new Error(`replica ${consumer} exited (${code ?? signal}) before it started:\n${out}`));
    });
  });
  started.catch(() => undefined);
  child.stderr!.setEncoding('utf8').on('data', keep);
  const replica: Replica = {
    child, consumer, started, output: () => out,
    async stop() {
      if (child.exitCode !== null || child.signalCode !== null) return;
      child.kill('SIGTERM');
      const killer = setTimeout(() => child.kill('SIGKILL'), 10_000);
      await exited;
      clearTimeout(killer);
    },
  };
  live.add(replica);
  return replica;
}

/** Copies the template's entries (same ids) onto the end of the input stream, atomically. */
const GATE_SCRIPT = `
local cursor = '-'
local n = 0
while true do
  local entries = redis.call('XRANGE', KEYS[1], cursor, '+', 'COUNT', 1000)
  for _, e in ipairs(entries) do
    redis.call('XADD', KEYS[2], e[1], unpack(e[2]))
    n = n + 1
  end
  if #entries < 1000 then return n end
  cursor = '(' .. entries[#entries][1]
end`;

/** Per-stream keys of one round. */
interface StreamKeys {
  template: string;
  input: string;
  output: string;
  dlq: string;
  count: number;
}

const GROUP = 'engine-group';

async function writeConfig(dir: string, scenario: Scenario, keys: StreamKeys[], batch: number, schemaFile: string) {
  const pipelinesDir = join(dir, 'pipelines');
  const schemasDir = join(dir, 'schemas');
  await mkdir(pipelinesDir, { recursive: true });
  await mkdir(schemasDir, { recursive: true });
  const shipped = await readFile(join(ROOT, scenario.pipelineFile), 'utf8');
  const names: string[] = [];
  for (const [k, key] of keys.entries()) {
    const name = `bench-pipeline-s${k}`;
    names.push(name);
    const spec = { redisUrl: '', input: key.input, output: key.output, dlq: key.dlq, group: GROUP, consumer: '', batch, total: key.count };
    await writeFile(join(pipelinesDir, `${name}.yaml`), benchPipelineYaml(shipped, spec, name));
  }
  const from = dirname(schemaFile);
  for (const f of await readdir(from)) if (f.endsWith('.json')) await copyFile(join(from, f), join(schemasDir, f));
  return { pipelinesDir, schemasDir, names };
}

async function redisCpu(redis: ScaleRedis): Promise<number[]> {
  return Promise.all(redis.masters.map((m) => redisCpuSeconds(m.conn)));
}

/** The checks: every group drained, outputs and DLQs together hold what the workload says. */
async function verify(control: Control, keys: StreamKeys[], workload: WorkloadSummary): Promise<{ problems: string[]; sunk: number; dlq: number }> {
  const problems: string[] = [];
  let sunk = 0;
  let dlq = 0;
  for (const key of keys) {
    const state = await groupState(control as Redis, key.input, GROUP);
    if (!isDrained(state, key.count)) problems.push(`${key.input}: group not drained: ${JSON.stringify(state)}`);
    sunk += await control.xlen(key.output);
    dlq += await control.xlen(key.dlq);
  }
  if (sunk !== workload.expectedSunk) problems.push(`output length: ${sunk}, expected ${workload.expectedSunk}`);
  if (dlq !== workload.expectedInvalid) problems.push(`DLQ length: ${dlq}, expected ${workload.expectedInvalid}`);
  return { problems, sunk, dlq };
}

const sum = (xs: number[]) => xs.reduce((a, b) => a + b, 0);
const sumOrNull = (xs: (number | null)[]) => (xs.some((x) => x === null) ? null : sum(xs as number[]));

async function runRound(ctx: { redis: ScaleRedis; scenario: Scenario; opts: ScaleOutOptions; tags: string[]; counts: number[]; workload: WorkloadSummary; tmp: string; schemaFile: string }, r: number): Promise<ScaleOutRound> {
  const { redis, opts } = ctx;
  const keys: StreamKeys[] = ctx.tags.map((tag, k) => ({
    template: `${tag}:template`, input: `${tag}:r${r}:in`, output: `${tag}:r${r}:out`, dlq: `${tag}:r${r}:dlq`, count: ctx.counts[k]!,
  }));
  for (const key of keys) await redis.control.xgroup('CREATE', key.input, GROUP, '0', 'MKSTREAM');
  const config = await writeConfig(await mkdtemp(join(ctx.tmp, `round-${r}-`)), ctx.scenario, keys, opts.batch, ctx.schemaFile);
  const timeoutMs = Math.max(60_000, opts.events);
  const replicas: Replica[] = [];
  try {
    process.stdout.write(`  ${opts.replicas} replica(s) starting ... `);
    for (let i = 0; i < opts.replicas; i++) replicas.push(await spawnReplica(`replica-${i + 1}`, redis.url, config.pipelinesDir, config.schemasDir, config.names, 60_000));
    await Promise.all(replicas.map((x) => x.started));
    process.stdout.write('consuming ... ');
    const engineCpu0 = await Promise.all(replicas.map((x) => processCpuSeconds(x.child.pid!)));
    const copied = await Promise.all(keys.map((key) => redis.control.eval(GATE_SCRIPT, 2, key.template, key.input) as Promise<number>));
    const t0 = performance.now();
    const redisCpuGate = await redisCpu(redis);
    keys.forEach((key, k) => {
      if (copied[k] !== key.count) throw new Error(`gate copied ${copied[k]} entries to ${key.input}, expected ${key.count}`);
    });
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      const states = await Promise.all(keys.map((key) => groupState(redis.control as Redis, key.input, GROUP)));
      if (states.every((s, k) => isDrained(s, keys[k]!.count))) break;
      if (Date.now() > deadline) throw new Error(`not drained within ${timeoutMs / 1000} s: ${JSON.stringify(states)}\n${replicas.map((x) => x.output()).join('\n')}`);
      if (replicas.some((x) => x.child.exitCode !== null)) throw new Error(`a replica exited while consuming:\n${replicas.map((x) => x.output()).join('\n')}`);
      await new Promise((res) => setTimeout(res, 10));
    }
    const t1 = performance.now();
    const engineCpu1 = await Promise.all(replicas.map((x) => processCpuSeconds(x.child.pid!)));
    const redisCpu1 = await redisCpu(redis);
    const seconds = (t1 - t0) / 1000;
    const byReplica = engineCpu1.map((c, i) => (c === null || engineCpu0[i] === null ? null : c - engineCpu0[i]!));
    // Redis CPU after the gate scripts (their own copying is not the engines' doing).
    const byNode = redisCpu1.map((c, i) => c - redisCpuGate[i]!);
    const engineCpu = sumOrNull(byReplica);
    const redisCpuTotal = sum(byNode);
    const checked = await verify(redis.control, keys, ctx.workload);
    const result: ScaleOutRound = {
      seconds, eventsPerSec: rate(opts.events, seconds),
      engineCpuSeconds: engineCpu, engineCpuByReplica: byReplica,
      redisCpuSeconds: redisCpuTotal, redisCpuByNode: byNode,
      usPerEvent: {
        engine: engineCpu === null ? null : (engineCpu * 1e6) / opts.events,
        redis: (redisCpuTotal * 1e6) / opts.events,
        total: engineCpu === null ? null : ((engineCpu + redisCpuTotal) * 1e6) / opts.events,
      },
      outputs: { sunk: checked.sunk, dlq: checked.dlq },
      problems: checked.problems,
    };
    console.log(`${result.eventsPerSec} events/s${result.problems.length ? ` — ${result.problems.length} problem(s)` : ''}`);
    return result;
  } finally {
    await Promise.all(replicas.map((x) => x.stop()));
    for (const key of keys) await redis.control.del(key.input, key.output, key.dlq);
  }
}

/** Runs the scale-out bench for one scenario. */
export async function runScaleOut(opts: ScaleOutOptions, scenario: Scenario, schemaFile: string, onCleanup: (fn: () => Promise<void>) => () => void): Promise<ScaleOutReport> {
  const loadBefore = loadAverage();
  const machine = machineMeta();
  const tmp = await mkdtemp(join(tmpdir(), 'synapse-bench-scale-'));
  let redis: ScaleRedis | undefined;
  const cleanup = async () => {
    await Promise.all([...live].map((x) => x.stop()));
    await redis?.close();
    await rm(tmp, { recursive: true, force: true });
  };
  const release = onCleanup(cleanup);
  const prefix = `synapse-bench:${process.pid}-${Date.now()}:`;
  let tags: string[] = [];
  try {
    redis = await acquire(opts.cluster, tmp);
    const spread = await streamTags(redis, prefix, opts.streams);
    tags = spread.tags;
    process.stdout.write(`generating ${opts.events} events over ${opts.streams} stream(s) ... `);
    const { payloads, ...workload } = scenario.workload(opts.events, opts.seed);
    const counts: number[] = [];
    let loadSeconds = 0;
    for (let k = 0; k < opts.streams; k++) {
      const part = payloads.filter((_, i) => i % opts.streams === k);
      counts.push(part.length);
      loadSeconds += await loadStream(redis.control as Redis, `${tags[k]}:template`, part);
    }
    console.log(`loaded in ${loadSeconds.toFixed(2)} s`);
    const rounds: ScaleOutRound[] = [];
    for (let r = 0; r < opts.rounds; r++) {
      if (opts.rounds > 1) console.log(`round ${r + 1} of ${opts.rounds}`);
      rounds.push(await runRound({ redis, scenario, opts, tags, counts, workload, tmp, schemaFile }, r));
    }
    const median = [...rounds].sort((a, b) => a.eventsPerSec - b.eventsPerSec)[Math.floor(rounds.length / 2)]!;
    return {
      benchmark: 'stream-throughput-scale-out',
      meta: {
        ...machine, scenario: scenario.name, events: opts.events, batch: opts.batch, rounds: opts.rounds, seed: opts.seed,
        replicas: opts.replicas, cluster: opts.cluster, streams: opts.streams, streamNodes: spread.nodes,
        redis: { version: redis.version, owned: redis.owned, masters: redis.masters.length },
        workload, loadSeconds, loadAverage: { before: loadBefore, after: loadAverage() },
      },
      rounds,
      median,
    };
  } finally {
    release();
    if (redis) for (const tag of tags) await redis.control.del(`${tag}:template`).catch(() => undefined);
    await cleanup();
  }
}

const fmt = (x: number | null, digits = 1) => (x === null ? 'n/a' : x.toFixed(digits));

export function formatScaleOut(r: ScaleOutReport): string {
  const m = r.median;
  const where = r.meta.cluster ? `3-master cluster (streams on ports ${r.meta.streamNodes.join(', ')})` : `one Redis ${r.meta.redis.version}`;
  const lines = [
    `  ${r.meta.replicas} replica(s), ${r.meta.streams} stream(s), ${where}; ${r.meta.events} events, batch ${r.meta.batch}`,
    `  events/s      ${m.eventsPerSec}${r.rounds.length > 1 ? ` (median of ${r.rounds.map((x) => x.eventsPerSec).join(', ')})` : ''}  in ${m.seconds.toFixed(2)} s`,
    `  CPU/event     engines ${fmt(m.usPerEvent.engine)} µs + Redis ${fmt(m.usPerEvent.redis)} µs = ${fmt(m.usPerEvent.total)} µs`,
    `  engine CPU    ${m.engineCpuByReplica.map((c) => fmt(c, 2)).join(' + ')} s;  Redis CPU ${m.redisCpuByNode.map((c) => c.toFixed(2)).join(' + ')} s`,
    `  load average  ${r.meta.loadAverage.before.join(' ')} → ${r.meta.loadAverage.after.join(' ')} (${r.meta.cpus} cores)`,
    `  checks        ${r.rounds.every((x) => x.problems.length === 0) ? `clean (groups drained; ${m.outputs.sunk} sunk, ${m.outputs.dlq} dead-lettered, as expected)` : r.rounds.flatMap((x) => x.problems).join('; ')}`,
  ];
  return lines.join('\n');
}

export function scaleOutIsClean(r: ScaleOutReport): boolean {
  return r.rounds.every((x) => x.problems.length === 0);
}

export async function writeScaleOut(file: string, r: ScaleOutReport): Promise<void> {
  await mkdir(dirname(file), { recursive: true });
  await writeFile(file, `${JSON.stringify(r, null, 2)}\n`);
}
