import { rm } from 'node:fs/promises';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { PIPELINE_STATES } from '../../../engine/metrics.ts';
import { type EngineFixture, key, metricValue, ping, PING_ID, pingSchema, pipelineYaml, publish, sha256, useEngines } from '../../helpers/engine.ts';
import { waitFor } from '../../helpers/redis.ts';

const { start } = useEngines();

async function scrape(f: EngineFixture): Promise<string> {
  const res = await f.inject({ method: 'GET', url: '/metrics' });
  expect(res.statusCode).toBe(200);
  expect(res.headers['content-type']).toMatch(/^text\/plain/);
  return res.body;
}

const settled = (f: EngineFixture, name: string) => {
  const c = f.engine.handles.get(name)!.counters;
  return c.sunk + c.filtered + c.dlq + c.dropped;
};

describe('GET /metrics', () => {
  it('counts every entry exactly once under its final outcome, and DLQ entries by stage', async () => {
    const a = key('a');
    const aStream = key('in');
    const b = key('b');
    const bStream = key('in');
    const broken = key('broken-out');
    const f = await start({
      pipelines: {
        [a]: pipelineYaml({ name: a, stream: aStream, out: key('out') }),
        // Invalid events are dropped; its sink always fails (its stream key is not a stream).
        [b]: pipelineYaml({ name: b, stream: bStream, out: broken, onInvalid: 'drop' }),
      },
    });
    await f.client.set(broken, 'not a stream');

    const invalid = { event: 'ping', data: { n: 'x' } };
    const sent = [
      ...[1, 2, 3, 4, 5].map((n) => ping(n)), // 5 sunk
      ...[6, 7, 8].map((n) => ping(n, { keep: false })), // 3 filtered
      invalid, invalid, // 2 dlq at validate
      ping(13), // 1 dlq at transform
      'not json at all', // 1 dlq at decode
    ];
    await publish(f.client, aStream, sent);
    await publish(f.client, bStream, [invalid, invalid, ping(1), ping(2), ping(3)]); // 2 dropped, 3 dlq at sink
    await waitFor(() => settled(f, a) === sent.length && settled(f, b) === 5, 'every entry settled');

    const text = await scrape(f);
    const events = (pipeline: string, outcome: string) => metricValue(text, 'synapse_events_total', { pipeline, outcome }) ?? 0;
    expect({ sunk: events(a, 'sunk'), filtered: events(a, 'filtered'), dlq: events(a, 'dlq'), dropped: events(a, 'dropped') })
      .toEqual({ sunk: 5, filtered: 3, dlq: 4, dropped: 0 });
    expect({ sunk: events(b, 'sunk'), filtered: events(b, 'filtered'), dlq: events(b, 'dlq'), dropped: events(b, 'dropped') })
      .toEqual({ sunk: 0, filtered: 0, dlq: 3, dropped: 2 });

    const dlq = (pipeline: string, stage: string) => metricValue(text, 'synapse_dlq_total', { pipeline, stage }) ?? 0;
    expect({ decode: dlq(a, 'decode'), validate: dlq(a, 'validate'), transform: dlq(a, 'transform'), sink: dlq(a, 'sink') })
      .toEqual({ decode: 1, validate: 2, transform: 1, sink: 0 });
    expect({ validate: dlq(b, 'validate'), sink: dlq(b, 'sink') }).toEqual({ validate: 0, sink: 3 });
    expect(await f.client.xlen(`${aStream}:dlq`)).toBe(4);
    expect(await f.client.xlen(`${bStream}:dlq`)).toBe(3);

    // The other families of SPEC §10 are there too.
    expect(metricValue(text, 'synapse_pipeline_up', { pipeline: a })).toBe(1);
    // Every batch is timed in each of the five stages; b's sink spent at least its back-off (5 ms).
    for (const p of [a, b]) {
      const counts = ['decode', 'validate', 'filter', 'transform', 'sink'].map((stage) => metricValue(text, 'synapse_stage_seconds_count', { pipeline: p, stage }));
      expect(counts[0]).toBeGreaterThanOrEqual(1);
      expect(counts).toEqual(counts.map(() => counts[0]));
    }
    expect(metricValue(text, 'synapse_stage_seconds_sum', { pipeline: b, stage: 'sink' })).toBeGreaterThanOrEqual(0.005);
    expect(text).toMatch(new RegExp(`synapse_consumer_lag\\{pipeline="${a}",stream="${aStream}",group="${a}"\\}`));
    expect(text).toMatch(new RegExp(`synapse_pending_entries\\{pipeline="${a}"\\}`));
    expect(text).toMatch(/^# TYPE synapse_dlq_length gauge$/m);
    expect(text).toMatch(/^process_cpu_user_seconds_total /m);
  });

  it('counts reloads by result: a good one and a bad one', async () => {
    const name = key('p');
    const stream = key('in');
    const out = key('out');
    const v1 = pipelineYaml({ name, stream, out });
    const f = await start({ pipelines: { [name]: v1 } });
    const reloads = async () => {
      const text = await scrape(f);
      return { ok: metricValue(text, 'synapse_reloads_total', { result: 'ok' }) ?? 0, error: metricValue(text, 'synapse_reloads_total', { result: 'error' }) ?? 0 };
    };
    expect(await reloads()).toEqual({ ok: 0, error: 0 });

    const v2 = pipelineYaml({ name, stream, out, version: 2 });
    const put = await f.inject({ method: 'PUT', url: `/pipelines/${name}`, headers: { 'content-type': 'application/yaml', 'if-match': sha256(v1) }, payload: v2 });
    expect(put.statusCode, put.body).toBe(200);
    expect(await reloads()).toEqual({ ok: 1, error: 0 });

    const file = await f.writePipeline(name, v2.replace('type: publish', 'type: nosuch'));
    expect((await f.engine.reloadFile(file)).ok).toBe(false);
    expect(await reloads()).toEqual({ ok: 1, error: 1 });

    // Reloading what already runs is no reload.
    await f.writePipeline(name, v2);
    expect(await f.engine.reloadFile(file)).toMatchObject({ ok: true, change: 'unchanged' });
    expect(await reloads()).toEqual({ ok: 1, error: 1 });
  });

  it('synapse_pipeline_up follows pause and resume', async () => {
    const name = key('p');
    const f = await start({ pipelines: { [name]: pipelineYaml({ name, stream: key('in'), out: key('out') }) } });
    expect(metricValue(await scrape(f), 'synapse_pipeline_up', { pipeline: name })).toBe(1);
    await f.inject({ method: 'POST', url: `/pipelines/${name}/pause` });
    expect(metricValue(await scrape(f), 'synapse_pipeline_up', { pipeline: name })).toBe(0);
    await f.inject({ method: 'POST', url: `/pipelines/${name}/resume` });
    expect(metricValue(await scrape(f), 'synapse_pipeline_up', { pipeline: name })).toBe(1);
  });

  it('synapse_pipeline_state and synapse_pipeline_load_error follow each pipeline as GET /pipelines shows it', async () => {
    const name = key('p');
    const stream = key('in');
    const off = key('off');
    const broken = key('broken');
    const v1 = pipelineYaml({ name, stream, out: key('out') });
    const f = await start({
      allowRejected: true,
      pipelines: {
        [name]: v1,
        [off]: pipelineYaml({ name: off, stream: key('in'), out: key('out'), extra: 'enabled: false' }),
        [broken]: pipelineYaml({ name: broken, stream: key('in'), out: key('out') }).replace('type: publish', 'type: nosuch'),
      },
    });
    /** Each pipeline's state (the one series at 1, every other state at 0) and its load error. */
    const view = async (pipeline: string) => {
      const text = await scrape(f);
      const values = Object.fromEntries(PIPELINE_STATES.map((state) => [state, metricValue(text, 'synapse_pipeline_state', { pipeline, state })]));
      const on = Object.entries(values).filter(([, v]) => v === 1).map(([s]) => s);
      if (on.length === 0 && Object.values(values).every((v) => v === undefined)) return { state: 'absent', loadError: metricValue(text, 'synapse_pipeline_load_error', { pipeline }) };
      expect(Object.values(values).filter((v) => v === 0)).toHaveLength(PIPELINE_STATES.length - 1);
      return { state: on.join(','), loadError: metricValue(text, 'synapse_pipeline_load_error', { pipeline }) };
    };
    expect(await view(name)).toEqual({ state: 'running', loadError: 0 });
    expect(await view(off)).toEqual({ state: 'disabled', loadError: 0 });
    // A file that never loaded is listed under its file name, as GET /pipelines lists it.
    expect(await view(broken)).toEqual({ state: 'invalid', loadError: 1 });
    const listed = JSON.parse((await f.inject({ method: 'GET', url: '/pipelines' })).body) as { pipelines: { name: string; status: string }[] };
    expect(listed.pipelines.find((p) => p.name === broken)?.status).toBe('invalid');

    await f.inject({ method: 'POST', url: `/pipelines/${name}/pause` });
    expect(await view(name)).toEqual({ state: 'paused', loadError: 0 });
    await f.inject({ method: 'POST', url: `/pipelines/${name}/resume` });
    expect(await view(name)).toEqual({ state: 'running', loadError: 0 });

    // A rejected reload: the running version runs on, and says so until a good one.
    const file = await f.writePipeline(name, v1.replace('type: publish', 'type: nosuch'));
    expect((await f.engine.reloadFile(file)).ok).toBe(false);
    expect(await view(name)).toEqual({ state: 'running', loadError: 1 });
    await f.writePipeline(name, v1);
    expect((await f.engine.reloadFile(file)).ok).toBe(true);
    expect(await view(name)).toEqual({ state: 'running', loadError: 0 });

    // Redis refuses the DLQ write (the DLQ key is no stream): stalled, and running again once it can.
    await f.client.set(`${stream}:dlq`, 'not a stream');
    await publish(f.client, stream, [{ event: 'ping', data: { n: 'x' } }]);
    await waitFor(async () => (await view(name)).state === 'stalled', 'state stalled');
    await f.client.del(`${stream}:dlq`);
    await waitFor(async () => (await view(name)).state === 'running', 'state running after the DLQ could be written');

    // A pipeline that is gone has no series left.
    const offFile = join(f.pipelinesDir, `${off}.yaml`);
    await rm(offFile);
    expect(await f.engine.reloadFile(offFile)).toMatchObject({ ok: true, change: 'removed' });
    expect(await view(off)).toEqual({ state: 'absent', loadError: undefined });
  });

  it('synapse_redis_up is 1 while the Redis connection is ready, 0 while Redis is away', async () => {
    const name = key('p');
    const f = await start({ redis: undefined, ownRedis: true, pipelines: { [name]: pipelineYaml({ name, stream: key('in'), out: key('out') }) } });
    const up = async () => metricValue(await scrape(f), 'synapse_redis_up');
    expect(await up()).toBe(1);
    await f.redis.owned!.stop();
    await waitFor(async () => (await up()) === 0, 'synapse_redis_up 0 with Redis stopped');
    await f.redis.owned!.restart();
    await waitFor(async () => (await up()) === 1, 'synapse_redis_up 1 with Redis back');
  });

  it('synapse_pipeline_load_error clears once the schemas load again, for the pipelines the good load does not reload too', async () => {
    const name = key('p');
    const f = await start({ pipelines: { [name]: pipelineYaml({ name, stream: key('in'), out: key('out') }) } });
    const loadError = async () => metricValue(await scrape(f), 'synapse_pipeline_load_error', { pipeline: name });
    expect(await loadError()).toBe(0);

    // A broken schema file: the schemas in force stay, and every validating pipeline says so.
    await f.writeSchema('ping.json', '{\n  "$id": "' + PING_ID + '",\n  "required": [\n}\n');
    expect((await f.engine.reloadSchemas())[0]!.ok).toBe(false);
    expect(await loadError()).toBe(1);

    // Put back as it was: no schema changed, so no pipeline is reloaded, and the error is gone.
    await f.writeSchema('ping.json', pingSchema());
    expect(await f.engine.reloadSchemas()).toEqual([]);
    expect(f.engine.handles.get(name)!.lastReloadError).toBeUndefined();
    expect(await loadError()).toBe(0);
  });
});
