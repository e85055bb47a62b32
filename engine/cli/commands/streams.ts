import { listDlq, type RedriveReport } from '../../runtime/dlq.ts';
import { ReplayJobs, type ReplayJob, type ReplayRequest } from '../../runtime/replay.ts';
import { silentLogger } from '../../logger.ts';
import { openRedis, type RedisConnection } from '../../runtime/redis-client.ts';
import { SynapseError } from '../../errors.ts';
import { redisUrlFrom } from '../redis-url.ts';

function connect(opts: { redis?: string }): Promise<RedisConnection> {
  return openRedis(redisUrlFrom(opts), { maxRetriesPerRequest: 3 });
}

/** How many entries `synapse tail` shows before following, unless --last or --from says otherwise. */
export const TAIL_LAST = 10;

/**
 * `synapse tail STREAM`: like `tail -f`, prints the last entries (`--last N`, default 10; 0 for
 * none), then each new one, as JSON lines, until interrupted. `--from ID` starts after that id
 * instead.
 */
export async function tailCommand(stream: string, opts: { redis?: string; from?: string; last?: string }): Promise<number> {
  const last = opts.last === undefined ? TAIL_LAST : Number(opts.last);
  if (!Number.isInteger(last) || last < 0) throw new SynapseError(`--last must be a whole number of entries (0 for only new ones), got '${opts.last}'`);
  const redis = await connect(opts);
  let running = true;
  process.once('SIGINT', () => {
    running = false;
    redis.disconnect();
  });
  const print = (id: string, fields: string[]) => {
    const obj: Record<string, unknown> = {};
    for (let i = 0; i < fields.length; i += 2) obj[fields[i]!] = fields[i + 1];
    if (typeof obj.payload === 'string') {
      try {
        obj.payload = JSON.parse(obj.payload);
      } catch {
        // Keep the raw text.
      }
    }
    process.stdout.write(`${JSON.stringify({ id, ...obj })}\n`);
  };
  const showRecent = async (): Promise<string> => {
    // The newest entries, oldest first; then follow from the newest one (or from now).
    const recent = last > 0 ? ((await redis.xrevrange(stream, '+', '-', 'COUNT', last)) as [string, string[]][]).reverse() : [];
    for (const [id, fields] of recent) print(id, fields);
    return recent.at(-1)?.[0] ?? (await lastId(redis, stream));
  };
  let cursor: string = opts.from ?? (await showRecent());
  while (running) {
    const reply = await redis.xread('BLOCK', 1000, 'STREAMS', stream, cursor).catch((err) => {
      if (running) throw err;
      return null;
    });
    for (const [, entries] of reply ?? []) {
      for (const [id, fields] of entries) {
        cursor = id;
        print(id, fields);
      }
    }
  }
  return 0;
}

/** The id of a stream's newest entry (`0` for none yet): reading after it misses nothing added meanwhile, unlike `$`. */
async function lastId(redis: RedisConnection, stream: string): Promise<string> {
  const newest = (await redis.xrevrange(stream, '+', '-', 'COUNT', 1)) as [string, string[]][];
  return newest[0]?.[0] ?? '0';
}

/** `synapse dlq list STREAM` and `synapse dlq redrive STREAM [--ids a,b] [--count N]`. */
export async function dlqCommand(action: string, stream: string, opts: { redis?: string; ids?: string; count?: string; from?: string; admin?: string }): Promise<number> {
  const redis = await connect(opts);
  try {
    if (action === 'list') {
      const entries = await listDlq(redis, stream, { from: opts.from, count: opts.count ? Number(opts.count) : 100 });
      for (const e of entries) process.stdout.write(`${JSON.stringify(e)}\n`);
      process.stderr.write(`${entries.length} entr${entries.length === 1 ? 'y' : 'ies'} of ${await redis.xlen(stream)} in ${stream}\n`);
      return 0;
    }
    if (action === 'redrive') return redriveThroughAdmin(stream, opts);
    throw new SynapseError(`unknown dlq action '${action}': use list or redrive`);
  } finally {
    redis.disconnect();
  }
}

