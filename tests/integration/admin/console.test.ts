import { describe, expect, it } from 'vitest';
import { consoleDir } from '../../../engine/admin/console.ts';
import { PEEK_MAX_VALUE_BYTES } from '../../../engine/admin/routes/streams.ts';
import { key, ping, pipelineYaml, publish, startEngine, useEngines, type EngineFixture } from '../../helpers/engine.ts';

// The console as the admin server serves it (its files, CSP, GET / for browsers and for API
// clients, the token), and GET /streams/:stream/entries, the peek the console's Streams page uses.
// The browser itself is driven in tests/integration/console/.
const engines = useEngines();

async function start(opts: Parameters<typeof startEngine>[0] = {}): Promise<EngineFixture & { name: string; stream: string; out: string }> {
  const name = key('p');
  const stream = key('in');
  const out = key('out');
  const f = await engines.start({ pipelines: { [name]: pipelineYaml({ name, stream, out }) }, ...opts });
  return Object.assign(f, { name, stream, out });
}

const HTML = 'text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8';

describe('the console at /ui/', () => {
  it('is built (global setup ran the build) and found from the sources', () => {
    expect(consoleDir()).toMatch(/dist[\\/]console$/);
  });

  it('GET / sends a browser to /ui/; an API client (JSON, */*, or no Accept) keeps the JSON index, which names the console', async () => {
    const f = await start();
    const browser = await f.inject({ method: 'GET', url: '/', headers: { accept: HTML } });
    expect(browser.statusCode).toBe(302);
    expect(browser.headers.location).toBe('/ui/');
    for (const accept of [undefined, '*/*', 'application/json', 'application/json, text/html']) {
      const res = await f.inject({ method: 'GET', url: '/', headers: accept ? { accept } : {} });
      expect(res.statusCode, String(accept)).toBe(200);
      expect(JSON.parse(res.body)).toMatchObject({ console: '/ui/', docs: '/docs' });
    }
    expect((await f.inject({ method: 'GET', url: '/ui' })).headers.location).toBe('/ui/');
  });

  it('serves index.html with a strict CSP whose style nonce is new on each load and written into the page; no inline script', async () => {
    const f = await start();
    const a = await f.inject({ method: 'GET', url: '/ui/' });
    const b = await f.inject({ method: 'GET', url: '/ui/index.html' });
    expect(a.statusCode).toBe(200);
    expect(a.headers['content-type']).toMatch(/^text\/html/);
    const csp = String(a.headers['content-security-policy']);
    expect(csp).toMatch(/default-src 'none'/);
    expect(csp).toMatch(/script-src 'self'(;|$)/);
    expect(csp).toMatch(/frame-ancestors 'none'/);
    expect(csp).not.toMatch(/unsafe-(inline|eval)/);
    const nonce = /'nonce-([^']+)'/.exec(csp)![1]!;
    expect(a.body).toContain(`<meta name="csp-nonce" content="${nonce}">`);
    expect(String(b.headers['content-security-policy'])).not.toContain(nonce);
    expect(a.headers['cache-control']).toBe('no-store');
    expect(a.headers['x-content-type-options']).toBe('nosniff');
    expect(a.body).not.toMatch(/<script(?![^>]*\bsrc=)[^>]*>/);
    // Its script, hashed: cached for good, with the CSP too.
    const src = /<script[^>]*src="([^"]+)"/.exec(a.body)![1]!;
    const js = await f.inject({ method: 'GET', url: src });
    expect(js.statusCode).toBe(200);
    expect(js.headers['content-type']).toMatch(/javascript/);
    expect(js.headers['cache-control']).toMatch(/immutable/);
    expect(js.headers['content-security-policy']).toMatch(/default-src 'none'/);
    expect((await f.inject({ method: 'GET', url: '/ui/assets/nothing.js' })).statusCode).toBe(404);
    expect((await f.inject({ method: 'GET', url: '/ui/../package.json' })).statusCode).not.toBe(200);
  });

  it('with a token: the console files and a browser\'s GET / need none, the JSON index and every API route still do', async () => {
    const f = await start({ token: 'console-secret' });
    expect((await f.inject({ method: 'GET', url: '/ui/', auth: false })).statusCode).toBe(200);
    const page = await f.inject({ method: 'GET', url: '/', headers: { accept: HTML }, auth: false });
    expect(page.statusCode).toBe(302);
    expect((await f.inject({ method: 'GET', url: '/', auth: false })).statusCode).toBe(401);
    expect((await f.inject({ method: 'GET', url: '/pipelines', auth: false })).statusCode).toBe(401);
    expect((await f.inject({ method: 'GET', url: '/pipelines', headers: { accept: HTML }, auth: false })).statusCode).toBe(401);
    expect((await f.inject({ method: 'POST', url: '/ui/', auth: false })).statusCode).toBe(401);
    expect((await f.inject({ method: 'GET', url: '/', auth: true })).statusCode).toBe(200);
  });

  it('the browser guard still applies: a foreign Host gets 403 for the console too', async () => {
    const f = await start();
    const res = await f.inject({ method: 'GET', url: '/ui/', headers: { host: 'evil.example:8080' } });
    expect(res.statusCode).toBe(403);
    expect(JSON.parse(res.body).error).toBe('host_not_allowed');
  });

  it('without a console (consoleDir: false) GET / answers the index to everyone, console null, and /ui/ is 404', async () => {
    const f = await start({ admin: { consoleDir: false } });
    const res = await f.inject({ method: 'GET', url: '/', headers: { accept: HTML } });
    expect(res.statusCode).toBe(200);
    expect(JSON.parse(res.body).console).toBeNull();
    expect((await f.inject({ method: 'GET', url: '/ui/' })).statusCode).toBe(404);
  });
});

