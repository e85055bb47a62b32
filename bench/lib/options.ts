import { parseArgs } from 'node:util';

/** Which sides a run measures. */
export type Only = 'both' | 'hand' | 'engine';

/** The bench's settings, from flags, then environment, then defaults. */
export interface BenchOptions {
  events: number;
  /** Entries per read; undefined: the shipped pipeline's `source.batch`. */
  batch?: number;
  only: Only;
  /** Times each side is measured; the median is reported. */
  rounds: number;
  seed: number;
  /** Where the JSON results go; undefined: not written. Other scenarios than the first get a suffix. */
  out?: string;
  /** The scenarios to run (bench/lib/scenarios.ts), in order. */
  pipelines: string[];
  /**
   * Engine processes (`synapse run`) sharing the consumer groups; undefined: the classic run, one
   * in-process engine against the hand-written consumer. Set by --replicas, --cluster or --streams.
   */
  replicas?: number;
  /** Start a local 3-master Redis Cluster and spread the input streams over its masters. */
  cluster: boolean;
  /** Input streams (one pipeline each) the events are split over: 1, or 3 with --cluster. */
  streams: number;
}

export const DEFAULT_EVENTS = 200_000;
export const DEFAULT_OUT = 'bench/results/stream-throughput.json';

export const PIPELINES = ['task-outcomes', 'order-totals'];

export const USAGE = `usage: npm run bench -- [--pipeline NAME] [--events N] [--batch N] [--only hand|engine] [--rounds N] [--seed N] [--out FILE]
  --pipeline NAME  task-outcomes or order-totals (default: both, one after the other)
  --events N   events to push through each side (default ${DEFAULT_EVENTS}; env BENCH_EVENTS)
  --batch N    entries per XREADGROUP for both sides (default: the shipped pipeline's source.batch; env BENCH_BATCH)
  --only SIDE  measure one side only (for profiling); results are then written only with --out
  --rounds N   measure each side N times, alternating which goes first; report the median (default 1; env BENCH_ROUNDS)
  --seed N     PRNG seed of the workload (default 42)
  --out FILE   results file (default ${DEFAULT_OUT} when both sides run)
scale-out (engine processes only, no hand-written side; see docs/scaling.md):
  --replicas N run N \`synapse run\` processes on the same consumer groups (default 1 when --cluster or --streams is given)
  --cluster    start a local 3-master Redis Cluster (ignores REDIS_URL) and spread the streams over its masters
  --streams N  split the events over N input streams, one pipeline each (default 3 with --cluster, else 1)
  REDIS_URL    use this Redis instead of starting a redis-server of our own`;

/** Bad flags or environment: printed without a stack trace. */
export class UsageError extends Error {}

function positiveInt(name: string, raw: string | undefined): number | undefined {
  if (raw === undefined || raw === '') return undefined;
  const n = Number(raw.replace(/_/g, ''));
  if (!Number.isInteger(n) || n < 1) throw new UsageError(`${name} must be a positive integer, got '${raw}'\n${USAGE}`);
  return n;
}

const FLAGS = {
  events: { type: 'string' },
  batch: { type: 'string' },
  only: { type: 'string' },
  rounds: { type: 'string' },
  seed: { type: 'string' },
  out: { type: 'string' },
  pipeline: { type: 'string' },
  replicas: { type: 'string' },
  cluster: { type: 'boolean' },
  streams: { type: 'string' },
  help: { type: 'boolean', short: 'h' },
} as const;

/** The flags of argv; unknown flags and stray arguments are usage errors. */
function parseFlags(argv: string[]) {
  try {
    return parseArgs({ args: argv, options: FLAGS, strict: true }).values;
  } catch (err) {
    throw new UsageError(`${(err as Error).message}\n${USAGE}`);
  }
}

/** Parses argv (without node and script) and the environment. Throws UsageError on bad input. */
export function parseOptions(argv: string[], env: NodeJS.ProcessEnv = process.env): BenchOptions | 'help' {
  const values = parseFlags(argv);
  if (values.help) return 'help';
  const only = (values.only ?? 'both') as Only;
  if (!['both', 'hand', 'engine'].includes(only)) throw new UsageError(`--only must be hand or engine\n${USAGE}`);
  if (values.pipeline !== undefined && !PIPELINES.includes(values.pipeline)) throw new UsageError(`--pipeline must be ${PIPELINES.join(' or ')}\n${USAGE}`);
  const cluster = values.cluster ?? false;
  const streams = positiveInt('--streams', values.streams);
  const scaleOut = values.replicas !== undefined || cluster || streams !== undefined;
  if (scaleOut && only !== 'both') throw new UsageError(`--only does not go with --replicas, --cluster or --streams (they run engine processes only)\n${USAGE}`);
  return {
    replicas: scaleOut ? positiveInt('--replicas', values.replicas) ?? 1 : undefined,
    cluster,
    streams: streams ?? (cluster ? 3 : 1),
    events: positiveInt('--events', values.events) ?? positiveInt('BENCH_EVENTS', env.BENCH_EVENTS) ?? DEFAULT_EVENTS,
    batch: positiveInt('--batch', values.batch) ?? positiveInt('BENCH_BATCH', env.BENCH_BATCH),
    only,
    rounds: positiveInt('--rounds', values.rounds) ?? positiveInt('BENCH_ROUNDS', env.BENCH_ROUNDS) ?? 1,
    seed: positiveInt('--seed', values.seed) ?? 42,
    out: values.out ?? (only === 'both' && !scaleOut ? DEFAULT_OUT : undefined),
    pipelines: values.pipeline ? [values.pipeline] : PIPELINES,
  };
}

