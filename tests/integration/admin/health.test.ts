import { afterEach, describe, expect, it } from 'vitest';
import { key, pipelineYaml, startEngine, type EngineFixture } from '../../helpers/engine.ts';
import { waitFor } from '../../helpers/redis.ts';

let open: EngineFixture[] = [];

afterEach(async () => {
  await Promise.all(open.splice(0).map((f) => f.close()));
});

describe('GET /health and /ready', () => {
  it('answer 200 while the engine runs', async () => {
    const name = key('p');
    // A Redis of its own: this suite stops it.
    const f = await startEngine({ pipelines: { [name]: pipelineYaml({ name, stream: key('in'), out: key('out') }) } });
    open.push(f);
    const health = await f.inject({ method: 'GET', url: '/health' });
    expect(health.statusCode).toBe(200);
    expect(JSON.parse(health.body)).toEqual({ status: 'ok' });
    const ready = await f.inject({ method: 'GET', url: '/ready' });
    expect(ready.statusCode).toBe(200);
    expect(JSON.parse(ready.body)).toEqual({ status: 'ready', redis: 'ready', pipelines: 1, stalled: [] });
  });

  it('/ready says 503 while Redis is gone and 200 once it is back; /health answers throughout', async () => {
    const f = await startEngine({ ownRedis: true });
    open.push(f);
    expect(f.redis.owned, 'the helper started this Redis itself').toBeDefined();
    await f.redis.owned!.stop();
    const ready = await waitFor(async () => {
      const res = await f.inject({ method: 'GET', url: '/ready' });
      return res.statusCode === 503 && res;
    }, '/ready to say 503');
    expect(JSON.parse(ready.body)).toMatchObject({ status: 'not-ready', redis: expect.not.stringMatching(/^ready$/) });
    expect((await f.inject({ method: 'GET', url: '/health' })).statusCode).toBe(200);
    await f.redis.owned!.restart();
    await waitFor(async () => (await f.inject({ method: 'GET', url: '/ready' })).statusCode === 200, '/ready to say 200 again');
  });
});

describe('request bodies', () => {
  it('a body over 1 MiB is refused with 413 before it is parsed, and writes nothing; one just under is taken', async () => {
    const f = await startEngine({ admin: { publishStreams: ['test-*'] } });
    open.push(f);
    const stream = key('in');
    const event = (size: number) => {
      const base = JSON.stringify({ event: 'ping', data: { n: 1, tag: '' } });
      return JSON.stringify({ event: 'ping', data: { n: 1, tag: 'x'.repeat(size - base.length) } });
    };
    const over = event(1024 * 1024 + 1);
    expect(Buffer.byteLength(over)).toBe(1024 * 1024 + 1);
    const refused = await f.inject({ method: 'POST', url: `/events/${stream}`, headers: { 'content-type': 'application/json' }, payload: over });
    expect(refused.statusCode).toBe(413);
    expect(refused.json()).toEqual({ error: 'fst_err_ctp_body_too_large', message: 'Request body is too large' });
    expect(await f.client.exists(stream)).toBe(0);

    const yaml = `name: big\n# ${'x'.repeat(1024 * 1024)}\n`;
    const put = await f.inject({ method: 'PUT', url: '/pipelines/big', headers: { 'content-type': 'application/yaml' }, payload: yaml });
    expect(put.statusCode).toBe(413);
    expect(f.engine.handles.has('big')).toBe(false);

    const under = event(1024 * 1024);
    const taken = await f.inject({ method: 'POST', url: `/events/${stream}`, headers: { 'content-type': 'application/json' }, payload: under });
    expect(taken.statusCode, taken.body).toBe(201);
    expect(await f.client.xlen(stream)).toBe(1);
  });
});
