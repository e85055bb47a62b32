/**
 * Polling that waits for each call before scheduling the next (a slow engine is never asked
 * twice at once) and stops when the page goes away.
 */
export function poll(fn: () => Promise<void>, everyMs: number): () => void {
  let stopped = false;
  let timer: number | undefined;
  const tick = async () => {
    try {
      await fn();
    } catch (err) {
      console.warn('poll failed', err);
    }
    if (!stopped) timer = window.setTimeout(tick, everyMs);
  };
  void tick();
  return () => {
    stopped = true;
    window.clearTimeout(timer);
  };
}

/** Counter samples of each pipeline, kept across page changes for the sparklines (about 5 minutes). */
export interface Sample { at: number; in: number; out: number; filtered: number; dlq: number; generation: number }
const MAX_SAMPLES = 150;
export const history = new Map<string, Sample[]>();

export function record(name: string, s: Sample): Sample[] {
  let list = history.get(name);
  if (!list) history.set(name, (list = []));
  // A new generation keeps its counters, but a restarted engine starts from zero: start over.
  const last = list[list.length - 1];
  if (last && s.in < last.in) list.length = 0;
  list.push(s);
  if (list.length > MAX_SAMPLES) list.splice(0, list.length - MAX_SAMPLES);
  return list;
}

/** Per-second rates between consecutive samples of `key`. */
export function rates(list: Sample[], key: 'in' | 'out'): number[] {
  const out: number[] = [];
  for (let i = 1; i < list.length; i++) {
    const dt = (list[i]!.at - list[i - 1]!.at) / 1000;
    out.push(dt > 0 ? Math.max(0, list[i]![key] - list[i - 1]![key]) / dt : 0);
  }
  return out;
}
