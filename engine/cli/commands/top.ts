import { adminGet, adminUrl } from './admin-client.ts';

/** Options of `synapse top`. */
export interface TopOptions {
  admin?: string;
  /** Seconds between refreshes (default 2); with --once, between the two samples rates come from. */
  interval?: string;
  once?: boolean;
  json?: boolean;
}

/** One pipeline's row of `synapse top`. */
export interface TopRow {
  pipeline: string;
  status: string;
  generation: number | null;
  /** Entries settled per second (sunk + filtered + dlq + dropped). */
  inPerSec: number | null;
  /** Entries sunk per second. */
  outPerSec: number | null;
  filtered: number;
  dlq: number;
  lag: number | null;
  /** The 99th percentile of the slowest stage's batch time, ms (upper bucket bound), and that stage. */
  p99Ms: number | null;
  p99Stage: string | null;
}

interface PipelineView {
  name: string;
  status: string;
  generation?: number;
  lag?: number | null;
  counters?: { sunk: number; filtered: number; dlq: number; dropped: number };
}

interface Sample {
  at: number;
  pipelines: PipelineView[];
  /** pipeline → stage → cumulative histogram buckets (le → count). */
  stages: Map<string, Map<string, [number, number][]>>;
}

async function sample(admin: string): Promise<Sample> {
  const [list, metrics] = await Promise.all([
    adminGet(admin, '/pipelines').then((r) => r.json() as Promise<{ pipelines: PipelineView[] }>),
    adminGet(admin, '/metrics', 'text/plain').then((r) => r.text()),
  ]);
  return { at: Date.now(), pipelines: list.pipelines, stages: stageBuckets(metrics) };
}

/** synapse_stage_seconds_bucket lines of a Prometheus text exposition, by pipeline and stage. */
export function stageBuckets(text: string): Map<string, Map<string, [number, number][]>> {
  const out = new Map<string, Map<string, [number, number][]>>();
  for (const line of text.split('\n')) {
    if (!line.startsWith('synapse_stage_seconds_bucket{')) continue;
    const labels = Object.fromEntries([...line.matchAll(/(\w+)="((?:[^"\\]|\\.)*)"/g)].map((m) => [m[1], m[2]]));
    const count = Number(line.slice(line.lastIndexOf(' ') + 1));
    const le = labels.le === '+Inf' ? Infinity : Number(labels.le);
    const stages = out.get(labels.pipeline!) ?? new Map<string, [number, number][]>();
    out.set(labels.pipeline!, stages);
    const buckets = stages.get(labels.stage!) ?? [];
    stages.set(labels.stage!, buckets);
    buckets.push([le, count]);
  }
  return out;
}

/** The upper bound of the bucket holding the q-quantile of cumulative `buckets`, or null without observations. */
export function quantile(buckets: [number, number][], q: number): number | null {
  const sorted = [...buckets].sort((a, b) => a[0] - b[0]);
  const total = sorted.at(-1)?.[1] ?? 0;
  if (total === 0) return null;
  const found = sorted.find(([, count]) => count >= q * total);
  return found ? found[0] : null;
}

/** The rows of `synapse top` from two samples (rates from their difference), by pipeline name. */
export function topRows(before: Sample | undefined, now: Sample): TopRow[] {
  const seconds = before ? (now.at - before.at) / 1000 : 0;
  return [...now.pipelines].sort((a, b) => a.name.localeCompare(b.name)).map((p) => {
    const c = p.counters ?? { sunk: 0, filtered: 0, dlq: 0, dropped: 0 };
    const prev = before?.pipelines.find((q) => q.name === p.name)?.counters;
    const rate = (pick: (x: typeof c) => number) => (prev && seconds > 0 ? Math.max(0, (pick(c) - pick(prev)) / seconds) : null);
    let p99: { ms: number; stage: string } | undefined;
    for (const [stage, buckets] of now.stages.get(p.name) ?? []) {
      const seconds99 = quantile(buckets, 0.99);
      if (seconds99 !== null && (!p99 || seconds99 * 1000 > p99.ms)) p99 = { ms: seconds99 * 1000, stage };
    }
    return {
      pipeline: p.name,
      status: p.status,
      generation: p.generation ?? null,
      inPerSec: rate((x) => x.sunk + x.filtered + x.dlq + x.dropped),
      outPerSec: rate((x) => x.sunk),
      filtered: c.filtered,
      dlq: c.dlq,
      lag: p.lag ?? null,
      p99Ms: p99 ? p99.ms : null,
      p99Stage: p99 ? p99.stage : null,
    };
  });
}

