import { describe, expect, it } from 'vitest';
import { hasStackTrace, key, pipelineYaml, startEngine, useEngines, type EngineFixture } from '../../helpers/engine.ts';

// The console and the peek route as a hostile client sees them: traversal and odd paths under
// /ui/, odd Accept headers on GET /, malformed peek parameters, hostile keys and entries.
const engines = useEngines();

async function start(opts: Parameters<typeof startEngine>[0] = {}): Promise<EngineFixture & { name: string; stream: string }> {
  const name = key('p');
  const stream = key('in');
  const f = await engines.start({ pipelines: { [name]: pipelineYaml({ name, stream, out: key('out') }) }, ...opts });
  return Object.assign(f, { name, stream });
}

const HTML = 'text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8';

describe('/ui/ against a hostile client', () => {
  it('serves nothing outside dist/console (traversal, encoded dots, NUL), lists no directory, and opens no API route without the token', async () => {
    const f = await start({ token: 'hostile-secret' });
    for (const url of ['/ui/../package.json', '/ui/%2e%2e/package.json', '/ui/%2e%2e%2fpackage.json', '/ui/..%2fpackage.json', '/ui/..%5cpackage.json',
      '/ui/%2e%2e/%2e%2e/package.json', '/ui/index.html%00.js', '/ui/%00', '/ui/assets/', '/ui/assets', '/ui/../pipelines', '/ui/%2e%2e/pipelines', '/ui/..%2fpipelines', '/ui/.%2e/streams']) {
      const res = await f.inject({ method: 'GET', url, auth: false });
      expect(res.statusCode, url).not.toBe(200);
      expect(res.statusCode, url).toBeLessThan(500);
      expect(res.body, url).not.toMatch(/"dependencies"|"pipelines"|"streams"/);
      expect(hasStackTrace(res.body), url).toBe(false);
    }
  });

  it('GET / redirects only to /ui/, whatever the Accept or the path; no open redirect', async () => {
    const f = await start();
    for (const accept of ['text/html', 'TEXT/HTML', 'text/html;q=0, application/json', `${'a/b,'.repeat(5000)}text/html`, 'text/html\t', ',,,']) {
      const res = await f.inject({ method: 'GET', url: '/', headers: { accept } });
      expect(res.statusCode, accept.slice(0, 40)).toBeLessThan(500);
      if (res.statusCode === 302) expect(res.headers.location).toBe('/ui/');
    }
    for (const url of ['//evil.example/', '//evil.example/ui', '/ui//evil.example', '/\\evil.example', '/ui?next=//evil.example', '/%2f%2fevil.example']) {
      const res = await f.inject({ method: 'GET', url, headers: { accept: HTML } });
      expect(res.statusCode, url).toBeLessThan(500);
      if (res.headers.location) expect(res.headers.location, url).toBe('/ui/');
    }
  });

  it('static files carry their content type and nosniff; index.html is never cached', async () => {
    const f = await start();
    const page = await f.inject({ method: 'GET', url: '/ui/' });
    const css = /<link[^>]*href="([^"]+\.css)"/.exec(page.body)?.[1];
    if (css) {
      const res = await f.inject({ method: 'GET', url: css });
      expect(res.headers['content-type']).toMatch(/^text\/css/);
      expect(res.headers['x-content-type-options']).toBe('nosniff');
    }
    // index.html reached another way than /ui/ or /ui/index.html: never with its nonce placeholder filled by an old one, never cached for good.
    for (const url of ['/ui//index.html', '/ui/./index.html', '/ui/assets/../index.html']) {
      const res = await f.inject({ method: 'GET', url });
      if (res.statusCode === 200) {
        expect(String(res.headers['content-security-policy']), url).not.toMatch(/unsafe-inline|nonce-__/);
        expect(res.headers['cache-control'], url).not.toMatch(/immutable/);
      }
    }
    const head = await f.inject({ method: 'HEAD', url: '/ui/index.html' });
    expect(head.headers['cache-control']).toBe('no-store');
  });
});

