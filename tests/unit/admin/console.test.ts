import { describe, expect, it } from 'vitest';
import { consoleCsp, isConsoleRequest } from '../../../engine/admin/console.ts';
import { wantsHtml } from '../../../engine/admin/routes/root.ts';

describe('wantsHtml (GET / redirects a browser to the console)', () => {
  it('is true for what browsers send on navigation, false for API clients', () => {
    expect(wantsHtml('text/html,application/xhtml+xml,application/xml;q=0.9,image/avif,*/*;q=0.8')).toBe(true);
    expect(wantsHtml('text/html')).toBe(true);
    expect(wantsHtml('text/html, application/json')).toBe(true);
    for (const accept of [undefined, '', '*/*', 'application/json', 'application/json, text/html', 'application/yaml']) expect(wantsHtml(accept), String(accept)).toBe(false);
  });
});

describe('isConsoleRequest (what the token does not guard)', () => {
  it("opens GET/HEAD of the console's files and a browser's GET /, nothing else", () => {
    expect(isConsoleRequest('GET', '/ui/', undefined)).toBe(true);
    expect(isConsoleRequest('HEAD', '/ui/assets/index-abc.js', undefined)).toBe(true);
    expect(isConsoleRequest('GET', '/ui', undefined)).toBe(true);
    expect(isConsoleRequest('GET', '/', 'text/html')).toBe(true);
    expect(isConsoleRequest('GET', '/', 'application/json')).toBe(false);
    expect(isConsoleRequest('GET', '/', undefined)).toBe(false);
    expect(isConsoleRequest('POST', '/ui/', undefined)).toBe(false);
    expect(isConsoleRequest('GET', '/uix', undefined)).toBe(false);
    expect(isConsoleRequest('GET', '/pipelines', 'text/html')).toBe(false);
  });
});

describe('consoleCsp', () => {
  it('allows no inline script or eval, and styles only of its own or with the nonce', () => {
    const csp = consoleCsp('abc');
    expect(csp).toContain("script-src 'self';");
    expect(csp).toContain("style-src 'self' 'nonce-abc';");
    expect(csp).not.toMatch(/unsafe-/);
    expect(consoleCsp()).toContain("style-src 'self';");
  });
});