/**
 * `synapse replay STREAM --from T --to T [--types a,b] --to-stream S`: copies a time range
 * (optionally some event types) to another stream, with a progress bar on stderr; with
 * `--pipeline NAME`, asks the running engine (POST /replay) to run it through that pipeline and
 * follows its progress. Prints the job as one JSON line; exit 0 when it is done. Ctrl-C (or
 * SIGTERM) stops the replay after the chunk in hand (through the engine's DELETE /replay/:id
 * when it runs there) and exits 1 once it has stopped; a second one quits at once.
 */
export async function replayCommand(stream: string, opts: { redis?: string; from: string; to?: string; types?: string; toStream?: string; pipeline?: string; admin?: string }): Promise<number> {
  // Without --to, up to now: what is in the stream when the replay starts.
  const req: ReplayRequest = { stream, from: opts.from, to: opts.to ?? new Date().toISOString(), types: opts.types?.split(',').filter(Boolean), toStream: opts.toStream, pipeline: opts.pipeline };
  const interrupt = onInterrupt();
  try {
    if (opts.pipeline) return await replayThroughAdmin(req, (opts.admin ?? process.env.SYNAPSE_ADMIN_URL ?? 'http://127.0.0.1:8080').replace(/\/+$/, ''), interrupt);
    return await replayHere(req, opts, interrupt);
  } finally {
    interrupt.remove();
  }
}

async function replayHere(req: ReplayRequest, opts: { redis?: string }, interrupt: Interrupt): Promise<number> {
  const redis = await connect(opts);
  try {
    const jobs = new ReplayJobs(() => redis, () => undefined, silentLogger);
    const why = jobs.check(req);
    if (why) throw new SynapseError(why);
    const job = await new Promise<ReplayJob>((resolve) => {
      const started = jobs.start(req, (j) => {
        drawProgress(j.progress, `${j.matched} matched, ${j.written} written`);
        if (j.status !== 'running') resolve(j);
      });
      interrupt.onFirst(() => jobs.cancel(started.id));
    });
    process.stderr.write('\n');
    if (job.status === 'failed') throw new SynapseError(`replay failed: ${job.error ?? ''}`);
    const { status, scanned, matched, written, lastId } = job;
    process.stdout.write(`${JSON.stringify({ status, scanned, matched, written, toStream: req.toStream, lastId })}\n`);
    return status === 'done' ? 0 : 1;
  } finally {
    redis.disconnect();
  }
}

async function replayThroughAdmin(req: ReplayRequest, admin: string, interrupt: Interrupt): Promise<number> {
  const headers: Record<string, string> = { 'content-type': 'application/json' };
  const auth: Record<string, string> = process.env.SYNAPSE_ADMIN_TOKEN ? { authorization: `Bearer ${process.env.SYNAPSE_ADMIN_TOKEN}` } : {};
  // The job runs in the engine: it must not go on there once this command has ended. A Ctrl-C
  // that comes while the request is on its way cancels the job as soon as it has an id.
  let id: string | undefined;
  let cancelled = false;
  let answer: () => void = () => undefined;
  const posted = new Promise<void>((r) => (answer = r));
  interrupt.onFirst(async () => {
    await posted;
    if (!id) return;
    const cancel = await fetch(`${admin}/replay/${id}`, { method: 'DELETE', headers: auth });
    cancelled = cancel.status === 202;
    if (cancelled) process.stderr.write('the engine stops the replay after the chunk in hand\n');
    // 409: it finished meanwhile, which the next poll shows.
    else if (cancel.status !== 409) process.stderr.write(`the engine did not cancel the replay: ${cancel.status} ${await cancel.text()}\n`);
  });
  interrupt.onQuit(() => {
    if (cancelled) return undefined;
    if (id) return `replay ${id} may still be running in the engine: DELETE ${admin}/replay/${id} stops it`;
    return 'the engine may have started the replay: its log says "replay started" with its id, which DELETE /replay/:id stops';
  });
  let job: { id: string; status: string; progress: number; matched: number; written: number; message?: string; error?: string };
  try {
    const res = await fetch(`${admin}/replay`, { method: 'POST', headers: { ...headers, ...auth }, body: JSON.stringify(req) });
    job = (await res.json()) as typeof job;
    if (res.status !== 202) throw new SynapseError(`replay refused: ${job.message ?? res.status}`);
    id = job.id;
    process.stderr.write(`replay ${id} running in the engine (GET ${admin}/replay/${id})\n`);
  } finally {
    answer();
  }
  while (job.status === 'running') {
    await new Promise((r) => setTimeout(r, 250));
    job = (await (await fetch(`${admin}/replay/${job.id}`, { headers: auth })).json()) as typeof job;
    drawProgress(job.progress, `${job.matched} matched, ${job.written} written`);
  }
  process.stderr.write('\n');
  process.stdout.write(`${JSON.stringify(job)}\n`);
  return job.status === 'done' ? 0 : 1;
}