describe('GET /streams/:stream/entries against a hostile client', () => {
  it('refuses keys no pipeline uses, whatever they look like (glob, CRLF, unicode, long); never 500', async () => {
    const f = await start();
    for (const k of ['*', `${f.stream.slice(0, -1)}*`, 'a\r\nb', `${f.stream}\r\nFLUSHALL`, 'ünïcødé-✓', '\u0000', 'x'.repeat(5000), '__proto__', 'constructor']) {
      const res = await f.inject({ method: 'GET', url: `/streams/${encodeURIComponent(k)}/entries` });
      // 414: a key over the router's longest parameter.
      expect([400, 404, 414], JSON.stringify(k.slice(0, 40))).toContain(res.statusCode);
      // Fastify's own 414 echoes the path (as JSON, to the client that sent it): not this route's.
      if (res.statusCode !== 414) expect(res.body.length, res.body.slice(0, 300)).toBeLessThan(1000);
      expect(hasStackTrace(res.body)).toBe(false);
    }
  });

  it('answers 400 (never 500) for a count or before out of range or malformed', async () => {
    const f = await start();
    await f.engine.pause(f.name);
    await f.client.xadd(f.stream, '*', 'payload', '{}');
    const url = (q: string) => `/streams/${encodeURIComponent(f.stream)}/entries?${q}`;
    for (const q of ['count=0', 'count=-1', 'count=101', 'count=abc', 'count=1.5', 'count=1e3', 'count=', 'before=abc', 'before=-1', 'before=1-', 'before=%0d%0a', 'before=1&before=2',
      'before=99999999999999999999999999', 'before=18446744073709551616-0', 'before=1-18446744073709551616', 'x=1', 'count[]=1']) {
      const res = await f.inject({ method: 'GET', url: url(q) });
      expect([200, 400], q).toContain(res.statusCode);
      expect(hasStackTrace(res.body), q).toBe(false);
    }
    for (const q of ['before=0', 'before=0-0', 'before=18446744073709551615-18446744073709551615', 'before=18446744073709551615']) {
      const res = await f.inject({ method: 'GET', url: url(q) });
      expect([200, 400], q).toContain(res.statusCode);
    }
  });

  it('bounds the reply however many or big the fields of the entries', async () => {
    const f = await start();
    await f.engine.pause(f.name);
    const fields: string[] = [];
    for (let i = 0; i < 2000; i++) fields.push(`f${i}`, 'v'.repeat(1024));
    for (let i = 0; i < 20; i++) await f.client.xadd(f.stream, '*', ...fields);
    const res = await f.inject({ method: 'GET', url: `/streams/${encodeURIComponent(f.stream)}/entries?count=100` });
    expect(res.statusCode).toBe(200);
    expect(res.body.length).toBeLessThan(4 * 1024 * 1024);
    const body = JSON.parse(res.body);
    expect(body.entries.length).toBeGreaterThan(0);
    expect(body.entries.length).toBeLessThan(20);
    expect(body.next).toBe(body.entries.at(-1).id);
    // One entry alone over the budget: its first fields, the rest counted.
    const wide = key('wide');
    const g = await start({ pipelines: { [key('w')]: pipelineYaml({ name: key('w'), stream: wide, out: key('out') }) } });
    await g.engine.pause([...g.engine.handles.keys()][0]!);
    await g.client.xadd(wide, '*', ...Array.from({ length: 200 }, (_, i) => [`f${i}`, 'w'.repeat(16 * 1024)]).flat());
    const one = JSON.parse((await g.inject({ method: 'GET', url: `/streams/${encodeURIComponent(wide)}/entries` })).body);
    expect(one.entries).toHaveLength(1);
    expect(one.entries[0].fields.length + one.entries[0].omittedFields).toBe(200);
    expect(one.entries[0].omittedFields).toBeGreaterThan(0);
  });

  it('needs the token, and a foreign Host gets 403', async () => {
    const f = await start({ token: 'hostile-secret' });
    const url = `/streams/${encodeURIComponent(f.stream)}/entries`;
    expect((await f.inject({ method: 'GET', url, auth: false })).statusCode).toBe(401);
    expect((await f.inject({ method: 'GET', url, auth: false, headers: { accept: HTML } })).statusCode).toBe(401);
    expect((await f.inject({ method: 'GET', url, auth: true })).statusCode).toBe(200);
    const g = await start();
    expect((await g.inject({ method: 'GET', url: `/streams/${encodeURIComponent(g.stream)}/entries`, headers: { host: 'evil.example' } })).statusCode).toBe(403);
    // A foreign page may send a GET (a safe method passes the Origin check) but never read it: no CORS grant, no preflight grant.
    const cross = { origin: 'https://evil.example', 'sec-fetch-site': 'cross-site' };
    const read = await g.inject({ method: 'GET', url: `/streams/${encodeURIComponent(g.stream)}/entries`, headers: cross });
    expect(read.headers['access-control-allow-origin']).toBeUndefined();
    const pre = await g.inject({ method: 'OPTIONS', url: `/streams/${encodeURIComponent(g.stream)}/entries`, headers: { ...cross, 'access-control-request-method': 'GET', 'access-control-request-headers': 'authorization' } });
    expect(pre.headers['access-control-allow-origin']).toBeUndefined();
    expect(pre.headers['access-control-allow-headers']).toBeUndefined();
  });
});
