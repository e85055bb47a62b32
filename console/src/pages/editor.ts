import type { Diagnostic } from '@codemirror/lint';
import type { EditorView } from '@codemirror/view';
import schema from '../../../editor/pipeline.schema.json';
import { ApiError, api, enc, raw } from '../api.ts';
import { createEditor, setText } from '../codemirror.ts';
import { outline } from '../yaml-schema.ts';
import { diffLines } from '../diff.ts';
import { fill, h, pretty } from '../dom.ts';
import { poll } from '../poll.ts';
import type { Page } from '../main.ts';

interface ApiDiagnostic { file?: string; line?: number; col?: number; message: string }
interface DryRunResult { id: string; outcome: string; sinks?: Record<string, unknown>; stage?: string; error?: string; sink?: string }
interface DryRun { results: DryRunResult[]; summary: Record<string, number> }

/** The YAML file as on disk, with its hash (the ETag PUT takes in If-Match). */
async function loadFile(name: string): Promise<{ text: string; hash: string }> {
  const res = await raw(`/pipelines/${enc(name)}`, { headers: { accept: 'application/yaml' } });
  const text = await res.text();
  if (!res.ok) {
    let message = text;
    try { message = JSON.parse(text).message; } catch { /* as is */ }
    throw new ApiError(res.status, text, message);
  }
  return { text, hash: (res.headers.get('etag') ?? '').replace(/^W\//, '').replace(/"/g, '') };
}

/** What a dry-run result shows in the comparison: the sink output, or where and why it stopped. */
function shown(r: DryRunResult | undefined): string {
  if (!r) return '';
  if (r.outcome === 'sunk') return pretty(r.sinks);
  return pretty({ outcome: r.outcome, ...(r.stage ? { stage: r.stage } : {}), ...(r.sink ? { sink: r.sink } : {}), ...(r.error ? { error: r.error } : {}) });
}

function diffView(a: string, b: string, budget?: { cells: number }): HTMLElement {
  return h('pre', { class: 'diff' }, diffLines(a, b, budget).map((l) => h('span', { class: l.op === '+' ? 'add' : l.op === '-' ? 'del' : 'same' }, `${l.op} ${l.text}\n`)));
}

/** Events pasted by the operator: a JSON array, one JSON object, or one object per line. */
export function parseEvents(text: string): unknown[] {
  const t = text.trim();
  if (!t) return [];
  if (t.startsWith('[')) return JSON.parse(t) as unknown[];
  try {
    return [JSON.parse(t)];
  } catch {
    return t.split('\n').filter((l) => l.trim()).map((l, i) => {
      try { return JSON.parse(l); } catch (err) { throw new Error(`line ${i + 1}: ${(err as Error).message}`); }
    });
  }
}

/**
 * The pipeline's YAML in CodeMirror: schema completion and hover, POST /validate diagnostics
 * inline as you type (debounced), dry-run of the edit against the latest entries of the source
 * stream or pasted events beside the running version, and save with If-Match (a 409 shows the
 * file on disk side by side).
 */
export const editorPage: Page = (main, [name = '']) => {
  const title = h('h1', {}, name);
  const meta = h('div', { class: 'meta', 'data-testid': 'pipeline-meta' }, 'loading…');
  const saveButton = h('button', { type: 'button', class: 'primary', 'data-testid': 'save' }, 'Save');
  const revertButton = h('button', { type: 'button' }, 'Reload from disk');
  const saveStatus = h('span', { class: 'muted', 'data-testid': 'save-status' });
  const editorBox = h('div', { class: 'editor', 'data-testid': 'editor' });
  const problems = h('ul', { class: 'problems', 'data-testid': 'problems' });
  const validity = h('span', { class: 'muted', 'data-testid': 'validity' }, '');
  const conflict = h('section', { class: 'conflict', hidden: true, 'data-testid': 'conflict' });

  const count = h('input', { type: 'number', min: 1, max: 1000, value: 20, 'aria-label': 'how many entries', class: 'narrow' });
  const modeStream = h('input', { type: 'radio', name: 'dry-mode', value: 'stream', checked: true });
  const modeEvents = h('input', { type: 'radio', name: 'dry-mode', value: 'events' });
  const events = h('textarea', { rows: 5, placeholder: '[{"event": "…", "data": {…}}] or one JSON event per line', 'aria-label': 'events to dry-run', spellcheck: 'false' });
  const dryButton = h('button', { type: 'button', 'data-testid': 'dry-run' }, 'Dry-run');
  const dryOut = h('div', { class: 'dry-out', 'data-testid': 'dry-run-results' });

  fill(main,
    h('div', { class: 'title-row' }, title, meta, h('span', { class: 'spacer' }),
      h('a', { class: 'button', href: `#/tap/${enc(name)}` }, 'Tap'), revertButton, saveButton),
    h('div', { class: 'save-row' }, saveStatus),
    conflict,
    h('div', { class: 'edit-grid' },
      h('section', {}, editorBox, h('div', { class: 'problems-head' }, h('strong', {}, 'Problems '), validity), problems),
      h('section', { class: 'dry' },
        h('h2', {}, 'Dry-run the edit'),
        h('p', { class: 'muted small' }, 'Runs the text in the editor without side effects (entries are read, never acknowledged), and the running version on the same events, side by side.'),
        h('label', {}, modeStream, ' the latest ', count, ' entries of the source stream'),
        h('label', {}, modeEvents, ' these events:'),
        events,
        h('div', { class: 'actions' }, dryButton),
        dryOut)));

  let hash = '';
  let baseline = '';
  let view: EditorView | undefined;
  let file = `${name}.yaml`;
  let running = false;
  /** The running version's source stream (null for a schedule): a stream dry-run compares only on the same one. */
  let runningStream: string | null = null;
  let disposed = false;
  /** The last stream dry-run read another stream than the running version's: nothing to compare. */
  let otherStream = false;

  const setDirty = (text: string) => {
    // Until POST /validate answers for this text, the problems shown are those of an older one.
    validity.textContent = 'checking…';
    validity.className = 'muted';
    saveButton.textContent = text === baseline ? 'Save' : 'Save •';
    saveButton.title = text === baseline ? 'Nothing to save (Ctrl-S)' : 'Unsaved changes (Ctrl-S)';
  };
  const dirty = () => view !== undefined && view.state.doc.toString() !== baseline;
  // Closing or reloading the tab with unsaved changes asks first.
  const beforeUnload = (e: BeforeUnloadEvent) => { if (dirty()) e.preventDefault(); };
  window.addEventListener('beforeunload', beforeUnload);
  const onKey = (e: KeyboardEvent) => {
    if ((e.ctrlKey || e.metaKey) && e.key === 's') {
      e.preventDefault();
      saveButton.click();
    }
  };
  document.addEventListener('keydown', onKey);

  const showProblems = (diags: ApiDiagnostic[], warnings: ApiDiagnostic[] = []) => {
    const item = (severity: 'error' | 'warning', d: ApiDiagnostic) =>
      h('li', { class: severity }, h('code', {}, `${d.file ?? file}:${d.line ?? 1}:${d.col ?? 1}`), ' ', severity === 'warning' ? `warning: ${d.message}` : d.message);
    fill(problems, [...diags.map((d) => item('error', d)), ...warnings.map((d) => item('warning', d))]);
    const plural = (n: number, what: string) => `${n} ${what}${n === 1 ? '' : 's'}`;
    validity.textContent = diags.length ? plural(diags.length, 'problem') : warnings.length ? `valid, ${plural(warnings.length, 'warning')}` : 'valid';
    validity.className = diags.length ? 'error' : warnings.length ? 'warning' : 'ok';
  };

  /** POST /validate; its FILE:LINE:COL diagnostics as editor ranges (the rest of the line). */
  const lint = async (v: EditorView): Promise<Diagnostic[]> => {
    const text = v.state.doc.toString();
    let reply: { valid: boolean; diagnostics: ApiDiagnostic[]; warnings?: ApiDiagnostic[] };
    try {
      reply = await api('/validate', { json: { yaml: text, file } });
    } catch (err) {
      validity.textContent = `cannot validate: ${(err as Error).message}`;
      return [];
    }
    if (v.state.doc.toString() !== text) return [];
    const warnings = reply.warnings ?? [];
    showProblems(reply.diagnostics, warnings);
    const doc = v.state.doc;
    const mark = (severity: 'error' | 'warning') => (d: ApiDiagnostic): Diagnostic => {
      const line = doc.line(Math.min(Math.max(d.line ?? 1, 1), doc.lines));
      const from = Math.min(line.from + Math.max((d.col ?? 1) - 1, 0), line.to);
      return { from, to: Math.max(from, line.to), severity, message: `${d.file ?? file}:${d.line ?? 1}:${d.col ?? 1} ${severity === 'warning' ? 'warning: ' : ''}${d.message}` };
    };
    return [...reply.diagnostics.map(mark('error')), ...warnings.map(mark('warning'))];
  };

  const refreshMeta = async () => {
    const p = await api(`/pipelines/${enc(name)}`);
    running = p.status !== 'invalid';
    runningStream = p.source?.stream ?? null;
    file = (p.file ?? file).split('/').pop()!;
    fill(meta,
      h('span', { class: `badge ${p.status}` }, p.status), ' ',
      h('span', {}, 'generation ', h('strong', { 'data-testid': 'generation' }, String(p.generation ?? '–'))), ' ',
      h('span', { class: 'muted small', title: p.fileHash ?? '' }, `file ${String(p.fileHash ?? '').slice(0, 10)}`),
      p.lastReloadError ? h('div', { class: 'error small' }, p.lastReloadError) : null);
  };

  const load = async () => {
    const f = await loadFile(name);
    hash = f.hash;
    baseline = f.text;
    if (!view) view = createEditor(editorBox, f.text, { schema, lint, onChange: setDirty });
    else setText(view, f.text);
    setDirty(f.text);
  };

  const showConflict = async (mine: string) => {
    const disk = await loadFile(name);
    conflict.hidden = false;
    fill(conflict,
      h('h2', {}, 'Conflict: the file changed on disk since you opened it'),
      h('p', { class: 'muted' }, 'Your edit (left) was not saved. The file as it is now is on the right; the diff below goes from the disk version to yours.'),
      h('div', { class: 'side-by-side' },
        h('div', {}, h('h3', {}, 'Your edit'), h('pre', { 'data-testid': 'conflict-mine' }, mine)),
        h('div', {}, h('h3', {}, 'On disk now'), h('pre', { 'data-testid': 'conflict-disk' }, disk.text))),
      diffView(disk.text, mine),
      h('div', { class: 'actions' },
        h('button', { type: 'button', onclick: () => { hash = disk.hash; baseline = disk.text; conflict.hidden = true; setDirty(view!.state.doc.toString()); saveStatus.textContent = 'Keeping your edit: Save again to replace the disk version.'; } }, 'Keep my edit (save over it)'),
        h('button', { type: 'button', onclick: () => { hash = disk.hash; baseline = disk.text; setText(view!, disk.text); conflict.hidden = true; saveStatus.textContent = 'Loaded the disk version.'; } }, 'Take the disk version')));
  };

  saveButton.addEventListener('click', async () => {
    if (!view) return;
    const text = view.state.doc.toString();
    saveStatus.textContent = 'saving…';
    saveStatus.className = 'muted';
    try {
      const res = await raw(`/pipelines/${enc(name)}`, { method: 'PUT', body: text, headers: { 'content-type': 'application/yaml', ...(hash ? { 'if-match': `"${hash}"` } : {}) } });
      const body = await res.json().catch(() => ({}));
      if (res.status === 409) {
        saveStatus.textContent = `Not saved: ${body.message}`;
        saveStatus.className = 'error';
        await showConflict(text);
        return;
      }
      if (!res.ok) {
        saveStatus.textContent = `Not saved (${res.status}): ${body.message ?? ''}`;
        saveStatus.className = 'error';
        if (body.diagnostics) showProblems(body.diagnostics);
        return;
      }
      // The reply's hash is the sha256 of the text just written: the next save's If-Match.
      hash = body.hash;
      baseline = text;
      setDirty(view.state.doc.toString());
      conflict.hidden = true;
      saveStatus.textContent = `Saved: generation ${body.generation} (${body.change}).`;
      saveStatus.className = 'ok';
      await refreshMeta();
    } catch (err) {
      saveStatus.textContent = `Not saved: ${(err as Error).message}`;
      saveStatus.className = 'error';
    }
  });

  revertButton.addEventListener('click', async () => {
    await load();
    conflict.hidden = true;
    saveStatus.textContent = 'Reloaded from disk.';
  });

  dryButton.addEventListener('click', async () => {
    if (!view) return;
    const text = view.state.doc.toString();
    otherStream = false;
    fill(dryOut, h('p', { class: 'muted' }, 'running…'));
    try {
      let edited: DryRun;
      let current: DryRun | undefined;
      if (modeEvents.checked) {
        const list = parseEvents(events.value);
        if (!list.length) throw new Error('paste at least one event');
        edited = await api<DryRun>(`/pipelines/${enc(name)}/dry-run`, { json: { yaml: text, events: list } });
        if (running) current = await api<DryRun>(`/pipelines/${enc(name)}/dry-run`, { json: { events: list } });
      } else {
        const n = Math.max(1, Math.min(1000, Number(count.value) || 20));
        edited = await api<DryRun>(`/pipelines/${enc(name)}/dry-run`, { json: { yaml: text, count: n } });
        const ids = edited.results.map((r) => r.id);
        // The running version on the very same entries: the range the edit was run on (when the edit reads the same stream).
        const { byLine } = outline(text);
        const streamNode = byLine.flat().find((n) => n.key === 'stream' && n.parent?.key === 'source' && n.parent.parent?.kind === 'root');
        const sameStream = !streamNode?.value || streamNode.value.replace(/^["']|["']$/g, '') === runningStream;
        if (!sameStream) otherStream = true;
        if (running && sameStream && ids.length) current = await api<DryRun>(`/pipelines/${enc(name)}/dry-run`, { json: { from: ids[0], to: ids[ids.length - 1], count: n } }).catch(() => undefined);
      }
      if (disposed) return;
      renderDryRun(edited, current, modeEvents.checked);
    } catch (err) {
      const diags: ApiDiagnostic[] | undefined = (err as ApiError).body?.diagnostics;
      fill(dryOut, h('p', { class: 'error' }, `Dry-run failed: ${(err as Error).message}`));
      if (diags) showProblems(diags);
    }
  });

  const renderDryRun = (edited: DryRun, current: DryRun | undefined, byIndex: boolean) => {
    const currentById = new Map((current?.results ?? []).map((r) => [r.id, r]));
    let changed = 0;
    // One bound on the diff tables of all rows (up to 1000 of them): the page stays responsive.
    const budget = { cells: 20_000_000 };
    const rows = edited.results.map((r, i) => {
      const before = current ? (byIndex ? current.results[i] : currentById.get(r.id)) : undefined;
      const differs = current !== undefined && shown(before) !== shown(r);
      if (differs) changed++;
      return h('details', { class: `dry-row ${differs ? 'changed' : ''}`, open: differs || edited.results.length <= 3, 'data-outcome': r.outcome },
        h('summary', {},
          h('code', {}, r.id), ' ',
          h('span', { class: `badge ${r.outcome}` }, r.outcome),
          before ? [' ', h('span', { class: 'muted small' }, 'running: '), h('span', { class: `badge ${before.outcome}` }, before.outcome)] : null,
          differs ? h('span', { class: 'changed-mark' }, ' changed') : current ? h('span', { class: 'muted small' }, ' same') : null,
          r.error ? h('span', { class: 'error small' }, ` ${r.stage ? `${r.stage}: ` : ''}${r.error}`) : null),
        current ? diffView(shown(before), shown(r), budget) : h('pre', {}, shown(r)));
    });
    const sum = (s: Record<string, number>) => Object.entries(s).map(([k, v]) => `${k} ${v}`).join(' · ');
    fill(dryOut,
      h('p', { 'data-testid': 'dry-run-summary' }, h('strong', {}, `${edited.results.length} event${edited.results.length === 1 ? '' : 's'}`), ` — edit: ${sum(edited.summary)}`,
        current ? [h('br', {}), `running: ${sum(current.summary)} — `, h('strong', {}, `${changed} changed`)] : h('span', { class: 'muted' }, otherStream ? ' (the edit reads another stream than the running version: nothing to compare)' : ' (no running version to compare)')),
      edited.results.length ? h('p', { class: 'muted small' }, current ? 'Diffs go from the running version (−) to the edit (+).' : '') : h('p', { class: 'muted' }, 'The source stream has no entries yet; paste events instead.'),
      rows);
  };

  void (async () => {
    try {
      await load();
    } catch (err) {
      fill(editorBox, h('p', { class: 'error' }, `Cannot load ${name}: ${(err as Error).message}`));
    }
  })();
  const stop = poll(() => refreshMeta().catch((err) => { meta.textContent = (err as Error).message; }), 2000);
  return () => {
    disposed = true;
    stop();
    window.removeEventListener('beforeunload', beforeUnload);
    document.removeEventListener('keydown', onKey);
    view?.destroy();
  };
};
