import type { Redis } from 'ioredis';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { entries, key, payloads, ping, pipelineYaml, publish, sha256, startEngine, type EngineFixture } from '../../helpers/engine.ts';
import { waitFor, type TestRedis } from '../../helpers/redis.ts';
import { startTestCluster, type TestCluster } from '../../helpers/redis-cluster.ts';

// Hot reload and the admin API (pipelines, streams, DLQ and redrive) on a real Redis Cluster.

let cluster: TestCluster;
let redis: TestRedis;
const open: EngineFixture[] = [];

beforeAll(async () => {
  cluster = await startTestCluster();
  // The suites' fixture over the cluster: its engine is given the URL of one node (and finds the
  // rest); its client is a cluster client, which runs the same commands.
  redis = { url: cluster.url, client: () => cluster.client() as unknown as Redis, close: async () => undefined };
}, 90_000);
afterEach(async () => {
  await Promise.all(open.splice(0).map((f) => f.close()));
});
afterAll(async () => {
  await cluster?.close();
});

async function start(opts: Parameters<typeof startEngine>[0] = {}): Promise<EngineFixture> {
  const f = await startEngine({ redis, ...opts });
  open.push(f);
  return f;
}

describe('hot reload and the admin API on a Redis Cluster', () => {
  it('a pipeline edited on disk reloads: the new generation handles what follows, nothing pending', async () => {
    const name = key('p');
    const [stream, out] = [key('in'), key('out')];
    const v1 = pipelineYaml({ name, stream, out, version: 1 });
    const f = await start({ pipelines: { [name]: v1 }, watch: true });
    await publish(f.client, stream, [ping(1), ping(2)]);
    await waitFor(async () => (await f.client.xlen(out)) === 2, 'two outputs of version 1');
    await f.writePipeline(name, pipelineYaml({ name, stream, out, version: 2 }));
    await waitFor(() => f.engine.handles.get(name)?.generation === 2, 'generation 2');
    await publish(f.client, stream, [ping(3)]);
    await waitFor(async () => (await f.client.xlen(out)) === 3, 'the third output');
    expect(await payloads(f.client, out)).toEqual([{ n: 1, version: 1 }, { n: 2, version: 1 }, { n: 3, version: 2 }]);
    const view = JSON.parse((await f.inject({ method: 'GET', url: `/pipelines/${name}` })).body);
    expect(view).toMatchObject({ generation: 2, pending: 0, hash: sha256(pipelineYaml({ name, stream, out, version: 2 })) });
  });

  it('GET /streams, the DLQ listing and a redrive work across masters', async () => {
    const name = key('p');
    const [stream, out] = [key('in'), key('out')];
    const yaml = pipelineYaml({ name, stream, out });
    const f = await start({ pipelines: { [name]: yaml } });
    // data.n = 13 fails the transform: one DLQ entry (the DLQ is `<stream>:dlq`, in its own slot).
    await publish(f.client, stream, [ping(1), ping(13)]);
    const dlq = `${stream}:dlq`;
    await waitFor(async () => (await f.client.xlen(dlq)) === 1 && (await f.client.xlen(out)) === 1, 'one output and one DLQ entry');

    const streams = JSON.parse((await f.inject({ method: 'GET', url: '/streams' })).body);
    expect(JSON.stringify(streams)).toContain(stream);
    const listed = JSON.parse((await f.inject({ method: 'GET', url: `/dlq/${dlq}` })).body);
    expect(listed.entries).toHaveLength(1);

    const fixed = pipelineYaml({ name, stream, out, version: 2, transform: '{ "n": data.n, "version": 2 }' });
    const put = await f.inject({ method: 'PUT', url: `/pipelines/${name}`, headers: { 'content-type': 'application/yaml', 'if-match': sha256(yaml) }, payload: fixed });
    expect(put.statusCode, put.body).toBe(200);
    const res = await f.inject({ method: 'POST', url: `/dlq/${dlq}/redrive`, payload: {} });
    expect(res.statusCode, res.body).toBe(200);
    expect(JSON.parse(res.body).redriven).toMatchObject([{ outcome: 'sunk' }]);
    expect(await f.client.xlen(dlq)).toBe(0);
    expect((await entries(f.client, out)).map((e) => JSON.parse(e.fields.payload!))).toEqual([{ n: 1, version: 1 }, { n: 13, version: 2 }]);
  });
});
