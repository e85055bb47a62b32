import { mkdir, writeFile } from 'node:fs/promises';
import { arch, cpus, loadavg, platform, totalmem } from 'node:os';
import { dirname } from 'node:path';
import type { EngineResult } from './engine-side.ts';
import type { SideResult } from './side.ts';
import type { OutputComparison } from './verify.ts';

/** The throughput the engine is meant to reach on this kind of machine. */
export const TARGET_EVENTS_PER_SEC = 20_000;

/** A side's result with the problems its checks found (empty: all well). */
export type Checked<T extends SideResult> = T & { problems: string[] };

/** One round: each side that ran, and whether their outputs matched. */
export interface RoundResult {
  hand?: Checked<SideResult>;
  engine?: Checked<EngineResult>;
  outputs?: OutputComparison;
}

/** A side over all rounds: its median round in full, plus every round's rate. */
export type SideSummary<T extends SideResult> = Checked<T> & { eventsPerSecByRound: number[] };

/** Everything a run records. */
export interface BenchReport {
  benchmark: 'stream-throughput';
  meta: {
    date: string;
    events: number;
    batch: number;
    rounds: number;
    seed: number;
    node: string;
    platform: string;
    cpus: number;
    cpuModel: string;
    memoryGiB: number;
    /** 1/5/15-minute load averages before and after: other work on the machine skews results. */
    loadAverage: { before: number[]; after: number[] };
    redis: { version: string; owned: boolean };
    workload: { meanPayloadBytes: number; expectedSunk: number; expectedFiltered: number; expectedInvalid: number };
    /** Time to load the input stream once (pipelined XADDs). */
    loadSeconds: number;
  };
  handWritten?: SideSummary<SideResult>;
  engine?: SideSummary<EngineResult>;
  /** Median engine events/s ÷ median hand-written events/s. */
  ratio?: number;
  /**
   * Hand-written CPU per event ÷ engine CPU per event (this process only, medians): the same
   * ratio measured in CPU instead of wall time, and so less skewed by a busy machine.
   */
  cpuRatio?: number;
  outputs?: OutputComparison;
  target: { eventsPerSec: number; met?: boolean };
}

/** The 1/5/15-minute load averages, rounded. */
export function loadAverage(): number[] {
  return loadavg().map((x) => Math.round(x * 100) / 100);
}

/** The median of numbers (the lower of two middles). */
function median(xs: number[]): number {
  const sorted = [...xs].sort((a, b) => a - b);
  return sorted[Math.floor((sorted.length - 1) / 2)] ?? 0;
}

/** The median round of a side (the lower one of two middles), every round's rate, all problems. */
function medianSide<T extends SideResult>(results: Checked<T>[]): SideSummary<T> | undefined {
  if (results.length === 0) return undefined;
  const sorted = [...results].sort((a, b) => a.eventsPerSec - b.eventsPerSec);
  const median = sorted[Math.floor((sorted.length - 1) / 2)]!;
  return {
    ...median,
    problems: results.flatMap((r, i) => r.problems.map((p) => (results.length > 1 ? `round ${i + 1}: ${p}` : p))),
    eventsPerSecByRound: results.map((r) => r.eventsPerSec),
  };
}

/** Folds the rounds into the report: median per side, their ratio, all output comparisons. */
export function summarize(meta: BenchReport['meta'], rounds: RoundResult[]): BenchReport {
  const report: BenchReport = { benchmark: 'stream-throughput', meta, target: { eventsPerSec: TARGET_EVENTS_PER_SEC } };
  report.handWritten = medianSide(rounds.flatMap((r) => (r.hand ? [r.hand] : [])));
  report.engine = medianSide(rounds.flatMap((r) => (r.engine ? [r.engine] : [])));
  if (report.engine) report.target.met = report.engine.eventsPerSec >= TARGET_EVENTS_PER_SEC;
  if (report.handWritten && report.engine) {
    report.ratio = Math.round((report.engine.eventsPerSec / report.handWritten.eventsPerSec) * 1000) / 1000;
    const hand = median(rounds.flatMap((r) => (r.hand ? [r.hand.cpuSeconds] : [])));
    const engine = median(rounds.flatMap((r) => (r.engine ? [r.engine.cpuSeconds] : [])));
    if (engine > 0) report.cpuRatio = Math.round((hand / engine) * 1000) / 1000;
  }
  const comparisons = rounds.flatMap((r) => (r.outputs ? [r.outputs] : []));
  if (comparisons.length) {
    report.outputs = {
      compared: comparisons.reduce((n, c) => n + c.compared, 0),
      onlyInFirst: comparisons.reduce((n, c) => n + c.onlyInFirst, 0),
      onlyInSecond: comparisons.reduce((n, c) => n + c.onlyInSecond, 0),
      first: comparisons.find((c) => c.first)?.first,
    };
  }
  return report;
}

/** Run metadata that does not depend on the measurement (`date`: now, the start of the run). */
export function machineMeta(): Pick<BenchReport['meta'], 'date' | 'node' | 'platform' | 'cpus' | 'cpuModel' | 'memoryGiB'> {
  const list = cpus();
  return {
    date: new Date().toISOString(),
    node: process.version,
    platform: `${platform()}-${arch()}`,
    cpus: list.length,
    cpuModel: list[0]?.model.trim() ?? 'unknown',
    memoryGiB: Math.round((totalmem() / 2 ** 30) * 10) / 10,
  };
}

const fmtInt = (n: number) => Math.round(n).toLocaleString('en-US');
const pct = (x: number) => `${(x * 100).toFixed(1)}%`;
const us = (seconds: number, events: number) => (events > 0 ? (seconds * 1e6) / events : 0).toFixed(1);

