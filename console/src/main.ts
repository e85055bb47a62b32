/**
 * The Synapse web console: a hash-routed single page over the admin API (no server-side
 * rendering). Each page is a function that renders into the main element and returns a
 * disposer (to stop its polling or its tap) for when the route changes.
 */
import './style.css';
import { onTokenNeeded, token } from './api.ts';
import { h, fill } from './dom.ts';
import { pipelinesPage } from './pages/pipelines.ts';
import { tapPage } from './pages/tap.ts';
import { dlqPage } from './pages/dlq.ts';
import { streamsPage } from './pages/streams.ts';

export type Page = (main: HTMLElement, params: string[]) => (() => void) | void;

/** The editor (CodeMirror, the schema: most of the bundle) loads when first opened. */
const editorPage: Page = (main, params) => {
  let dispose: (() => void) | void;
  let gone = false;
  main.textContent = 'loading the editor…';
  import('./pages/editor.ts').then(
    (m) => { if (!gone) dispose = m.editorPage(main, params); },
    (err: Error) => { main.textContent = `cannot load the editor: ${err.message}`; },
  );
  return () => {
    gone = true;
    if (dispose) dispose();
  };
};

const routes: [RegExp, Page][] = [
  [/^\/pipelines\/?$/, pipelinesPage],
  [/^\/edit\/([^/]+)$/, editorPage],
  [/^\/tap(?:\/([^/]+))?$/, tapPage],
  [/^\/dlq(?:\/(.+))?$/, dlqPage],
  [/^\/streams(?:\/(.+))?$/, streamsPage],
];

const THEME_KEY = 'synapse.theme';

/** Light or dark: the saved choice, else the system's (prefers-color-scheme). */
function applyTheme(theme: string | null): void {
  if (theme === 'light' || theme === 'dark') document.documentElement.dataset.theme = theme;
  else delete document.documentElement.dataset.theme;
}

function currentTheme(): 'light' | 'dark' {
  const set = document.documentElement.dataset.theme;
  if (set === 'light' || set === 'dark') return set;
  return matchMedia('(prefers-color-scheme: dark)').matches ? 'dark' : 'light';
}

/** The header's link to the API reference (/docs): a browser cannot send the token there, so it is hidden once one is needed. */
let apiLink: HTMLAnchorElement | undefined;

/** The token dialog: shown when a call gets 401; resolves with what the operator typed. */
function tokenDialog(): Promise<string> {
  if (apiLink) apiLink.hidden = true;
  return new Promise((resolve) => {
    const input = h('input', { type: 'password', name: 'token', autocomplete: 'off', placeholder: 'SYNAPSE_ADMIN_TOKEN', 'aria-label': 'admin token', required: true });
    const dialog = h('dialog', { class: 'token-dialog' },
      h('form', { method: 'dialog', onsubmit: (e: Event) => {
        e.preventDefault();
        if (!input.value) return;
        dialog.close();
        dialog.remove();
        resolve(input.value);
      } },
      h('h2', {}, 'Admin token'),
      h('p', {}, 'This engine needs its admin token (SYNAPSE_ADMIN_TOKEN). It is kept for this tab only.'),
      input,
      h('div', { class: 'actions' }, h('button', { type: 'submit', class: 'primary' }, 'Continue'))));
    document.body.appendChild(dialog);
    dialog.addEventListener('cancel', (e) => e.preventDefault());
    dialog.showModal();
    input.focus();
  });
}

function start(): void {
  applyTheme(localStorage.getItem(THEME_KEY));
  onTokenNeeded(tokenDialog);
  const links: [string, string][] = [['#/pipelines', 'Pipelines'], ['#/tap', 'Tap'], ['#/dlq', 'DLQ'], ['#/streams', 'Streams']];
  const nav = h('nav', {}, links.map(([href, label]) => h('a', { href, 'data-nav': label.toLowerCase() }, label)));
  const themeButton = h('button', { class: 'theme', type: 'button', title: 'Light or dark', 'aria-label': 'toggle light or dark theme', onclick: () => {
    const next = currentTheme() === 'dark' ? 'light' : 'dark';
    localStorage.setItem(THEME_KEY, next);
    applyTheme(next);
    themeButton.textContent = next === 'dark' ? '☾' : '☀';
  } }, currentTheme() === 'dark' ? '☾' : '☀');
  const header = h('header', {}, h('a', { class: 'brand', href: '#/pipelines' }, 'Synapse'), nav, h('span', { class: 'spacer' }),
    (apiLink = h('a', { href: '/docs', class: 'muted', target: '_blank', rel: 'noopener', title: 'The API reference (Swagger UI)', hidden: token() !== null }, 'API')), themeButton);
  const main = h('main', {});
  document.body.append(header, main);

  let dispose: (() => void) | void;
  // A link's part that is not valid percent-encoding (`%E0%A4%A`) is taken as it is, not a blank page.
  const decodePart = (p: string | undefined) => {
    if (p === undefined) return '';
    try { return decodeURIComponent(p); } catch { return p; }
  };
  const route = () => {
    const path = location.hash.replace(/^#/, '') || '/pipelines';
    if (dispose) dispose();
    dispose = undefined;
    fill(main);
    for (const a of nav.querySelectorAll('a')) a.classList.toggle('active', path.startsWith(`/${a.dataset.nav}`) || (a.dataset.nav === 'pipelines' && path.startsWith('/edit')));
    for (const [re, page] of routes) {
      const m = re.exec(path);
      if (m) {
        dispose = page(main, m.slice(1).map(decodePart));
        return;
      }
    }
    fill(main, h('p', {}, `No page ${path}. `, h('a', { href: '#/pipelines' }, 'Pipelines')));
  };
  window.addEventListener('hashchange', route);
  route();
}

start();
