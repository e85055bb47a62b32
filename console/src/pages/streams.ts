import { api, enc } from '../api.ts';
import { fill, h } from '../dom.ts';
import { poll } from '../poll.ts';
import type { Page } from '../main.ts';

interface Group { name: string; consumers: number; pending: number; lag: number | null; lastDeliveredId: string }
interface Stream { stream: string; role: string; length: number; groups: Group[] }
interface Field { name: string; value: string; encoding?: string; truncated?: boolean; bytes?: number }

/** A field on one line (JSON compacted); `pretty` spreads JSON over lines. */
function fieldText(f: Field, pretty = false): string {
  let v = f.value;
  if (!f.encoding) {
    try { v = JSON.stringify(JSON.parse(v), null, pretty ? 2 : undefined); } catch { /* as is */ }
  }
  return `${f.name}${f.encoding ? ` (${f.encoding})` : ''}${f.truncated ? ` (first bytes of ${f.bytes})` : ''}: ${v}`;
}

/** Every stream the pipelines use: length, groups, pending, lag; peek at its latest entries. */
export const streamsPage: Page = (main, [selected = '']) => {
  const body = h('tbody', {});
  const peek = h('section', { class: 'peek', 'data-testid': 'peek' });
  const count = h('input', { type: 'number', min: 1, max: 100, value: 10, class: 'narrow', 'aria-label': 'how many entries' });
  fill(main, h('h1', {}, 'Streams'),
    h('div', { class: 'scroll' }, h('table', { class: 'grid', 'data-testid': 'streams' },
      h('thead', {}, h('tr', {}, ['stream', 'role', 'length', 'group', 'consumers', 'pending', 'lag', 'last delivered', ''].map((t) => h('th', {}, t)))),
      body)),
    peek);

  const showPeek = async (stream: string) => {
    fill(peek, h('p', { class: 'muted' }, 'reading…'));
    try {
      const r = await api<{ length: number; entries: { id: string; fields: Field[] }[] }>(`/streams/${enc(stream)}/entries?count=${Math.max(1, Math.min(100, Number(count.value) || 10))}`);
      fill(peek,
        h('div', { class: 'toolbar' }, h('h2', {}, `Latest entries of ${stream}`), h('span', { class: 'muted' }, `${r.entries.length} of ${r.length}, newest first · show `), count,
          h('button', { type: 'button', onclick: () => void showPeek(stream) }, 'Refresh')),
        r.entries.length ? r.entries.map((e) => h('details', { class: 'peek-entry' },
          h('summary', {}, h('code', {}, e.id), ' ', h('code', { class: 'muted clip-line' }, e.fields.map((f) => fieldText(f)).join('  '))),
          h('pre', {}, e.fields.map((f) => fieldText(f, true)).join('\n'))))
          : h('p', { class: 'muted' }, 'The stream is empty.'));
    } catch (err) {
      fill(peek, h('p', { class: 'error' }, (err as Error).message));
    }
  };

  const refresh = async () => {
    const { streams } = await api<{ streams: Stream[] }>('/streams');
    fill(body, streams.flatMap((s) => {
      const groups: (Group | undefined)[] = s.groups.length ? s.groups : [undefined];
      return groups.map((g, i) => h('tr', { 'data-stream': s.stream, class: s.stream === selected ? 'selected' : '' },
        i === 0 ? h('td', { rowspan: groups.length }, h('code', {}, s.stream)) : null,
        i === 0 ? h('td', { rowspan: groups.length }, h('span', { class: `badge role-${s.role}` }, s.role)) : null,
        i === 0 ? h('td', { rowspan: groups.length, class: 'num' }, s.length) : null,
        h('td', {}, g?.name ?? h('span', { class: 'muted' }, 'no group')),
        h('td', { class: 'num' }, g?.consumers ?? ''),
        h('td', { class: 'num' }, g?.pending ?? ''),
        h('td', { class: 'num' }, g ? (g.lag ?? '?') : ''),
        h('td', { class: 'small' }, g?.lastDeliveredId ?? ''),
        i === 0 ? h('td', { rowspan: groups.length }, h('a', { class: 'button', href: `#/streams/${enc(s.stream)}` }, 'Peek')) : null));
    }));
    if (!streams.length) fill(body, h('tr', {}, h('td', { colspan: 9, class: 'muted' }, 'No streams: no pipeline is loaded.')));
  };
  if (selected) void showPeek(selected);
  return poll(refresh, 3000);
};
