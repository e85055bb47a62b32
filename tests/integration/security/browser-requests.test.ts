import { request as httpRequest } from 'node:http';
import { createRequire } from 'node:module';
import { describe, expect, it } from 'vitest';
import { key, metricValue, pipelineYaml, useEngines, type EngineFixture } from '../../helpers/engine.ts';

// Issue #10, item 5: with no token (the loopback default) a web page in the operator's browser
// must not drive the admin API — not through DNS rebinding (a foreign Host header), not with a
// cross-site "simple" POST, not with a WebSocket from another origin.

const { start } = useEngines();

interface Reply {
  status: number;
  body: string;
}

/** A real HTTP request to the listening API, with the headers given (Host included). */
function send(port: number, method: string, path: string, headers: Record<string, string>, body?: string): Promise<Reply> {
  return new Promise((resolve, reject) => {
    const req = httpRequest({ host: '127.0.0.1', port, method, path, headers }, (res) => {
      let text = '';
      res.setEncoding('utf8');
      res.on('data', (c: string) => (text += c));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, body: text }));
    });
    req.on('error', reject);
    req.end(body);
  });
}

interface WsLike {
  on(event: 'open', fn: () => void): void;
  on(event: 'error', fn: (err: Error) => void): void;
  on(event: 'unexpected-response', fn: (req: unknown, res: { statusCode: number }) => void): void;
  terminate(): void;
}
const WebSocket = createRequire(import.meta.url)('ws') as new (url: string, opts?: { headers?: Record<string, string> }) => WsLike;

/** Opens /ws with `headers`; resolves 'open' or the HTTP status of the refusal. */
function wsUpgrade(port: number, headers: Record<string, string>): Promise<'open' | number> {
  return new Promise((resolve) => {
    const ws = new WebSocket(`ws://127.0.0.1:${port}/ws`, { headers });
    ws.on('open', () => {
      ws.terminate();
      resolve('open');
    });
    ws.on('unexpected-response', (_req, res) => {
      resolve(res.statusCode);
      ws.terminate();
    });
    ws.on('error', () => undefined);
  });
}

async function listening(opts: Parameters<typeof start>[0] = {}): Promise<{ f: EngineFixture; port: number; name: string }> {
  const name = key('p');
  const f = await start({ ...opts, pipelines: { [name]: pipelineYaml({ name, stream: key('in'), out: key('out') }) } });
  await f.app.listen({ host: '127.0.0.1', port: 0 });
  const address = f.app.server.address();
  if (!address || typeof address === 'string') throw new Error('no port');
  return { f, port: address.port, name };
}

describe('an admin API without a token, on loopback', () => {
  it('refuses a foreign Host header (DNS rebinding) on every route, reads included', async () => {
    const { f, port, name } = await listening();
    for (const [method, path] of [['GET', '/pipelines'], ['POST', `/pipelines/${name}/pause`], ['GET', '/metrics']] as const) {
      const res = await send(port, method, path, { host: `attacker.example:${port}` });
      expect(res.status, `${method} ${path}: ${res.body}`).toBe(403);
      expect(JSON.parse(res.body)).toMatchObject({ error: 'host_not_allowed', message: expect.stringContaining('SYNAPSE_ADMIN_ALLOWED_HOSTS') });
    }
    expect(f.engine.handles.get(name)!.status).toBe('running');
    expect(metricValue(await f.engine.metrics.registry.metrics(), 'synapse_refused_total', { limit: 'admin.host' })).toBe(3);
  });

  it('answers loopback names', async () => {
    const { port } = await listening();
    for (const host of [`127.0.0.1:${port}`, `localhost:${port}`, `[::1]:${port}`, 'localhost']) {
      expect((await send(port, 'GET', '/pipelines', { host })).status, host).toBe(200);
    }
  });

  it('answers a name of SYNAPSE_ADMIN_ALLOWED_HOSTS', async () => {
    const { port } = await listening({ admin: { allowedHosts: ['synapse.internal'] } });
    expect((await send(port, 'GET', '/pipelines', { host: `synapse.internal:${port}` })).status).toBe(200);
    expect((await send(port, 'GET', '/pipelines', { host: `other.internal:${port}` })).status).toBe(403);
  });

  it('refuses a cross-site text/plain POST (a form or fetch without preflight): the pipeline is not paused', async () => {
    const { f, port, name } = await listening();
    const attempts: Record<string, string>[] = [
      { origin: 'https://attacker.example', 'content-type': 'text/plain' },
      { origin: 'null', 'content-type': 'text/plain' },
      { 'sec-fetch-site': 'cross-site', 'content-type': 'text/plain' },
    ];
    for (const headers of attempts) {
      const res = await send(port, 'POST', `/pipelines/${name}/pause`, { host: `127.0.0.1:${port}`, ...headers }, 'x');
      expect(res.status, JSON.stringify(headers)).toBe(403);
      expect(JSON.parse(res.body)).toMatchObject({ error: 'cross_site_request' });
    }
    expect(f.engine.handles.get(name)!.status).toBe('running');
  });

  it('lets the API\'s own pages and scripts without Origin change state', async () => {
    const { f, port, name } = await listening();
    const own = await send(port, 'POST', `/pipelines/${name}/pause`, { host: `127.0.0.1:${port}`, origin: `http://127.0.0.1:${port}`, 'sec-fetch-site': 'same-origin' });
    expect(own.status, own.body).toBe(200);
    const script = await send(port, 'POST', `/pipelines/${name}/resume`, { host: `127.0.0.1:${port}` });
    expect(script.status, script.body).toBe(200);
    expect(f.engine.handles.get(name)!.status).toBe('running');
  });

  it('refuses a WebSocket upgrade from a foreign Origin, accepts one from its own', async () => {
    const { port } = await listening();
    expect(await wsUpgrade(port, { origin: 'https://attacker.example' })).toBe(403);
    expect(await wsUpgrade(port, { origin: `http://127.0.0.1:${port}` })).toBe('open');
    expect(await wsUpgrade(port, {})).toBe('open');
  });
});

describe('with a token', () => {
  it('still refuses cross-site state changes, and does not check Host unless asked', async () => {
    const token = `tok-${key()}`;
    const { port, name } = await listening({ token });
    const auth = { authorization: `Bearer ${token}` };
    expect((await send(port, 'GET', '/pipelines', { host: 'engine.example', ...auth })).status).toBe(200);
    expect((await send(port, 'POST', `/pipelines/${name}/pause`, { host: `127.0.0.1:${port}`, origin: 'https://attacker.example', ...auth })).status).toBe(403);
  });
});