interface Interrupt {
  /** Runs `action` on the first Ctrl-C (SIGINT or SIGTERM), at once if it came already; a failure of it is printed. */
  onFirst(action: () => unknown): void;
  /** What to print when a second signal quits at once (undefined: nothing). */
  onQuit(message: () => string | undefined): void;
  remove(): void;
}

/**
 * The first Ctrl-C or SIGTERM asks the work in hand to stop (with nothing in hand yet, it quits
 * at once); a second quits at once, with the exit code of the signal (130, 143).
 */
function onInterrupt(): Interrupt {
  let action: (() => unknown) | undefined;
  let quit: () => string | undefined = () => undefined;
  let asked = false;
  const run = () => void Promise.resolve().then(() => action?.()).catch((err: unknown) => process.stderr.write(`${String(err)}\n`));
  const handler = (signal: NodeJS.Signals) => {
    if (asked || !action) {
      const last = quit();
      if (last) process.stderr.write(`\n${last}\n`);
      process.exit(signal === 'SIGTERM' ? 143 : 130);
    }
    asked = true;
    process.stderr.write(`\nstopping the replay after the chunk in hand (${signal} again to quit at once)\n`);
    run();
  };
  process.on('SIGINT', handler);
  process.on('SIGTERM', handler);
  return {
    onFirst(a) {
      action = a;
      if (asked) run();
    },
    onQuit(message) {
      quit = message;
    },
    remove() {
      process.off('SIGINT', handler);
      process.off('SIGTERM', handler);
    },
  };
}

function drawProgress(fraction: number, text: string): void {
  const width = 30;
  const filled = Math.round(Math.max(0, Math.min(1, fraction)) * width);
  process.stderr.write(`\r[${'#'.repeat(filled)}${'.'.repeat(width - filled)}] ${(fraction * 100).toFixed(0).padStart(3)}% ${text}`);
}

/**
 * `synapse dlq redrive`: asks the running engine (its admin API) to run the entries again through
 * the pipelines that failed them; prints one line per entry, exit 1 when any was skipped or missing.
 */
async function redriveThroughAdmin(stream: string, opts: { ids?: string; count?: string; admin?: string }): Promise<number> {
  const admin = (opts.admin ?? process.env.SYNAPSE_ADMIN_URL ?? 'http://127.0.0.1:8080').replace(/\/$/, '');
  const headers: Record<string, string> = { 'content-type': 'application/json' };
  if (process.env.SYNAPSE_ADMIN_TOKEN) headers.authorization = `Bearer ${process.env.SYNAPSE_ADMIN_TOKEN}`;
  const body = { ...(opts.ids ? { ids: opts.ids.split(',').filter(Boolean) } : {}), ...(opts.count ? { count: Number(opts.count) } : {}) };
  const res = await fetch(`${admin}/dlq/${encodeURIComponent(stream)}/redrive`, { method: 'POST', headers, body: JSON.stringify(body) });
  if (!res.ok) throw new SynapseError(`redrive failed: ${res.status} ${await res.text()}`);
  const report = (await res.json()) as RedriveReport;
  for (const r of report.redriven) process.stdout.write(`${r.dlqId} ${r.pipeline} ${r.sourceId} ${r.outcome}${r.newDlqId ? ` -> ${r.newDlqId}` : ''}\n`);
  for (const s of report.skipped) process.stderr.write(`skipped ${s.dlqId}: ${s.reason}\n`);
  if (report.missing.length) process.stderr.write(`not found: ${report.missing.join(', ')}\n`);
  process.stderr.write(`redriven ${report.redriven.length}, skipped ${report.skipped.length}\n`);
  return report.missing.length || report.skipped.length ? 1 : 0;
}
