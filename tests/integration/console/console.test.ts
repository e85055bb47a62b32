import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Page } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { browserUnavailable, launchBrowser, screenshot, type TestBrowser } from '../../helpers/browser.ts';
import { PING_ID, pingSchema, ping, pipelineYaml, publish } from '../../helpers/engine.ts';
import { killEngines, spawnEngine, type EngineProcess } from '../../helpers/engine-process.ts';
import { startTestRedis, waitFor, type TestRedis } from '../../helpers/redis.ts';

// The web console (/ui/) in a real chromium against a real engine (`synapse run`) and Redis:
// every page, driven as an operator would. Waits poll for states, never sleep; generous bounds
// for a loaded two-core machine. Screenshots go to test-artifacts/console/.
const unavailable = browserUnavailable();
const WAIT = 60_000;

/**
 * Console errors of a page but the browser's own notes of replies a test provoked (a 409 the
 * console shows as a conflict): CSP violations and script errors stay.
 */
function unexpected(errors: string[], statuses: number[]): string[] {
  return errors.filter((e) => !statuses.some((s) => e.startsWith(`Failed to load resource: the server responded with a status of ${s} `)));
}

/** Waits for the admin API to answer (the engine logs "engine started" before it listens). */
async function adminUp(base: string): Promise<void> {
  await waitFor(async () => (await fetch(`${base}/health`).catch(() => undefined))?.ok, `the admin API at ${base}`, WAIT);
}

/** Whether a consumer group has read and acknowledged everything in its stream. */
async function settled(client: ReturnType<TestRedis['client']>, stream: string, group: string): Promise<boolean> {
  const rows = (await client.xinfo('GROUPS', stream)) as unknown[][];
  for (const row of rows) {
    const g: Record<string, unknown> = {};
    for (let i = 0; i < row.length; i += 2) g[String(row[i])] = row[i + 1];
    if (g.name === group) return Number(g.pending) === 0 && Number(g.lag) === 0;
  }
  return false;
}

/** The suite's pipelines, one key per line (pipelineYaml), each on streams of its own. */
const PIPELINES = {
  orders: pipelineYaml({ name: 'orders', stream: 'orders', out: 'orders-out', extra: 'description: Paid orders, renumbered for the ledger' }),
  'orders-audit': pipelineYaml({ name: 'orders-audit', stream: 'audit', out: 'audit-out', extra: 'description: Every order event, for the audit trail' }),
  payments: pipelineYaml({ name: 'payments', stream: 'payments', out: 'payments-out', extra: 'description: Payment outcomes; n = 13 fails its transform' }),
};

