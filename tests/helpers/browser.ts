import { existsSync, mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { chromium, type Browser, type BrowserContext, type Page } from 'playwright-core';
import { REPO_ROOT } from './pipelines.ts';

/** Debian's chromium (never a downloaded browser); SYNAPSE_CHROMIUM names another binary. */
export const CHROMIUM = process.env.SYNAPSE_CHROMIUM ?? '/usr/bin/chromium';

/** Where browser tests keep their screenshots (gitignored): test-artifacts/console/. */
export const ARTIFACTS = join(REPO_ROOT, 'test-artifacts', 'console');

/**
 * Why browser tests cannot run here, or undefined when they can. Without chromium they skip with
 * that reason, except under CI (SYNAPSE_CI=1 installs chromium): there its absence is a failure.
 */
export function browserUnavailable(path = CHROMIUM, env: NodeJS.ProcessEnv = process.env): string | undefined {
  if (existsSync(path)) return undefined;
  const reason = `no chromium at ${path} (apt-get install chromium, or set SYNAPSE_CHROMIUM)`;
  if (env.SYNAPSE_CI === '1') throw new Error(`SYNAPSE_CI=1 but the console's browser tests cannot run: ${reason}`);
  return reason;
}

/** A headless chromium (playwright's launch: a fresh temporary profile, removed on close). */
export interface TestBrowser {
  browser: Browser;
  /** A new page in a new context (its own sessionStorage), with console errors and CSP violations collected. */
  page(opts?: { colorScheme?: 'light' | 'dark'; viewport?: { width: number; height: number } }): Promise<{ page: Page; context: BrowserContext; errors: string[] }>;
  close(): Promise<void>;
}

export async function launchBrowser(): Promise<TestBrowser> {
  const browser = await chromium.launch({
    executablePath: CHROMIUM,
    headless: true,
    args: ['--headless', '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run', '--disable-background-networking',
      '--disable-component-update', '--disable-sync', '--disable-dev-shm-usage'],
  });
  return {
    browser,
    async page(opts = {}) {
      const context = await browser.newContext({ colorScheme: opts.colorScheme ?? 'light', viewport: opts.viewport ?? { width: 1366, height: 820 } });
      const page = await context.newPage();
      const errors: string[] = [];
      page.on('console', (m) => { if (m.type() === 'error') errors.push(m.text()); });
      page.on('pageerror', (e) => errors.push(String(e)));
      return { page, context, errors };
    },
    async close() {
      await browser.close();
    },
  };
}

/** Saves a full-page screenshot under test-artifacts/console/NAME.png (and returns its path). */
export async function screenshot(page: Page, name: string): Promise<string> {
  mkdirSync(ARTIFACTS, { recursive: true });
  const path = join(ARTIFACTS, `${name}.png`);
  await page.screenshot({ path, fullPage: true });
  return path;
}
