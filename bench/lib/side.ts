/** What each side under test (hand-written consumer, engine) is given and reports. */

/** The keys and sizes one side works with; each side gets keys of its own. */
export interface SideSpec {
  redisUrl: string;
  /** Input stream, already holding `total` entries. */
  input: string;
  /** Where transformed events go (`payload` field, no MAXLEN). */
  output: string;
  /** Where invalid events go. */
  dlq: string;
  group: string;
  consumer: string;
  /** Entries per XREADGROUP. */
  batch: number;
  /** Entries in the input stream: the side is done when every one is settled (acked). */
  total: number;
}

/** Entries per final outcome. */
export interface OutcomeCounts {
  sunk: number;
  filtered: number;
  dlq: number;
}

/** One side's measurement. */
export interface SideResult {
  /** Seconds from the start of consumption until all `total` entries were settled. */
  seconds: number;
  eventsPerSec: number;
  counts: OutcomeCounts;
  /** Batches settled. */
  batches: number;
  /**
   * CPU this process used meanwhile (user + system, GC threads included). Unlike `seconds`, it
   * hardly moves when other work competes for the cores, so it is the steadier cost measure.
   */
  cpuSeconds: number;
  /** CPU the Redis server used meanwhile (INFO cpu; includes other clients of a shared Redis). */
  redisCpuSeconds?: number;
}

/** Seconds of CPU (user + system) between two `process.cpuUsage()` readings (`to` default: now). */
export function cpuSecondsBetween(from: NodeJS.CpuUsage, to: NodeJS.CpuUsage = process.cpuUsage()): number {
  return (to.user - from.user + to.system - from.system) / 1e6;
}

export function rate(total: number, seconds: number): number {
  return seconds > 0 ? Math.round(total / seconds) : 0;
}