describe.skipIf(unavailable)(`the web console in chromium${unavailable ? ` (skipped: ${unavailable})` : ''}`, () => {
  let redis: TestRedis;
  let dir: string;
  let engine: EngineProcess;
  let base: string;
  let browser: TestBrowser;

  beforeAll(async () => {
    redis = await startTestRedis({ own: true });
    dir = await mkdtemp(join(tmpdir(), 'synapse-console-'));
    const pipelines = join(dir, 'pipelines');
    const schemas = join(dir, 'schemas');
    await Promise.all([pipelines, schemas].map((d) => import('node:fs/promises').then((fs) => fs.mkdir(d))));
    for (const [name, yaml] of Object.entries(PIPELINES)) await writeFile(join(pipelines, `${name}.yaml`), yaml);
    await writeFile(join(schemas, 'ping.json'), JSON.stringify(pingSchema()));
    engine = await spawnEngine({ pipelines, schemas, redisUrl: redis.url, consumer: 'console-test', startTimeoutMs: WAIT });
    base = `http://127.0.0.1:${engine.adminPort}`;
    await adminUp(base);
    browser = await launchBrowser();
  }, 120_000);

  afterAll(async () => {
    await browser?.close();
    await engine?.stop().catch(() => undefined);
    await killEngines();
    await redis?.close();
    if (dir) await rm(dir, { recursive: true, force: true });
  });

  async function open(path: string, opts: { colorScheme?: 'light' | 'dark' } = {}): Promise<{ page: Page; errors: string[] }> {
    const { page, errors } = await browser.page(opts);
    page.setDefaultTimeout(WAIT);
    await page.goto(`${base}${path}`);
    return { page, errors };
  }

  it('a browser at / is sent to /ui/, served with a strict CSP; API clients keep the JSON index', async () => {
    const html = await fetch(`${base}/`, { headers: { accept: 'text/html,application/xhtml+xml,*/*;q=0.8' }, redirect: 'manual' });
    expect(html.status).toBe(302);
    expect(html.headers.get('location')).toBe('/ui/');
    const json = await fetch(`${base}/`);
    expect(await json.json()).toMatchObject({ console: '/ui/', docs: '/docs' });
    const ui = await fetch(`${base}/ui/`);
    expect(ui.status).toBe(200);
    const csp = ui.headers.get('content-security-policy') ?? '';
    expect(csp).toContain("script-src 'self'");
    expect(csp).not.toContain('unsafe-inline');
    expect(csp).toContain("frame-ancestors 'none'");
    expect(await ui.text()).not.toMatch(/<script(?![^>]*\bsrc=)[^>]*>/);
  });

  it('lists every pipeline with status, generation and counters, and pauses and resumes one', async () => {
    await publish(redis.client(), 'orders', [ping(1), ping(2), ping(3, { keep: false })]);
    const { page, errors } = await open('/');
    expect(page.url()).toBe(`${base}/ui/`);
    const row = page.locator('tr[data-pipeline="orders"]');
    await row.waitFor();
    await expect.poll(() => page.locator('tr[data-pipeline]').count(), { timeout: WAIT }).toBe(3);
    expect(await row.locator('[data-testid=status]').textContent()).toBe('running');
    expect(await row.locator('[data-testid=generation]').textContent()).toBe('1');
    // Filtered: the third ping has keep: false.
    await expect.poll(() => row.locator('td').nth(5).textContent(), { timeout: WAIT }).toBe('1');

    // Traffic while the page polls: rates and the sparkline fill in from the counters.
    const producer = redis.client();
    let n = 100;
    const traffic = setInterval(() => void publish(producer, 'audit', [ping(n++), ping(n++), ping(n++, { keep: false })]).catch(() => undefined), 250);
    try {
      const audit = page.locator('tr[data-pipeline="orders-audit"]');
      await expect.poll(async () => Number(await audit.locator('td').nth(3).textContent()), { timeout: WAIT }).toBeGreaterThan(0);
      await expect.poll(() => audit.locator('svg.spark polyline').getAttribute('points').then((p) => (p ?? '').split(' ').length), { timeout: WAIT }).toBeGreaterThanOrEqual(4);
    } finally {
      clearInterval(traffic);
    }
    await screenshot(page, 'pipelines');

    await row.getByRole('button', { name: 'Pause' }).click();
    await expect.poll(() => row.locator('[data-testid=status]').textContent(), { timeout: WAIT }).toBe('paused');
    await row.getByRole('button', { name: 'Resume' }).click();
    await expect.poll(() => row.locator('[data-testid=status]').textContent(), { timeout: WAIT }).toBe('running');
    expect(errors).toEqual([]);
    await page.context().close();
  }, 120_000);

  it('shows a validation error inline at its line as you type, dry-runs the edit beside the running version, and saves it: the generation goes up', async () => {
    const client = redis.client();
    await publish(client, 'orders', [ping(4), ping(5)]);
    await waitFor(() => settled(client, 'orders', 'orders'), 'orders to settle what was published', WAIT);
    const sunkBefore = await client.xlen('orders-out');
    const { page, errors } = await open('/ui/#/edit/orders');
    const content = page.locator('.cm-content');
    await content.waitFor();
    await expect.poll(() => page.locator('[data-testid=validity]').textContent(), { timeout: WAIT }).toBe('valid');
    expect(await page.locator('[data-testid=generation]').textContent()).toBe('1');

    // Hover on a key shows its description from the schema; completion offers the keys not yet there.
    await page.locator('.cm-line').nth(5).getByText('batch').hover();
    const hover = page.locator('.cm-schema-hover');
    await hover.waitFor();
    expect(await hover.textContent()).toMatch(/^source\.batch.*type: integer/s);
    await page.mouse.move(0, 0);
    await page.locator('.cm-line').nth(15).click();
    await page.keyboard.press('End');
    await page.keyboard.press('Enter');
    await page.keyboard.type('dl');
    const completion = page.locator('.cm-tooltip-autocomplete');
    await completion.waitFor();
    expect(await completion.textContent()).toContain('dlq');
    await page.keyboard.press('Escape');
    for (let i = 0; i < 3; i++) await page.keyboard.press('Backspace');
    await expect.poll(() => page.locator('.cm-line').count(), { timeout: WAIT }).toBe(17);
    await expect.poll(() => page.locator('[data-testid=validity]').textContent(), { timeout: WAIT }).toBe('valid');

    // An invalid edit: line 6 is `  batch: 100`.
    const line6 = page.locator('.cm-line').nth(5);
    expect(await line6.textContent()).toBe('  batch: 100');
    await line6.click();
    await page.keyboard.press('End');
    for (let i = 0; i < 3; i++) await page.keyboard.press('Backspace');
    await page.keyboard.type('lots');
    // The problems of this text (an older text's may show while /validate answers).
    await expect.poll(() => page.locator('[data-testid=validity]').textContent(), { timeout: WAIT }).toBe('1 problem');
    expect(await page.locator('[data-testid=problems] li').allTextContents()).toEqual([expect.stringMatching(/^orders\.yaml:6:\d+ /)]);
    // The same diagnostic, underlined in the editor on line 6.
    await page.locator('.cm-line').nth(5).locator('.cm-lintRange-error').waitFor();
    await screenshot(page, 'editor-error');

    // Put it back (typed, not undone: undo groups depend on typing speed); make a real edit: the transform's version 1 → 2 (line 11).
    for (let i = 0; i < 4; i++) await page.keyboard.press('Backspace');
    await page.keyboard.type('100');
    await expect.poll(() => page.locator('.cm-line').nth(5).textContent(), { timeout: WAIT }).toBe('  batch: 100');
    await expect.poll(() => page.locator('[data-testid=validity]').textContent(), { timeout: WAIT }).toBe('valid');
    const line11 = page.locator('.cm-line').nth(10);
    expect(await line11.textContent()).toContain('\\"version\\": 1 }"');
    await line11.click();
    await page.keyboard.press('End');
    // The line ends `"version": 1 }"`: step back over ` }"` to the 1.
    for (let i = 0; i < 3; i++) await page.keyboard.press('ArrowLeft');
    await page.keyboard.press('Backspace');
    await page.keyboard.type('2');
    await expect.poll(() => page.locator('[data-testid=validity]').textContent(), { timeout: WAIT }).toBe('valid');

    // Dry-run on the latest 2 entries of the source stream (4 and 5): the edit and the running version differ in `version`.
    await page.getByLabel('how many entries').fill('2');
    await page.getByTestId('dry-run').click();
    const summary = page.locator('[data-testid=dry-run-summary]');
    await summary.waitFor();
    expect(await summary.textContent()).toMatch(/^2 events — edit: sunk 2 · filtered 0 · dlq 0 · dropped 0.*running: sunk 2 · filtered 0 · dlq 0 · dropped 0 — 2 changed/);
    const changed = page.locator('.dry-row.changed').first();
    expect(await changed.locator('pre.diff .del').first().textContent()).toContain('"version": 1');
    expect(await changed.locator('pre.diff .add').first().textContent()).toContain('"version": 2');
    // The dry-run wrote nothing, and its entries were never delivered to the group again.
    expect(await client.xlen('orders-out')).toBe(sunkBefore);
    expect(await settled(client, 'orders', 'orders')).toBe(true);
    await screenshot(page, 'editor-dry-run');

    // Pasted events instead.
    await page.locator('input[value=events]').check();
    await page.getByLabel('events to dry-run').fill(JSON.stringify([ping(7), ping(13)]));
    await page.getByTestId('dry-run').click();
    await expect.poll(() => summary.textContent(), { timeout: WAIT }).toMatch(/2 events — edit: sunk 1 · filtered 0 · dlq 1/);

    await page.getByTestId('save').click();
    await expect.poll(() => page.locator('[data-testid=save-status]').textContent(), { timeout: WAIT }).toMatch(/^Saved: generation 2/);
    await expect.poll(() => page.locator('[data-testid=generation]').textContent(), { timeout: WAIT }).toBe('2');
    expect(await readFile(join(dir, 'pipelines', 'orders.yaml'), 'utf8')).toContain('\\"version\\": 2 }"');
    await screenshot(page, 'editor-saved');

    // Someone else edits the file: the next save gets 409 and shows both versions.
    const onDisk = (await readFile(join(dir, 'pipelines', 'orders.yaml'), 'utf8')).replace('batch: 100', 'batch: 50');
    await writeFile(join(dir, 'pipelines', 'orders.yaml'), onDisk);
    await page.locator('.cm-line').nth(0).click();
    await page.keyboard.press('End');
    await page.keyboard.type(' ');
    await page.keyboard.press('Backspace');
    await page.locator('.cm-line').nth(14).click();
    await page.keyboard.press('End');
    await page.keyboard.type('\n# reviewed');
    await page.getByTestId('save').click();
    const conflict = page.locator('[data-testid=conflict]');
    await conflict.waitFor({ state: 'visible' });
    expect(await page.locator('[data-testid=conflict-disk]').textContent()).toContain('batch: 50');
    expect(await page.locator('[data-testid=conflict-mine]').textContent()).toContain('# reviewed');
    await screenshot(page, 'editor-conflict');
    await page.emulateMedia({ colorScheme: 'dark' });
    await screenshot(page, 'editor-dark');
    await page.emulateMedia({ colorScheme: 'light' });

    // The engine hot-reloads the file written behind the console's back (generation 3); then
    // keep my edit: the next save replaces the file on disk.
    await expect.poll(() => page.locator('[data-testid=generation]').textContent(), { timeout: WAIT }).toBe('3');
    await page.getByRole('button', { name: 'Keep my edit (save over it)' }).click();
    await page.getByTestId('save').click();
    await expect.poll(() => page.locator('[data-testid=save-status]').textContent(), { timeout: WAIT }).toMatch(/^Saved: generation 4 /);
    const saved = await readFile(join(dir, 'pipelines', 'orders.yaml'), 'utf8');
    expect(saved).toContain('# reviewed');
    expect(saved).toContain('batch: 100');

    // The save's generation (1, then 2 from the first save, 3 from the file written behind the
    // console's back, 4 from this save) shows in the header and on the pipelines page, with no page reload.
    await expect.poll(() => page.locator('[data-testid=generation]').textContent(), { timeout: WAIT }).toBe('4');
    await page.getByRole('link', { name: 'Pipelines' }).click();
    await expect.poll(() => page.locator('tr[data-pipeline="orders"] [data-testid=generation]').textContent(), { timeout: WAIT }).toBe('4');
    expect(unexpected(errors, [409])).toEqual([]);
    await page.context().close();
  }, 180_000);

  it('taps a pipeline: an event published appears with its path through the stages; filter and pause', async () => {
    // Whatever earlier tests published to `audit` is settled first: the tap shows only this test's events.
    const client = redis.client();
    await waitFor(() => settled(client, 'audit', 'orders-audit'), 'orders-audit to settle earlier traffic', WAIT);
    const { page, errors } = await open('/ui/#/tap/orders-audit');
    await expect.poll(() => page.locator('[data-testid=tap-state]').textContent(), { timeout: WAIT }).toMatch(/^live/);
    const [kept, , failed] = await publish(redis.client(), 'audit', [ping(21), ping(22, { keep: false }), ping(13)]);
    const row = page.locator(`.tap-row[data-id="${kept}"]`);
    await row.waitFor();
    expect(await row.getAttribute('data-outcome')).toBe('sunk');
    expect(await row.locator('.step').allTextContents()).toEqual(['decode', 'validate', 'filter', 'transform', 'sink']);
    await page.locator(`.tap-row[data-id="${failed}"]`).waitFor();
    expect(await page.locator(`.tap-row[data-id="${failed}"] .step.failed`).textContent()).toBe('transform');
    await row.locator('summary').click();
    expect(await row.locator('.tap-detail pre').last().textContent()).toContain('"version": 1');
    await screenshot(page, 'tap');

    await page.getByLabel('outcome').selectOption('dlq');
    await expect.poll(() => page.locator('.tap-row').count(), { timeout: WAIT }).toBe(1);
    await page.getByLabel('outcome').selectOption('all');

    await page.getByTestId('tap-pause').click();
    const [held] = await publish(redis.client(), 'audit', [ping(23)]);
    await expect.poll(() => page.locator('[data-testid=tap-state]').textContent(), { timeout: WAIT }).toMatch(/paused \(1 held\)/);
    expect(await page.locator(`.tap-row[data-id="${held}"]`).count()).toBe(0);
    await page.getByTestId('tap-pause').click();
    await page.locator(`.tap-row[data-id="${held}"]`).waitFor();
    expect(errors).toEqual([]);
    await page.context().close();
  }, 120_000);

  it('lists DLQ entries with stage, reason and attempts, and redrives one, then all: the result of each is shown', async () => {
    const client = redis.client();
    const [bad] = await publish(client, 'payments', [ping(13), ping(31)]);
    await waitFor(async () => (await client.xlen('payments:dlq')) >= 1, 'the DLQ entry of n = 13', WAIT);
    const { page, errors } = await open('/ui/#/dlq/payments%3Adlq');
    const entry = page.locator('[data-testid=dlq-entries] tbody tr[data-id]').first();
    await entry.waitFor();
    expect(await entry.textContent()).toContain('thirteen is unlucky');
    expect(await entry.locator('td').nth(2).textContent()).toBe('payments');
    expect(await entry.locator('td').nth(3).textContent()).toBe('transform');
    await entry.locator('details summary').click();
    expect(await entry.locator('details pre').textContent()).toContain('"n": 13');
    await screenshot(page, 'dlq');

    await entry.getByRole('button', { name: 'Redrive' }).click();
    const result = page.locator('[data-testid=redrive-result]');
    await expect.poll(() => result.locator('h2').textContent(), { timeout: WAIT }).toMatch(/^Redrive: 1 run, 0 skipped, 0 missing/);
    // Still thirteen: it fails again and is dead-lettered anew, as the result says.
    expect(await result.locator('li[data-outcome=dlq]').textContent()).toContain('again, as');

    // The pipeline fixed (over the API), "Redrive all" settles it.
    const file = await fetch(`${base}/pipelines/payments`, { headers: { accept: 'application/yaml' } });
    const fixed = (await file.text()).replace(/data\.n = 13 \? \$error\(\\"thirteen is unlucky\\"\) : /, '');
    expect(fixed).not.toContain('thirteen');
    const put = await fetch(`${base}/pipelines/payments`, { method: 'PUT', body: fixed, headers: { 'content-type': 'application/yaml', 'if-match': file.headers.get('etag')! } });
    expect(put.status, await put.clone().text()).toBe(200);
    page.once('dialog', (d) => void d.accept());
    await page.getByRole('button', { name: 'Redrive all' }).click();
    await result.locator('li[data-outcome=sunk]').waitFor();
    expect(await result.locator('h2').textContent()).toMatch(/^Redrive: 1 run, 0 skipped, 0 missing/);
    await expect.poll(() => page.locator('[data-testid=dlq-info]').textContent(), { timeout: WAIT }).toBe('0 entries');
    expect(await client.xlen('payments:dlq')).toBe(0);
    void bad;
    await screenshot(page, 'dlq-redriven');
    expect(errors).toEqual([]);
    await page.context().close();
  }, 120_000);

  it('shows streams with length, groups, pending and lag, and peeks at the latest entries', async () => {
    const { page, errors } = await open('/ui/#/streams', { colorScheme: 'dark' });
    const row = page.locator('tr[data-stream="orders"]').first();
    await row.waitFor();
    await row.getByRole('link', { name: 'Peek' }).click();
    const peek = page.locator('[data-testid=peek] .peek-entry').first();
    await peek.waitFor();
    expect(await peek.textContent()).toContain('payload');
    await screenshot(page, 'streams-dark');
    // The toggle switches to light (and back), whatever the system says.
    await page.getByRole('button', { name: 'toggle light or dark theme' }).click();
    expect(await page.evaluate(() => document.documentElement.dataset.theme)).toBe('light');
    await page.getByRole('button', { name: 'toggle light or dark theme' }).click();
    expect(await page.evaluate(() => document.documentElement.dataset.theme)).toBe('dark');
    expect(errors).toEqual([]);
    await page.context().close();
  }, 120_000);
  it('hostile event data executes nothing and stays bounded in the tap, DLQ and peek; a malformed link still shows a page', async () => {
    const client = redis.client();
    await waitFor(() => settled(client, 'audit', 'orders-audit'), 'orders-audit to settle earlier traffic', WAIT);
    const html = '<img src=x onerror="document.title=\'pwned\'"><script>document.title=\'pwned\'</script>';
    const hostile = (n: number) => ({ ...ping(n, { tag: html, keep: true }), source: 'javascript:document.title="pwned"', timestamp: 'A'.repeat(400_000) });
    const { page, errors } = await open('/ui/#/tap/orders-audit');
    await expect.poll(() => page.locator('[data-testid=tap-state]').textContent(), { timeout: WAIT }).toMatch(/^live/);
    const ids = await publish(client, 'audit', [hostile(51), hostile(52), hostile(53), { ...hostile(54), timestamp: 'now' }]);
    for (const id of ids) await page.locator(`.tap-row[data-id="${id}"]`).waitFor();
    await page.locator(`.tap-row[data-id="${ids[0]}"] summary`).click();
    // The detail shows the event, cut: not hundreds of KB per row in the page.
    await expect.poll(() => page.locator(`.tap-row[data-id="${ids[0]}"] pre`).first().textContent(), { timeout: WAIT }).toMatch(/javascript:.*cut: \d+ characters/s);
    expect((await page.locator('[data-testid=tap-list]').textContent())!.length).toBeLessThan(300_000);
    // The filter still answers (on what the engine sent: the markup of the short one only).
    await page.getByLabel('filter').fill('onerror');
    await expect.poll(() => page.locator('.tap-row').count(), { timeout: WAIT }).toBe(1);
    await page.locator(`.tap-row[data-id="${ids[3]}"] summary`).click();
    expect(await page.locator(`.tap-row[data-id="${ids[3]}"] pre`).first().textContent()).toContain('<img src=x onerror=');
    expect(await page.locator('img').count()).toBe(0);
    expect(await page.title()).not.toBe('pwned');

    // The DLQ and the peek of the same kind of data (13 fails its transform).
    // A DLQ entry written as the engine writes them, every field hostile (the page reads once: it is there before).
    const dead = await client.xadd('payments:dlq', '*', 'payload', JSON.stringify(hostile(13)).slice(0, 5000), 'error', html, 'stage', html, 'pipeline', 'javascript:document.title="pwned"',
      'source_id', html, 'attempts', '1', 'failed_at', html);
    await page.goto(`${base}/ui/#/dlq/payments%3Adlq`);
    await page.locator(`[data-testid=dlq-entries] tbody tr[data-id="${dead}"]`).waitFor();
    await page.goto(`${base}/ui/#/streams/audit`);
    await page.locator('[data-testid=peek] .peek-entry').first().waitFor();
    expect(await page.locator('img').count()).toBe(0);
    expect(await page.title()).not.toBe('pwned');

    // A link whose path is not valid percent-encoding: a page, not a blank one.
    await page.goto(`${base}/ui/#/streams/%E0%A4%A`);
    await expect.poll(() => page.locator('main').textContent(), { timeout: WAIT }).toMatch(/\S/);
    // Its peek is a 404 (no pipeline uses such a stream), shown as an error.
    expect(unexpected(errors, [404])).toEqual([]);
    await page.context().close();
  }, 180_000);
});

