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

  it('a replay runs a range of another stream through a pipeline: sinks act, a failure goes to its DLQ (in another slot)', async () => {
    const name = key('p');
    const [source, out, history] = [key('in'), key('out'), key('history')];
    const f = await start({ pipelines: { [name]: pipelineYaml({ name, stream: source, out }) } });
    const T0 = Date.parse('2026-01-01T00:00:00.000Z');
    for (const [i, n] of [1, 2, 13].entries()) await f.client.xadd(history, `${T0 + i * 1000}-0`, 'payload', JSON.stringify(ping(n)));
    const res = await f.inject({ method: 'POST', url: '/replay', payload: { stream: history, from: '-', to: '+', pipeline: name } });
    expect(res.statusCode, res.body).toBe(202);
    const job = await waitFor(async () => {
      const j = JSON.parse((await f.inject({ method: 'GET', url: `/replay/${JSON.parse(res.body).id}` })).body);
      return j.status !== 'running' && j;
    }, 'the replay to finish');
    expect(job).toMatchObject({ status: 'done', scanned: 3, written: 3 });
    expect(await payloads(f.client, out)).toEqual([{ n: 1, version: 1 }, { n: 2, version: 1 }]);
    expect((await entries(f.client, `${source}:dlq`)).map((e) => e.fields.stage)).toEqual(['transform']);
  });

  it('an aggregate sink keeps its windows (keys under the pipeline\'s hash tag) and GET /aggregates reads them', async () => {
    const name = key('agg');
    const stream = key('in');
    const yaml = [
      `name: ${name}`, 'source:', `  stream: ${stream}`, '  start: "0"', '  block_ms: 100',
      'transform: \'{ "kind": data.kind, "v": data.n }\'',
      'sink:', '  type: aggregate', '  with:', '    key: kind', '    window: 1h', '    measures: { v: [count, sum] }',
    ].join('\n') + '\n';
    const f = await start({ pipelines: { [name]: yaml } });
    await publish(f.client, stream, [1, 2, 3, 4].map((n) => ping(n, { kind: n % 2 ? 'odd' : 'even' })));
    const windows = await waitFor(async () => {
      const body = JSON.parse((await f.inject({ method: 'GET', url: `/aggregates/${name}` })).body);
      const all = JSON.stringify(body);
      return all.includes('"odd"') && all.includes('"even"') && body;
    }, 'two aggregate windows');
    const figures = windows.sinks[0].windows.map((w: Record<string, unknown>) => [w.key, w.v_count, w.v_sum]).sort();
    expect(figures).toEqual([['even', 2, 6], ['odd', 2, 4]]);
  });
});
