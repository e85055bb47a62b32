import type { InjectOptions } from 'fastify';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { listenAdmin } from '../../../engine/admin/server.ts';
import { hasStackTrace, key, ping, pipelineYaml, startEngine, type EngineFixture } from '../../helpers/engine.ts';
import { startTestRedis, type TestRedis } from '../../helpers/redis.ts';

const TOKEN = `tok-${key()}`;
const NAME = key('p');
const STREAM = key('in');

let redis: TestRedis;
let f: EngineFixture;

beforeAll(async () => {
  redis = await startTestRedis();
  f = await startEngine({ redis, token: TOKEN, pipelines: { [NAME]: pipelineYaml({ name: NAME, stream: STREAM, out: key('out') }) } });
});
afterAll(async () => {
  await f?.close();
  await redis?.close();
});

/** Every route of the admin API, with a request that reaches it, and its status with the token. */
const PROTECTED: { req: InjectOptions; status: number }[] = [
  { req: { method: 'GET', url: '/pipelines' }, status: 200 },
  { req: { method: 'GET', url: `/pipelines/${NAME}` }, status: 200 },
  { req: { method: 'PUT', url: `/pipelines/${key('new')}`, headers: { 'content-type': 'application/yaml' }, payload: 'source:\n  stream: s\nsink: { type: nosuch }\n' }, status: 422 },
  { req: { method: 'POST', url: `/pipelines/${key('nope')}/pause` }, status: 404 },
  { req: { method: 'POST', url: `/pipelines/${key('nope')}/resume` }, status: 404 },
  { req: { method: 'POST', url: `/pipelines/${NAME}/dry-run`, payload: { events: [ping(1)] } }, status: 200 },
  { req: { method: 'POST', url: '/validate', payload: { yaml: 'source:\n  stream: s\nsink: { type: log }\n' } }, status: 200 },
  { req: { method: 'GET', url: '/streams' }, status: 200 },
  { req: { method: 'POST', url: `/events/${STREAM}`, payload: ping(1) }, status: 201 },
  { req: { method: 'GET', url: `/dlq/${key('dlq')}` }, status: 200 },
  { req: { method: 'POST', url: `/dlq/${key('dlq')}/redrive`, payload: {} }, status: 200 },
  { req: { method: 'POST', url: '/replay', payload: { stream: key('h'), from: '-', to: '+', toStream: key('t') } }, status: 202 },
  { req: { method: 'GET', url: `/replay/${key('nope')}` }, status: 404 },
  { req: { method: 'DELETE', url: `/replay/${key('nope')}` }, status: 404 },
  { req: { method: 'POST', url: '/services', payload: { name: key('svc'), ttlSeconds: 5 } }, status: 200 },
  { req: { method: 'GET', url: '/services?capability=x' }, status: 200 },
  { req: { method: 'DELETE', url: `/services/${key('nope')}` }, status: 404 },
  { req: { method: 'GET', url: `/tap/${key('nope')}` }, status: 404 },
  { req: { method: 'GET', url: `/aggregates/${key('nope')}` }, status: 404 },
  { req: { method: 'GET', url: '/docs/json' }, status: 200 },
  { req: { method: 'GET', url: '/docs' }, status: 200 },
  { req: { method: 'GET', url: '/no/such/route' }, status: 404 },
];

const PUBLIC: InjectOptions[] = [
  { method: 'GET', url: '/health' },
  { method: 'GET', url: '/ready' },
  { method: 'GET', url: '/metrics' },
];

const title = ({ req }: { req: InjectOptions }) => `${req.method} ${String(req.url).split('?')[0]}`;

function expectUnauthorized(res: { statusCode: number; body: string; headers: Record<string, unknown> }) {
  expect(res.statusCode, res.body).toBe(401);
  expect(res.headers['www-authenticate']).toBe('Bearer');
  expect(JSON.parse(res.body)).toEqual({ error: 'unauthorized', message: expect.stringContaining('Authorization: Bearer') });
  expect(hasStackTrace(res.body)).toBe(false);
}

describe('with SYNAPSE_ADMIN_TOKEN set', () => {
  it.each(PROTECTED.map((r) => ({ ...r, name: title(r) })))('$name: 401 without a header, with a wrong token or scheme; $status with the token', async ({ req, status }) => {
    expectUnauthorized(await f.inject({ ...req, auth: false }));
    expectUnauthorized(await f.inject({ ...req, headers: { ...(req.headers ?? {}), authorization: `Bearer ${TOKEN}x` } }));
    expectUnauthorized(await f.inject({ ...req, headers: { ...(req.headers ?? {}), authorization: `Bearer ${TOKEN.slice(0, -1)}` } }));
    expectUnauthorized(await f.inject({ ...req, headers: { ...(req.headers ?? {}), authorization: 'Bearer ' } }));
    expectUnauthorized(await f.inject({ ...req, headers: { ...(req.headers ?? {}), authorization: `Basic ${Buffer.from(`admin:${TOKEN}`).toString('base64')}` } }));
    const ok = await f.inject(req);
    expect(ok.statusCode, ok.body).toBe(status);
  });

  it.each(PUBLIC.map((req) => ({ req, name: title({ req }) })))('$name stays open', async ({ req }) => {
    const res = await f.inject({ ...req, auth: false });
    expect(res.statusCode, res.body).toBe(200);
    const wrong = await f.inject({ ...req, headers: { authorization: 'Bearer wrong' } });
    expect(wrong.statusCode).toBe(200);
  });

  it('a token in the query string does not open ordinary routes (only WebSocket upgrades may use it)', async () => {
    const res = await f.inject({ method: 'GET', url: `/pipelines?access_token=${TOKEN}`, auth: false });
    expect(res.statusCode).toBe(401);
  });

  it('the OpenAPI document declares the bearer scheme', async () => {
    const doc = JSON.parse((await f.inject({ method: 'GET', url: '/docs/json' })).body);
    expect(doc.components.securitySchemes.bearer).toEqual({ type: 'http', scheme: 'bearer' });
    expect(doc.security).toEqual([{ bearer: [] }]);
  });
});

describe('binding', () => {
  it('refuses a non-loopback address without a token', async () => {
    const g = await startEngine({ redis });
    try {
      await expect(listenAdmin(g.app, '0.0.0.0', 0)).rejects.toThrow(/SYNAPSE_ADMIN_TOKEN/);
      const address = await listenAdmin(g.app, '127.0.0.1', 0);
      expect(address).toMatch(/^http:\/\/127\.0\.0\.1:\d+$/);
      const res = await fetch(`${address}/pipelines`);
      expect(res.status).toBe(200);
    } finally {
      await g.close();
    }
  });

  it('without a token every route is open', async () => {
    const g = await startEngine({ redis });
    try {
      expect((await g.inject({ method: 'GET', url: '/pipelines' })).statusCode).toBe(200);
      expect((await g.inject({ method: 'GET', url: '/docs/json' })).statusCode).toBe(200);
    } finally {
      await g.close();
    }
  });
});
