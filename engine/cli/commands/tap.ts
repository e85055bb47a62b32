import { SynapseError } from '../../errors.ts';
import type { Trace } from '../../runner/trace.ts';
import { adminGet, adminUrl } from './admin-client.ts';

/** Options of `synapse tap`. */
export interface TapOptions {
  admin?: string;
  /** Exit after this many events. */
  count?: string;
  json?: boolean;
}

const MARK: Record<string, string> = { passed: '✓', skipped: '·', filtered: '✗', failed: '✗', dropped: '✗' };

/**
 * One readable line for a traced event: id, outcome, and its path through the stages, e.g.
 * `1764583200000-0  sunk      decode ✓ → validate ✓ → filter ✓ → transform ✓ → sink ✓ (publish)`;
 * where it stopped, why.
 */
export function traceLine(t: Trace): string {
  const path = t.path.map((s) => `${s.stage} ${MARK[s.result] ?? s.result}${s.result === 'skipped' ? '' : s.detail ? ` (${s.detail})` : ''}`).join(' → ');
  return `${t.id.padEnd(16)} ${t.outcome.padEnd(9)} ${path}`;
}

/**
 * `synapse tap PIPELINE`: follows GET /tap/PIPELINE of the running engine (server-sent events) and
 * prints one line per settled event with its path through the stages (--json: the trace as JSON),
 * until interrupted or --count events.
 */
export async function tapCommand(pipeline: string, opts: TapOptions): Promise<number> {
  const admin = adminUrl(opts.admin);
  const max = opts.count === undefined ? Infinity : Number(opts.count);
  if (!(max > 0)) throw new SynapseError(`--count must be a positive number, got '${opts.count}'`);
  const res = await adminGet(admin, `/tap/${encodeURIComponent(pipeline)}`, 'text/event-stream');
  process.stderr.write(`tapping ${pipeline} at ${admin} (Ctrl-C to stop)\n`);
  const reader = res.body!.pipeThrough(new TextDecoderStream()).getReader();
  process.once('SIGINT', () => void reader.cancel());
  let buffer = '';
  let seen = 0;
  for (;;) {
    const { value, done } = await reader.read().catch(() => ({ value: undefined, done: true }));
    if (done) return 0;
    buffer += value;
    let end: number;
    // Server-sent events are separated by a blank line; `data:` lines carry the trace.
    while ((end = buffer.indexOf('\n\n')) >= 0) {
      const block = buffer.slice(0, end);
      buffer = buffer.slice(end + 2);
      const data = block.split('\n').filter((l) => l.startsWith('data: ')).map((l) => l.slice(6)).join('\n');
      if (!data) {
        const dropped = /dropped (\d+)/.exec(block)?.[1];
        if (dropped) process.stderr.write(`(the engine dropped ${dropped} event(s) this tap could not keep up with)\n`);
        continue;
      }
      const trace = JSON.parse(data) as Trace;
      process.stdout.write(`${opts.json ? JSON.stringify(trace) : traceLine(trace)}\n`);
      if (++seen >= max) {
        await reader.cancel();
        return 0;
      }
    }
  }
}