describe.skipIf(unavailable)(`the web console with an admin token${unavailable ? ` (skipped: ${unavailable})` : ''}`, () => {
  let redis: TestRedis;
  let dir: string;
  let engine: EngineProcess;
  let browser: TestBrowser;
  const TOKEN = 'console-test-token';

  beforeAll(async () => {
    redis = await startTestRedis({ own: true });
    dir = await mkdtemp(join(tmpdir(), 'synapse-console-token-'));
    const fs = await import('node:fs/promises');
    await fs.mkdir(join(dir, 'pipelines'));
    await fs.mkdir(join(dir, 'schemas'));
    await writeFile(join(dir, 'pipelines', 'orders.yaml'), PIPELINES.orders);
    await writeFile(join(dir, 'schemas', 'ping.json'), JSON.stringify(pingSchema()));
    engine = await spawnEngine({ pipelines: join(dir, 'pipelines'), schemas: join(dir, 'schemas'), redisUrl: redis.url, consumer: 'console-token', env: { SYNAPSE_ADMIN_TOKEN: TOKEN }, startTimeoutMs: WAIT });
    await adminUp(`http://127.0.0.1:${engine.adminPort}`);
    browser = await launchBrowser();
  }, 120_000);

  afterAll(async () => {
    await browser?.close();
    await engine?.stop().catch(() => undefined);
    await killEngines();
    await redis?.close();
    if (dir) await rm(dir, { recursive: true, force: true });
  });

  it('asks for the token once, keeps it for the tab, and the API still needs it', async () => {
    const base = `http://127.0.0.1:${engine.adminPort}`;
    expect((await fetch(`${base}/pipelines`)).status).toBe(401);
    expect((await fetch(`${base}/`)).status).toBe(401);
    const { page, errors } = await browser.page();
    page.setDefaultTimeout(WAIT);
    // Every request the page makes: the token only ever goes, as a header, to the engine's origin.
    const requests: { url: string; auth?: string }[] = [];
    page.on('request', (r) => requests.push({ url: r.url(), auth: r.headers().authorization }));
    await page.goto(`${base}/`);
    const dialog = page.locator('dialog.token-dialog');
    await dialog.waitFor();
    await screenshot(page, 'token');
    await dialog.getByLabel('admin token').fill(TOKEN);
    await dialog.getByRole('button', { name: 'Continue' }).click();
    await page.locator('tr[data-pipeline="orders"]').waitFor();
    expect(await page.evaluate(() => sessionStorage.getItem('synapse.token'))).toBe(TOKEN);
    // A reload in the same tab does not ask again.
    await page.reload();
    await page.locator('tr[data-pipeline="orders"]').waitFor();
    expect(await page.locator('dialog.token-dialog').count()).toBe(0);
    // The tap authenticates with the header (fetch streaming), not a URL token.
    await page.goto(`${base}/ui/#/tap/orders`);
    await expect.poll(() => page.locator('[data-testid=tap-state]').textContent(), { timeout: WAIT }).toMatch(/^live/);
    // 401s of the console's first calls are expected before the token is given; nothing else.
    expect(unexpected(errors, [401])).toEqual([]);
    // The token is in sessionStorage only: never localStorage, a URL, or the engine's logs.
    expect(await page.evaluate(() => JSON.stringify({ ...localStorage }))).not.toContain(TOKEN);
    expect(page.url()).not.toContain(TOKEN);
    expect(requests.some((r) => r.auth === `Bearer ${TOKEN}`)).toBe(true);
    for (const r of requests) {
      expect(r.url).not.toContain(TOKEN);
      if (r.auth) expect(new URL(r.url).origin).toBe(base);
    }
    expect(JSON.stringify(engine.logs)).not.toContain(TOKEN);
    await page.context().close();
    void PING_ID;
  }, 120_000);
});
