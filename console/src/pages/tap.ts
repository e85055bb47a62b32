import { api, enc, raw } from '../api.ts';
import { fill, h, pretty } from '../dom.ts';
import type { Page } from '../main.ts';

interface Trace { pipeline: string; id: string; outcome: string; path: { stage: string; result: string; detail?: string }[]; event?: unknown; value?: unknown; eventCut?: number; valueCut?: number }

/** An event or output as the detail shows it: pretty JSON, or the first characters the engine sent of a long one. */
function shown(v: unknown, cut: number | undefined): string {
  return cut ? `${String(v)}… (cut: ${cut} characters of JSON in all)` : pretty(v);
}

const MAX_ROWS = 500;

/**
 * Reads GET /tap/:name, server-sent events, with fetch: unlike EventSource it can send the
 * Authorization header. Calls `onTrace` for each `trace` event until `signal` aborts.
 */
async function readTap(name: string, signal: AbortSignal, onTrace: (t: Trace) => void, onOpen: () => void, onDropped: (n: number) => void): Promise<void> {
  const res = await raw(`/tap/${enc(name)}`, { headers: { accept: 'text/event-stream' }, signal });
  if (!res.ok || !res.body) throw new Error(`tap: ${res.status} ${(await res.text().catch(() => '')).slice(0, 200)}`);
  onOpen();
  const reader = res.body.pipeThrough(new TextDecoderStream()).getReader();
  let buffer = '';
  for (;;) {
    const { value, done } = await reader.read();
    if (done) return;
    buffer += value;
    let end: number;
    while ((end = buffer.indexOf('\n\n')) >= 0) {
      const block = buffer.slice(0, end);
      buffer = buffer.slice(end + 2);
      let event = 'message';
      const data: string[] = [];
      for (const line of block.split('\n')) {
        // The heartbeat says how many traces the engine dropped for this client (it could not keep up).
        const dropped = /^: alive, dropped (\d+)/.exec(line);
        if (dropped) onDropped(Number(dropped[1]));
        if (line.startsWith('event:')) event = line.slice(6).trim();
        else if (line.startsWith('data:')) data.push(line.slice(5).replace(/^ /, ''));
      }
      if (event === 'trace' && data.length) onTrace(JSON.parse(data.join('\n')) as Trace);
    }
  }
}

/**
 * A live view of the events a pipeline settles, each with its path through the stages:
 * filterable by outcome and text, pausable (events arriving while paused are held, up to a
 * bound, and shown on resume).
 */
export const tapPage: Page = (main, [name = '']) => {
  const picker = h('select', { 'aria-label': 'pipeline', 'data-testid': 'tap-pipeline' });
  const outcome = h('select', { 'aria-label': 'outcome' }, ['all', 'sunk', 'filtered', 'dlq', 'dropped', 'deferred'].map((o) => h('option', { value: o }, o === 'all' ? 'every outcome' : o)));
  const search = h('input', { type: 'search', placeholder: 'filter: text in the id, event or output', 'aria-label': 'filter' });
  const pauseButton = h('button', { type: 'button', 'data-testid': 'tap-pause' }, 'Pause');
  const clearButton = h('button', { type: 'button' }, 'Clear');
  const state = h('span', { class: 'muted', 'data-testid': 'tap-state' }, name ? 'connecting…' : 'choose a pipeline');
  const list = h('div', { class: 'tap-list', 'data-testid': 'tap-list' });
  fill(main, h('h1', {}, 'Tap'), h('div', { class: 'toolbar' }, picker, outcome, search, pauseButton, clearButton, state), list);

  const traces: Trace[] = [];
  const held: Trace[] = [];
  let paused = false;
  let seen = 0;
  let dropped = 0;
  const abort = new AbortController();

  const matches = (t: Trace) => (outcome.value === 'all' || t.outcome === outcome.value)
    && (!search.value || JSON.stringify(t).toLowerCase().includes(search.value.toLowerCase()));

  const row = (t: Trace) => h('details', { class: 'tap-row', 'data-outcome': t.outcome, 'data-id': t.id },
    h('summary', {},
      h('code', {}, t.id), ' ', h('span', { class: `badge ${t.outcome}` }, t.outcome), ' ',
      h('span', { class: 'path' }, t.path.map((s) => h('span', { class: `step ${s.result}`, title: s.detail ?? s.result }, s.stage)))),
    h('div', { class: 'tap-detail' },
      t.path.filter((s) => s.detail).map((s) => h('div', { class: 'small' }, h('strong', {}, `${s.stage}: `), s.detail!)),
      h('div', { class: 'side-by-side' },
        h('div', {}, h('h3', {}, 'event'), h('pre', {}, shown(t.event, t.eventCut))),
        t.value !== undefined ? h('div', {}, h('h3', {}, 'output'), h('pre', {}, shown(t.value, t.valueCut))) : null)));

  const render = () => {
    fill(list, traces.filter(matches).slice(0, 200).map(row));
    if (!list.childElementCount) fill(list, h('p', { class: 'muted' }, traces.length ? 'No event matches the filter.' : 'Waiting for events…'));
  };
  const status = () => {
    state.textContent = `${paused ? `paused (${held.length} held)` : 'live'} · ${seen} seen${dropped ? ` · ${dropped} dropped by the engine (this view could not keep up)` : ''}`;
  };

  outcome.addEventListener('change', render);
  search.addEventListener('input', render);
  clearButton.addEventListener('click', () => { traces.length = 0; render(); });
  pauseButton.addEventListener('click', () => {
    paused = !paused;
    pauseButton.textContent = paused ? 'Resume' : 'Pause';
    if (!paused) {
      traces.unshift(...held.splice(0).reverse());
      traces.length = Math.min(traces.length, MAX_ROWS);
      render();
    }
    status();
  });
  picker.addEventListener('change', () => { location.hash = `#/tap/${enc(picker.value)}`; });

  void api<{ pipelines: { name: string; status: string }[] }>('/pipelines').then(({ pipelines }) => {
    const names = pipelines.filter((p) => p.status !== 'invalid').map((p) => p.name);
    fill(picker, h('option', { value: '', disabled: true, selected: !name }, 'pipeline…'), names.map((n) => h('option', { value: n, selected: n === name }, n)));
  });

  if (name) {
    render();
    readTap(name, abort.signal, (t) => {
      seen++;
      if (paused) {
        held.push(t);
        if (held.length > MAX_ROWS) held.shift();
      } else {
        traces.unshift(t);
        if (traces.length > MAX_ROWS) traces.pop();
        if (matches(t)) {
          list.querySelector('p.muted')?.remove();
          list.prepend(row(t));
          while (list.childElementCount > 200) list.lastElementChild!.remove();
        }
      }
      status();
    }, status, (n) => { dropped = n; status(); }).then(
      () => { if (!abort.signal.aborted) state.textContent = 'the tap closed (engine stopped or reloaded?)'; },
      (err: Error) => { if (!abort.signal.aborted) state.textContent = err.message; },
    );
  }
  return () => abort.abort();
};
