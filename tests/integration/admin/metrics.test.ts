import { describe, expect, it } from 'vitest';
import { type EngineFixture, key, metricValue, ping, pipelineYaml, publish, sha256, useEngines } from '../../helpers/engine.ts';
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
});
