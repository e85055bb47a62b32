import type { Redis } from 'ioredis';

/**
 * The synthetic workload: platform-event envelopes (SPEC §2) as a task orchestrator and a model
 * service would publish them. Generated from a seeded PRNG, so every run (and both sides of one
 * run) sees exactly the same events in the same order.
 */

/** One kind of event in the mix, with its share and how to make its `data`. */
interface EventKind {
  event: string;
  source: string;
  /** Share of all events, 0..1; the shares add up to 1. */
  share: number;
  /** Whether the bench pipeline's filter lets it through. */
  passes: boolean;
  /** Produces an envelope that fails the schema (for the DLQ path). */
  invalid?: boolean;
  data(i: number, rnd: () => number): Record<string, unknown>;
}

const TITLES = ['Quarterly report', 'Nightly ETL', 'Fine-tune run', 'Index rebuild', 'Invoice batch', 'Thumbnail render'];
const ERRORS = ['timeout after 300s', 'worker lost', 'out of memory', 'upstream 503'];

const task = (i: number, rnd: () => number): Record<string, unknown> => {
  const d: Record<string, unknown> = { userId: `u${Math.floor(rnd() * 5000)}`, taskId: `t${i}`, priority: Math.floor(rnd() * 5) };
  // One task in five has no title: the transform falls back to the task id.
  if (rnd() < 0.8) d.title = `${TITLES[Math.floor(rnd() * TITLES.length)]} #${i % 977}`;
  return d;
};

/** ~70% of events pass `event in ["task-completed", "task-failed"]`; 0.5% fail validation. */
export const EVENT_MIX: readonly EventKind[] = [
  { event: 'task-completed', source: 'task-orchestrator', share: 0.45, passes: true,
    data: (i, rnd) => ({ ...task(i, rnd), durationMs: Math.floor(rnd() * 60_000), result: { rows: Math.floor(rnd() * 1e6) } }) },
  { event: 'task-failed', source: 'task-orchestrator', share: 0.25, passes: true,
    // One failure in four carries no error text: the transform says "unknown error".
    data: (i, rnd) => ({ ...task(i, rnd), ...(rnd() < 0.75 ? { error: ERRORS[Math.floor(rnd() * ERRORS.length)] } : {}) }) },
  { event: 'task-created', source: 'task-orchestrator', share: 0.145, passes: false, data: task },
  { event: 'task-started', source: 'task-worker', share: 0.1, passes: false,
    data: (i, rnd) => ({ ...task(i, rnd), worker: `w${Math.floor(rnd() * 16)}` }) },
  { event: 'model-loaded', source: 'model-service', share: 0.05, passes: false,
    data: (_i, rnd) => ({ model_name: 'llama-3-8b', version: `1.${Math.floor(rnd() * 9)}`, load_ms: Math.floor(rnd() * 9000) }) },
  { event: 'task-completed', source: 'task-orchestrator', share: 0.005, passes: true, invalid: true, data: task },
];

/** A small, fast, seeded PRNG (mulberry32). */
export function seededRandom(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/** What a generated workload holds, for the report and for checking both sides' results. */
export interface Workload {
  /** The `payload` field of each entry: one JSON envelope per event. */
  payloads: string[];
  /** How many events should pass the filter and reach the sink. */
  expectedSunk: number;
  /** How many should be filtered out. */
  expectedFiltered: number;
  /** How many should fail validation (and go to the DLQ). */
  expectedInvalid: number;
  /** Mean payload size in bytes. */
  meanPayloadBytes: number;
}

/** A workload without its payloads: what checking the results needs. */
export type WorkloadSummary = Omit<Workload, 'payloads'>;

/** Picks the kind for a uniform draw in [0, 1). */
function pickKind(u: number): EventKind {
  let acc = 0;
  for (const kind of EVENT_MIX) {
    acc += kind.share;
    if (u < acc) return kind;
  }
  return EVENT_MIX[0]!;
}

/** Makes one envelope; an invalid one has a timestamp that is not RFC 3339 date-time. */
function makeEnvelope(i: number, kind: EventKind, rnd: () => number, baseMs: number): Record<string, unknown> {
  const timestamp = kind.invalid ? `yesterday ${i}` : new Date(baseMs + i * 7).toISOString();
  return { event: kind.event, source: kind.source, timestamp, id: `evt-${i}`, trace_id: `tr-${(i * 2654435761) >>> 0}`, data: kind.data(i, rnd) };
}

/** Generates `n` envelopes deterministically from `seed`. */
export function generateWorkload(n: number, seed = 42): Workload {
  const rnd = seededRandom(seed);
  const baseMs = Date.UTC(2026, 10, 26, 10, 0, 0);
  const payloads = new Array<string>(n);
  let sunk = 0;
  let filtered = 0;
  let invalid = 0;
  let bytes = 0;
  for (let i = 0; i < n; i++) {
    const kind = pickKind(rnd());
    const payload = JSON.stringify(makeEnvelope(i, kind, rnd, baseMs));
    payloads[i] = payload;
    bytes += payload.length;
    if (kind.invalid) invalid++;
    else if (kind.passes) sunk++;
    else filtered++;
  }
  return { payloads, expectedSunk: sunk, expectedFiltered: filtered, expectedInvalid: invalid, meanPayloadBytes: n ? Math.round(bytes / n) : 0 };
}

/**
 * Appends every payload to `stream` as a `payload` field, `chunk` XADDs per pipeline (one round
 * trip each). Returns the seconds it took.
 */
export async function loadStream(redis: Redis, stream: string, payloads: readonly string[], chunk = 2000): Promise<number> {
  const t0 = performance.now();
  for (let start = 0; start < payloads.length; start += chunk) {
    const pipe = redis.pipeline();
    const end = Math.min(payloads.length, start + chunk);
    for (let i = start; i < end; i++) pipe.xadd(stream, '*', 'payload', payloads[i]!);
    const results = await pipe.exec();
    const failed = results?.find(([err]) => err);
    if (failed) throw failed[0];
  }
  return (performance.now() - t0) / 1000;
}
