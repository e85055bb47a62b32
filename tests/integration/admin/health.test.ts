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
    expect(JSON.parse(ready.body)).toEqual({ status: 'ready', redis: 'ready', pipelines: 1 });
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