const COLUMNS: { title: string; width: number; cell: (r: TopRow) => string; left?: boolean }[] = [
  { title: 'PIPELINE', width: 28, cell: (r) => r.pipeline, left: true },
  { title: 'STATUS', width: 8, cell: (r) => r.status, left: true },
  { title: 'GEN', width: 4, cell: (r) => String(r.generation ?? '-') },
  { title: 'IN/S', width: 9, cell: (r) => (r.inPerSec === null ? '-' : r.inPerSec.toFixed(1)) },
  { title: 'OUT/S', width: 9, cell: (r) => (r.outPerSec === null ? '-' : r.outPerSec.toFixed(1)) },
  { title: 'FILTERED', width: 9, cell: (r) => String(r.filtered) },
  { title: 'DLQ', width: 6, cell: (r) => String(r.dlq) },
  { title: 'LAG', width: 7, cell: (r) => String(r.lag ?? '-') },
  { title: 'P99 STAGE', width: 18, cell: (r) => (r.p99Ms === null ? '-' : `${r.p99Ms < 1 ? r.p99Ms.toFixed(1) : r.p99Ms.toFixed(0)}ms ${r.p99Stage}`) },
];

/** The table `synapse top` prints. */
export function renderTop(rows: TopRow[], admin: string, intervalS: number): string {
  const fit = (text: string, width: number, left?: boolean) => {
    const t = text.length > width ? `${text.slice(0, width - 1)}…` : text;
    return left ? t.padEnd(width) : t.padStart(width);
  };
  const line = (cells: string[]) => cells.map((c, i) => fit(c, COLUMNS[i]!.width, COLUMNS[i]!.left)).join(' ').trimEnd();
  return [
    `synapse top — ${admin} — ${rows.length} pipeline(s), rates over ${intervalS} s; counters since the engine started`,
    line(COLUMNS.map((c) => c.title)),
    ...rows.map((r) => line(COLUMNS.map((c) => c.cell(r)))),
  ].join('\n');
}

/**
 * `synapse top`: a per-pipeline view of the running engine from its admin API (GET /pipelines and
 * /metrics): entries in and sunk per second, filtered and dead-lettered so far, lag, the 99th
 * percentile batch time of its slowest stage, generation. Refreshes every --interval seconds until
 * interrupted; --once prints one table (rates over one interval) and exits; --json prints rows as
 * JSON (one line per refresh).
 */
export async function topCommand(opts: TopOptions): Promise<number> {
  const admin = adminUrl(opts.admin);
  const intervalS = Number(opts.interval ?? 2);
  const wait = () => new Promise((r) => setTimeout(r, intervalS * 1000));
  let before = await sample(admin);
  let stop = false;
  process.once('SIGINT', () => (stop = true));
  for (;;) {
    await wait();
    const now = await sample(admin);
    const rows = topRows(before, now);
    before = now;
    if (opts.json) process.stdout.write(`${JSON.stringify({ at: new Date(now.at).toISOString(), intervalS, pipelines: rows })}\n`);
    else {
      // On a terminal, redraw in place, as top does.
      if (!opts.once && process.stdout.isTTY) process.stdout.write('\x1b[H\x1b[2J');
      process.stdout.write(`${renderTop(rows, admin, intervalS)}\n`);
    }
    if (opts.once || stop) return 0;
  }
}
