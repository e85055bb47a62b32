import { once } from 'node:events';
import { describe, expect, it } from 'vitest';
import { type EngineFixture, entries, hasStackTrace, key, payloads, ping, pipelineYaml, publish, sha256, useEngines } from '../../helpers/engine.ts';
import { waitFor } from '../../helpers/redis.ts';

const { start } = useEngines();

/** A pipeline that sends invalid events (validate) and n = 13 (transform) to its DLQ. */
async function withDlqEntries() {
  const name = key('p');
  const stream = key('in');
  const out = key('out');
  const dlq = `${stream}:dlq`;
  const yaml = pipelineYaml({ name, stream, out });
  const f = await start({ pipelines: { [name]: yaml } });
  const invalid = { event: 'ping', source: 'admin-test', data: { n: 'x' } };
  const ids = await publish(f.client, stream, [ping(1), invalid, ping(13), ping(2)]);
  await waitFor(async () => (await f.client.xlen(out)) === 2 && (await f.client.xlen(dlq)) === 2, 'two outputs and two DLQ entries');
  return { f, name, stream, out, dlq, yaml, ids, invalid };
}

async function pause(f: EngineFixture, name: string) {
  const consumer = f.engine.handles.get(name)!.consumer!;
  const parked = Promise.race([once(consumer, 'idle'), once(consumer, 'settled')]);
  expect((await f.inject({ method: 'POST', url: `/pipelines/${name}/pause` })).statusCode).toBe(200);
  await parked;
}

describe('GET /dlq/:stream', () => {
  it('lists the entries oldest first, each with every SPEC §4 field', async () => {
    const { f, name, stream, dlq, ids, invalid } = await withDlqEntries();
    const res = await f.inject({ method: 'GET', url: `/dlq/${dlq}` });
    expect(res.statusCode).toBe(200);
    const body = JSON.parse(res.body);
    expect(body.stream).toBe(dlq);
    expect(body.length).toBe(2);
    const [first, second] = body.entries;
    expect(Object.keys(first).sort()).toEqual(['attempts', 'error', 'failed_at', 'id', 'payload', 'pipeline', 'source_id', 'source_stream', 'stage']);
    expect(first).toMatchObject({
      payload: JSON.stringify(invalid), stage: 'validate', pipeline: name, source_stream: stream, source_id: ids[1], attempts: 1,
      error: expect.stringContaining('data.n'),
    });
    expect(second).toMatchObject({
      payload: JSON.stringify(ping(13)), stage: 'transform', pipeline: name, source_stream: stream, source_id: ids[2], attempts: 1,
      error: expect.stringContaining('thirteen'),
    });
    for (const e of body.entries) expect(new Date(e.failed_at).toISOString()).toBe(e.failed_at);
    const ids2 = (await entries(f.client, dlq)).map((e) => e.id);
    expect(body.entries.map((e: { id: string }) => e.id)).toEqual(ids2);
  });

  it('pages with count and from', async () => {
    const { f, dlq } = await withDlqEntries();
    const all = (await entries(f.client, dlq)).map((e) => e.id);
    const page1 = JSON.parse((await f.inject({ method: 'GET', url: `/dlq/${dlq}?count=1` })).body);
    expect(page1.entries.map((e: { id: string }) => e.id)).toEqual([all[0]]);
    expect(page1.length).toBe(2);
    const page2 = JSON.parse((await f.inject({ method: 'GET', url: `/dlq/${dlq}?from=${all[1]}` })).body);
    expect(page2.entries.map((e: { id: string }) => e.id)).toEqual([all[1]]);
  });

  it('an empty or missing DLQ is an empty list', async () => {
    const f = await start();
    const res = await f.inject({ method: 'GET', url: `/dlq/${key('dlq')}` });
    expect(res.statusCode).toBe(200);
    expect(JSON.parse(res.body)).toMatchObject({ length: 0, entries: [] });
  });
});

