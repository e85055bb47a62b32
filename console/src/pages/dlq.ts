import { api, enc } from '../api.ts';
import { fill, h } from '../dom.ts';
import type { Page } from '../main.ts';

interface Entry { id: string; payload: string; error: string; stage: string; pipeline: string; source_id: string; attempts: number; failed_at: string; payload_encoding?: string; payload_truncated?: boolean }
interface Report {
  redriven: { dlqId: string; pipeline: string; sourceId: string; outcome: string; newDlqId?: string; error?: string }[];
  skipped: { dlqId: string; reason: string }[];
  missing: string[];
}

function payloadText(e: Entry): string {
  if (e.payload_encoding === 'base64') return `(binary, base64) ${e.payload}`;
  try {
    return JSON.stringify(JSON.parse(e.payload), null, 2);
  } catch {
    return e.payload;
  }
}

/**
 * DLQ entries of each DLQ stream the pipelines use: stage, reason, attempts, payload; redrive one,
 * the selected ones or all (POST /dlq/:stream/redrive), with the result of each shown.
 */
export const dlqPage: Page = (main, [stream = '']) => {
  const picker = h('select', { 'aria-label': 'DLQ stream', 'data-testid': 'dlq-stream' });
  const info = h('span', { class: 'muted', 'data-testid': 'dlq-info' });
  const selectedButton = h('button', { type: 'button', disabled: true }, 'Redrive selected');
  const allButton = h('button', { type: 'button' }, 'Redrive all');
  const result = h('div', { class: 'redrive-result', 'data-testid': 'redrive-result' });
  const body = h('tbody', {});
  const all = h('input', { type: 'checkbox', 'aria-label': 'select all' });
  let next: string | null = null;
  const more = h('button', { type: 'button', hidden: true }, 'More');
  fill(main, h('h1', {}, 'Dead-letter queues'),
    h('div', { class: 'toolbar' }, picker, info, h('span', { class: 'spacer' }), selectedButton, allButton),
    result,
    h('div', { class: 'scroll' }, h('table', { class: 'grid', 'data-testid': 'dlq-entries' },
      h('thead', {}, h('tr', {}, h('th', {}, all), ['id', 'pipeline', 'stage', 'reason', 'attempts', 'failed at', 'payload', ''].map((t) => h('th', {}, t)))),
      body)),
    more);

  const selected = () => [...body.querySelectorAll<HTMLInputElement>('input[type=checkbox]:checked')].map((c) => c.value);
  const onSelect = () => {
    const n = selected().length;
    selectedButton.disabled = n === 0;
    selectedButton.textContent = n ? `Redrive ${n} selected` : 'Redrive selected';
  };
  all.addEventListener('change', () => {
    for (const c of body.querySelectorAll<HTMLInputElement>('input[type=checkbox]')) c.checked = all.checked;
    onSelect();
  });

  const rows = (entries: Entry[]) => entries.map((e) => h('tr', { 'data-id': e.id },
    h('td', {}, h('input', { type: 'checkbox', value: e.id, 'aria-label': `select ${e.id}`, onchange: onSelect })),
    h('td', {}, h('code', {}, e.id)),
    h('td', {}, e.pipeline),
    h('td', {}, h('span', { class: 'badge dlq' }, e.stage)),
    h('td', { class: 'reason' }, e.error),
    h('td', { class: 'num' }, e.attempts),
    h('td', { class: 'small' }, e.failed_at),
    h('td', {}, h('details', {}, h('summary', {}, e.payload_truncated ? 'payload (truncated)' : 'payload'), h('pre', {}, payloadText(e)))),
    h('td', {}, h('button', { type: 'button', onclick: () => redrive({ ids: [e.id] }) }, 'Redrive'))));

  const load = async (append = false) => {
    if (!stream) return;
    const page = await api<{ length: number; entries: Entry[]; next: string | null }>(`/dlq/${enc(stream)}?count=100${append && next ? `&from=${enc(next)}` : ''}`);
    next = page.next;
    more.hidden = !next;
    if (append) body.append(...rows(page.entries));
    else fill(body, rows(page.entries));
    if (!body.childElementCount) fill(body, h('tr', {}, h('td', { colspan: 9, class: 'muted' }, 'The DLQ is empty.')));
    info.textContent = `${page.length} entr${page.length === 1 ? 'y' : 'ies'}`;
    const option = [...picker.options].find((o) => o.value === stream);
    if (option) option.textContent = `${stream} (${page.length})`;
    all.checked = false;
    onSelect();
  };
  more.addEventListener('click', () => void load(true));

  const redrive = async (body: { ids?: string[]; count?: number }) => {
    fill(result, h('p', { class: 'muted' }, 'redriving…'));
    try {
      const r = await api<Report>(`/dlq/${enc(stream)}/redrive`, { json: body });
      fill(result,
        h('h2', {}, `Redrive: ${r.redriven.length} run, ${r.skipped.length} skipped, ${r.missing.length} missing`),
        h('ul', {},
          r.redriven.map((x) => h('li', { 'data-outcome': x.outcome }, h('code', {}, x.dlqId), ` ${x.pipeline} → `, h('span', { class: `badge ${x.outcome}` }, x.outcome),
            x.newDlqId ? [' again, as ', h('code', {}, x.newDlqId)] : null, x.error ? h('span', { class: 'error' }, ` ${x.error}`) : null)),
          r.skipped.map((x) => h('li', {}, h('code', {}, x.dlqId), ' skipped: ', x.reason)),
          r.missing.map((id) => h('li', {}, h('code', {}, id), ' no longer in the DLQ'))));
    } catch (err) {
      fill(result, h('p', { class: 'error' }, `Redrive failed: ${(err as Error).message}`));
    }
    await load();
  };
  selectedButton.addEventListener('click', () => void redrive({ ids: selected() }));
  allButton.addEventListener('click', () => {
    if (confirm(`Run every entry of ${stream} (up to 1000) again through its pipeline?`)) void redrive({ count: 1000 });
  });
  picker.addEventListener('change', () => { location.hash = `#/dlq/${enc(picker.value)}`; });

  void (async () => {
    const { streams } = await api<{ streams: { stream: string; role: string; length: number }[] }>('/streams');
    const dlqs = streams.filter((s) => s.role === 'dlq');
    if (!stream && dlqs.length) {
      // The fullest DLQ first.
      location.replace(`#/dlq/${enc([...dlqs].sort((a, b) => b.length - a.length)[0]!.stream)}`);
      return;
    }
    fill(picker, h('option', { value: '', disabled: true, selected: !stream }, 'DLQ stream…'), dlqs.map((s) => h('option', { value: s.stream, selected: s.stream === stream }, `${s.stream} (${s.length})`)));
    if (!dlqs.length) info.textContent = 'No pipeline has a DLQ stream yet.';
    await load();
  })().catch((err: Error) => fill(result, h('p', { class: 'error' }, err.message)));
};