function sideLine(name: string, r: SideSummary<SideResult>): string {
  const rounds = r.eventsPerSecByRound.length > 1 ? `  [rounds: ${r.eventsPerSecByRound.map(fmtInt).join(', ')}]` : '';
  return `${name.padEnd(14)} ${fmtInt(r.eventsPerSec).padStart(9)} events/s   ${r.seconds.toFixed(2).padStart(7)} s   ` +
    `(sunk ${fmtInt(r.counts.sunk)}, filtered ${fmtInt(r.counts.filtered)}, dlq ${fmtInt(r.counts.dlq)}, ${fmtInt(r.batches)} batches)${rounds}`;
}

function cpuLine(name: string, side: SideResult, events: number): string {
  const redis = side.redisCpuSeconds !== undefined ? `, redis ${us(side.redisCpuSeconds, events)} µs/event` : '';
  const ceiling = side.cpuSeconds > 0 ? events / side.cpuSeconds : 0;
  return `  ${name.padEnd(14)} node ${us(side.cpuSeconds, events)} µs/event${redis}  (if it never waited: ${fmtInt(ceiling)} events/s)`;
}

/** What was run, on what, and how busy the machine was. */
function headerLines(m: BenchReport['meta']): string[] {
  const busy = Math.max(m.loadAverage.before[0] ?? 0, m.loadAverage.after[0] ?? 0) > m.cpus / 2;
  return [
    `stream-throughput: ${fmtInt(m.events)} events, batch ${m.batch}, ${m.rounds} round${m.rounds > 1 ? 's (median shown)' : ''}, ` +
      `node ${m.node}, ${m.cpus} × ${m.cpuModel}, redis ${m.redis.version}${m.redis.owned ? ' (own, 127.0.0.1)' : ' (REDIS_URL)'}`,
    `workload: mean payload ${m.workload.meanPayloadBytes} B; ${fmtInt(m.workload.expectedSunk)} pass the filter, ` +
      `${fmtInt(m.workload.expectedFiltered)} filtered, ${fmtInt(m.workload.expectedInvalid)} invalid; loaded in ${m.loadSeconds.toFixed(2)} s`,
    `load average before ${m.loadAverage.before.join(' ')}, after ${m.loadAverage.after.join(' ')}` +
      (busy ? '  (machine busy: wall-time figures are skewed)' : ''),
  ];
}

/** Events/s per side, their ratio, and CPU per event. */
function throughputLines(r: BenchReport): string[] {
  const lines: string[] = [];
  if (r.handWritten) lines.push(sideLine('hand-written', r.handWritten));
  if (r.engine) lines.push(sideLine('engine', r.engine));
  if (r.ratio !== undefined) lines.push(`ratio engine / hand-written: ${r.ratio.toFixed(2)} by wall time, ${r.cpuRatio?.toFixed(2) ?? '?'} by CPU per event`);
  lines.push('', 'CPU per event (steadier than wall time on a busy machine):');
  if (r.handWritten) lines.push(cpuLine('hand-written', r.handWritten, r.meta.events));
  if (r.engine) lines.push(cpuLine('engine', r.engine, r.meta.events));
  return lines;
}

/** Where the engine's wall time went, stage by stage. */
function stageLines(e: EngineResult): string[] {
  const lines = [`engine time by stage (share of wall time, µs per event; start-up ${(e.startupSeconds * 1000).toFixed(0)} ms not counted):`];
  for (const [stage, t] of Object.entries(e.stages)) {
    const label = stage === 'other' ? 'other (XREADGROUP, settle DLQ+XACK, loop)' : stage;
    lines.push(`  ${label.padEnd(42)} ${pct(t.share).padStart(6)}  ${t.seconds.toFixed(3).padStart(8)} s  ${t.usPerEvent.toFixed(1).padStart(7)} µs`);
  }
  return lines;
}

/** The target verdict, the output comparison and every problem the checks found. */
function checkLines(r: BenchReport): string[] {
  const lines: string[] = [];
  if (r.engine) lines.push(`target ${fmtInt(r.target.eventsPerSec)} events/s: ${r.target.met ? 'met' : 'NOT met'}`);
  const o = r.outputs;
  if (o) {
    lines.push(o.onlyInFirst + o.onlyInSecond === 0
      ? `outputs identical (${fmtInt(o.compared)} hand-written entries matched against the engine's)`
      : `OUTPUTS DIFFER: ${o.onlyInFirst} only in hand-written, ${o.onlyInSecond} only in engine's; e.g. ${o.first}`);
  }
  for (const [name, side] of [['hand-written', r.handWritten], ['engine', r.engine]] as const) {
    for (const p of side?.problems ?? []) lines.push(`PROBLEM (${name}): ${p}`);
  }
  return lines;
}

/** The human-readable summary. */
export function formatReport(r: BenchReport): string {
  const sections = [headerLines(r.meta), throughputLines(r)];
  if (r.engine) sections.push(stageLines(r.engine));
  sections.push(checkLines(r));
  return sections.filter((lines) => lines.length > 0).map((lines) => lines.join('\n')).join('\n\n');
}

/** Writes the report as JSON (creating the directory if need be). */
export async function writeReport(file: string, r: BenchReport): Promise<void> {
  await mkdir(dirname(file), { recursive: true });
  await writeFile(file, JSON.stringify(r, null, 2) + '\n');
}

/** Whether the run measured what it claims: every check passed. */
export function reportIsClean(r: BenchReport): boolean {
  return !r.handWritten?.problems.length && !r.engine?.problems.length && (r.outputs?.onlyInFirst ?? 0) + (r.outputs?.onlyInSecond ?? 0) === 0;
}