describe('GET /streams/:stream/entries', () => {
  it('peeks at the latest entries, newest first, and pages to older ones with before/next; nothing is read by the group', async () => {
    const f = await start();
    await f.engine.pause(f.name);
    const ids = await publish(f.client, f.stream, [ping(1), ping(2), ping(3)]);
    const first = await f.inject({ method: 'GET', url: `/streams/${encodeURIComponent(f.stream)}/entries?count=2` });
    expect(first.statusCode, first.body).toBe(200);
    const page1 = JSON.parse(first.body);
    expect(page1).toMatchObject({ stream: f.stream, role: 'source', length: 3, next: ids[1] });
    expect(page1.entries.map((e: { id: string }) => e.id)).toEqual([ids[2], ids[1]]);
    expect(page1.entries[0].fields).toEqual([{ name: 'payload', value: JSON.stringify(ping(3)) }]);
    const page2 = JSON.parse((await f.inject({ method: 'GET', url: `/streams/${encodeURIComponent(f.stream)}/entries?count=2&before=${page1.next}` })).body);
    expect(page2.entries.map((e: { id: string }) => e.id)).toEqual([ids[0]]);
    expect(page2.next).toBeNull();
  });

  it('shows a value that is not UTF-8 as base64, and cuts a long one (marked, with its size)', async () => {
    const f = await start();
    await f.engine.pause(f.name);
    const long = 'x'.repeat(PEEK_MAX_VALUE_BYTES + 10);
    await f.client.xadd(f.stream, '*', 'payload', Buffer.from([0xff, 0xfe, 0x00]), 'big', long);
    const body = JSON.parse((await f.inject({ method: 'GET', url: `/streams/${encodeURIComponent(f.stream)}/entries` })).body);
    expect(body.entries[0].fields).toEqual([
      { name: 'payload', value: Buffer.from([0xff, 0xfe, 0x00]).toString('base64'), encoding: 'base64' },
      { name: 'big', value: long.slice(0, PEEK_MAX_VALUE_BYTES), truncated: true, bytes: long.length },
    ]);
  });

  it('refuses a key no pipeline uses (404), and a count over the limit (400)', async () => {
    const f = await start();
    await f.client.xadd(key('other'), '*', 'k', 'v');
    const res = await f.inject({ method: 'GET', url: `/streams/${encodeURIComponent(key('other'))}/entries` });
    expect(res.statusCode).toBe(404);
    expect(JSON.parse(res.body).error).toBe('not_found');
    expect((await f.inject({ method: 'GET', url: `/streams/${encodeURIComponent(f.stream)}/entries?count=1000` })).statusCode).toBe(400);
    // The DLQ and a publish sink's output stream can be peeked too.
    expect((await f.inject({ method: 'GET', url: `/streams/${encodeURIComponent(f.out)}/entries` })).statusCode).toBe(200);
  });
});