describe('POST /dlq/:stream/redrive', () => {
  it('puts the entries back on the source stream and takes them off the DLQ; a fixed pipeline then sinks them', async () => {
    const { f, name, stream, out, dlq, yaml, invalid } = await withDlqEntries();
    await pause(f, name);
    const dlqIds = (await entries(f.client, dlq)).map((e) => e.id);
    const sourceBefore = await f.client.xlen(stream);

    const res = await f.inject({ method: 'POST', url: `/dlq/${dlq}/redrive`, payload: {} });
    expect(res.statusCode, res.body).toBe(200);
    const body = JSON.parse(res.body);
    expect(body.missing).toEqual([]);
    expect(body.redriven.map((r: { dlqId: string; stream: string }) => [r.dlqId, r.stream])).toEqual(dlqIds.map((id) => [id, stream]));

    expect(await f.client.xlen(dlq)).toBe(0);
    const source = await entries(f.client, stream);
    expect(source.length).toBe(sourceBefore + 2);
    const back = source.slice(-2);
    expect(back.map((e) => e.id)).toEqual(body.redriven.map((r: { newId: string }) => r.newId));
    expect(back.map((e) => e.fields)).toEqual([{ payload: JSON.stringify(invalid) }, { payload: JSON.stringify(ping(13)) }]);

    // A version that accepts both: no validation, no failing transform.
    const fixed = pipelineYaml({ name, stream, out, validate: false, version: 2, filter: 'true', transform: '{ "n": data.n, "version": 2 }' });
    const put = await f.inject({ method: 'PUT', url: `/pipelines/${name}`, headers: { 'content-type': 'application/yaml', 'if-match': sha256(yaml) }, payload: fixed });
    expect(put.statusCode, put.body).toBe(200);
    await f.inject({ method: 'POST', url: `/pipelines/${name}/resume` });
    const outs = await waitFor(async () => {
      const p = await payloads(f.client, out);
      return p.length === 4 && p;
    }, 'the redriven entries to be sunk');
    expect(outs.slice(2)).toEqual([{ n: 'x', version: 2 }, { n: 13, version: 2 }]);
    expect(await f.client.xlen(dlq)).toBe(0);
  });

  it('redrives the given ids only, and reports ids it does not have', async () => {
    const { f, name, stream, dlq } = await withDlqEntries();
    await pause(f, name);
    const [first, second] = (await entries(f.client, dlq)).map((e) => e.id);
    const res = await f.inject({ method: 'POST', url: `/dlq/${dlq}/redrive`, payload: { ids: [second, '1-1'] } });
    expect(res.statusCode, res.body).toBe(200);
    const body = JSON.parse(res.body);
    expect(body.missing).toEqual(['1-1']);
    expect(body.redriven).toEqual([{ dlqId: second, stream, newId: expect.stringMatching(/^\d+-\d+$/) }]);
    expect((await entries(f.client, dlq)).map((e) => e.id)).toEqual([first]);
  });

  it('restores the flat field map of an entry from a codec: fields stream', async () => {
    const name = key('p');
    const stream = key('in');
    const dlq = `${stream}:dlq`;
    const yaml = pipelineYaml({ name, stream, out: key('out') }).replace('  start:', '  codec: fields\n  start:');
    const f = await start({ pipelines: { [name]: yaml } });
    const original = ['event', 'ping', 'source', 'py-producer', 'data', '{"n":"x"}'];
    await f.client.xadd(stream, '*', ...original);
    await waitFor(async () => (await f.client.xlen(dlq)) === 1, 'the DLQ entry');
    await pause(f, name);
    const listed = JSON.parse((await f.inject({ method: 'GET', url: `/dlq/${dlq}` })).body).entries;
    expect(listed[0]).toMatchObject({ stage: 'validate', payload: JSON.stringify({ event: 'ping', source: 'py-producer', data: '{"n":"x"}' }) });

    const res = await f.inject({ method: 'POST', url: `/dlq/${dlq}/redrive`, payload: {} });
    expect(res.statusCode, res.body).toBe(200);
    const back = (await entries(f.client, stream)).at(-1)!;
    expect(back.id).toBe(JSON.parse(res.body).redriven[0].newId);
    expect(back.fields).toEqual({ event: 'ping', source: 'py-producer', data: '{"n":"x"}' });
    expect(await f.client.xlen(dlq)).toBe(0);
  });

  it('keeps an entry on the DLQ when re-publishing it fails', async () => {
    const f = await start();
    const dlq = key('dlq');
    const source = key('source');
    // The source key is no stream (WRONGTYPE): the XADD of a redrive must fail.
    await f.client.set(source, 'not a stream');
    const id = await f.client.xadd(dlq, '*',
      'payload', JSON.stringify(ping(1)), 'error', 'boom', 'stage', 'sink', 'pipeline', 'gone',
      'source_stream', source, 'source_id', '1-0', 'attempts', '3', 'failed_at', new Date().toISOString());
    const res = await f.inject({ method: 'POST', url: `/dlq/${dlq}/redrive`, payload: {} });
    expect(res.statusCode).toBeGreaterThanOrEqual(400);
    expect(hasStackTrace(res.body)).toBe(false);
    expect((await entries(f.client, dlq)).map((e) => e.id)).toEqual([id]);
    expect(await f.client.get(source)).toBe('not a stream');
  });

  it('400 for a body with unknown keys', async () => {
    const f = await start();
    const res = await f.inject({ method: 'POST', url: `/dlq/${key('dlq')}/redrive`, payload: { everything: true } });
    expect(res.statusCode).toBe(400);
    expect(JSON.parse(res.body).error).toBe('bad_request');
    expect(hasStackTrace(res.body)).toBe(false);
  });
});
