import { api, enc } from '../api.ts';
import { fill, fmtRate, h, sparkline } from '../dom.ts';
import { poll, rates, record } from '../poll.ts';
import type { Page } from '../main.ts';

const POLL_MS = 2000;
const RECENT_ERROR_MS = 60_000;

/** Counters as GET /pipelines reports them. */
interface Counters { sunk: number; filtered: number; dlq: number; dropped: number }

/**
 * Every pipeline with its status, generation, rates in/out (from the counters between polls),
 * filtered, DLQ (events it dead-lettered, and the DLQ stream's length), consumer lag, a
 * sparkline of the rate in, and pause/resume.
 */
export const pipelinesPage: Page = (main) => {
  const status = h('p', { class: 'muted', 'data-testid': 'poll-status' }, 'loading…');
  const body = h('tbody', {});
  const table = h('table', { class: 'grid', 'data-testid': 'pipelines' },
    h('thead', {}, h('tr', {}, ['pipeline', 'status', 'gen', 'in/s', 'out/s', 'filtered', 'DLQ', 'lag', 'last minutes (in/s)', ''].map((t) => h('th', {}, t)))),
    body);
  fill(main, h('h1', {}, 'Pipelines'), status, h('div', { class: 'scroll' }, table));

  const act = async (name: string, action: 'pause' | 'resume') => {
    try {
      await api(`/pipelines/${enc(name)}/${action}`, { method: 'POST' });
      await refresh();
    } catch (err) {
      status.textContent = `${action} ${name}: ${(err as Error).message}`;
    }
  };

  const refresh = async () => {
    const [{ pipelines }, streams] = await Promise.all([
      api<{ pipelines: any[] }>('/pipelines'),
      api<{ streams: { stream: string; length: number }[] }>('/streams').catch(() => ({ streams: [] })),
    ]);
    const lengths = new Map(streams.streams.map((s) => [s.stream, s.length]));
    const now = Date.now();
    fill(body, pipelines.map((p) => {
      const c: Counters = p.counters ?? { sunk: 0, filtered: 0, dlq: 0, dropped: 0 };
      const list = p.status === 'invalid' ? [] : record(p.name, { at: now, in: c.sunk + c.filtered + c.dlq + c.dropped, out: c.sunk, filtered: c.filtered, dlq: c.dlq, generation: p.generation });
      const rin = rates(list, 'in');
      const rout = rates(list, 'out');
      const dlqLen = lengths.get(p.dlq);
      // An error counts while it is recent (the consumer keeps its last one after recovering).
      const recent = p.lastError && now - Date.parse(p.lastError.at) < RECENT_ERROR_MS;
      const err: string | undefined = p.stalled?.reason ?? (recent ? p.lastError.message : undefined);
      const state = p.status === 'invalid' ? 'invalid' : err ? 'error' : p.status;
      const note = err ?? (p.lastReloadError ? `the file on disk failed to load (this version keeps running): ${p.lastReloadError}` : undefined);
      return h('tr', { 'data-pipeline': p.name },
        h('td', {}, h('a', { href: `#/edit/${enc(p.name)}`, title: p.description ?? '' }, p.name), p.description ? h('div', { class: 'muted small desc', title: p.description }, p.description) : null),
        h('td', {}, h('span', { class: `badge ${state}`, 'data-testid': 'status', title: note ?? '' }, state === 'error' ? `${p.status} · error` : p.status), note ? h('div', { class: 'error small clip', title: note }, note) : null),
        h('td', { class: 'num', 'data-testid': 'generation' }, p.generation ?? '–'),
        h('td', { class: 'num' }, fmtRate(rin[rin.length - 1])),
        h('td', { class: 'num' }, fmtRate(rout[rout.length - 1])),
        h('td', { class: 'num' }, c.filtered),
        h('td', { class: 'num' }, h('a', { href: `#/dlq/${enc(p.dlq ?? '')}`, title: `${c.dlq} dead-lettered by this engine; ${dlqLen ?? 0} in ${p.dlq}` }, `${c.dlq}`, dlqLen !== undefined ? h('span', { class: 'muted' }, ` / ${dlqLen}`) : null)),
        h('td', { class: 'num' }, p.lag ?? '–'),
        h('td', {}, sparkline(rin.slice(-60))),
        h('td', { class: 'actions' },
          p.status === 'running' ? h('button', { type: 'button', onclick: () => act(p.name, 'pause') }, 'Pause') : null,
          p.status === 'paused' ? h('button', { type: 'button', onclick: () => act(p.name, 'resume') }, 'Resume') : null,
          p.status !== 'invalid' ? h('a', { class: 'button', href: `#/tap/${enc(p.name)}` }, 'Tap') : null,
          h('a', { class: 'button', href: `#/edit/${enc(p.name)}` }, 'Edit')));
    }));
    if (!pipelines.length) fill(body, h('tr', {}, h('td', { colspan: 10, class: 'muted' }, 'No pipelines loaded.')));
    status.className = 'muted';
    status.textContent = `${pipelines.length} pipeline${pipelines.length === 1 ? '' : 's'} · updated ${new Date().toLocaleTimeString()} · every ${POLL_MS / 1000}s`;
  };
  return poll(() => refresh().catch((err: Error) => {
    status.textContent = `cannot reach the engine: ${err.message} (trying again every ${POLL_MS / 1000}s)`;
    status.className = 'error';
  }), POLL_MS);
};
