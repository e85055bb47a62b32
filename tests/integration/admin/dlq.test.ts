import { describe, expect, it } from 'vitest';
import { entries, hasStackTrace, key, payloads, ping, pipelineYaml, publish, sha256, useEngines } from '../../helpers/engine.ts';
import { waitFor } from '../../helpers/redis.ts';
import { runCli } from '../../helpers/engine-process.ts';

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

  it('from: an ISO time lists from that time; neither an id nor a time is a 400, in the API and in the CLI', async () => {
    const { f, dlq } = await withDlqEntries();
    const all = await entries(f.client, dlq);
    const fromTime = new Date(Number(all[0]!.id.split('-')[0])).toISOString();
    const page = JSON.parse((await f.inject({ method: 'GET', url: `/dlq/${dlq}?from=${encodeURIComponent(fromTime)}` })).body);
    expect(page.entries.map((e: { id: string }) => e.id)).toEqual(all.map((e) => e.id));
    const bad = await f.inject({ method: 'GET', url: `/dlq/${dlq}?from=yesterday-ish` });
    expect(bad.statusCode).toBe(400);
    expect(JSON.parse(bad.body)).toEqual({ error: 'bad_request', message: "from: 'yesterday-ish' is neither a stream entry id nor an ISO time" });
    // A long one is quoted cut to its first 100 characters.
    const long = await f.inject({ method: 'GET', url: `/dlq/${dlq}?from=${'y'.repeat(5000)}` });
    expect(long.statusCode).toBe(400);
    expect(JSON.parse(long.body).message).toBe(`from: '${'y'.repeat(100)}' is neither a stream entry id nor an ISO time`);

    const cli = await runCli(['dlq', 'list', dlq, '--from', 'yesterday-ish'], { env: { REDIS_URL: f.redis.url } });
    expect(cli.code).toBe(1);
    expect(cli.stderr).toContain("from: 'yesterday-ish' is neither a stream entry id nor an ISO time");
    expect(cli.stdout).toBe('');
    const listed = await runCli(['dlq', 'list', dlq, '--from', all[1]!.id], { env: { REDIS_URL: f.redis.url } });
    expect(listed.code, listed.stderr).toBe(0);
    expect(listed.stdout.trim().split('\n').map((l) => JSON.parse(l).id)).toEqual([all[1]!.id]);
    expect(listed.stderr).toContain(`1 entry of 2 in ${dlq}`);
  });

  it('an empty or missing DLQ is an empty list', async () => {
    const f = await start();
    const res = await f.inject({ method: 'GET', url: `/dlq/${key('dlq')}` });
    expect(res.statusCode).toBe(200);
    expect(JSON.parse(res.body)).toMatchObject({ length: 0, entries: [] });
  });
});

describe('POST /dlq/:stream/redrive', () => {
  it('runs the entries again through the fixed pipeline with their original ids, never through the source stream', async () => {
    const { f, name, stream, out, dlq, yaml, ids } = await withDlqEntries();
    const dlqIds = (await entries(f.client, dlq)).map((e) => e.id);
    const sourceBefore = await f.client.xlen(stream);
    // A version that accepts both: no validation, no failing transform.
    const fixed = pipelineYaml({ name, stream, out, validate: false, version: 2, filter: 'true', transform: '{ "n": data.n, "version": 2 }' });
    const put = await f.inject({ method: 'PUT', url: `/pipelines/${name}`, headers: { 'content-type': 'application/yaml', 'if-match': sha256(yaml) }, payload: fixed });
    expect(put.statusCode, put.body).toBe(200);

    const res = await f.inject({ method: 'POST', url: `/dlq/${dlq}/redrive`, payload: {} });
    expect(res.statusCode, res.body).toBe(200);
    expect(JSON.parse(res.body)).toEqual({
      redriven: [
        { dlqId: dlqIds[0], pipeline: name, sourceId: ids[1], outcome: 'sunk' },
        { dlqId: dlqIds[1], pipeline: name, sourceId: ids[2], outcome: 'sunk' },
      ],
      skipped: [], missing: [],
    });
    expect(await f.client.xlen(dlq)).toBe(0);
    expect(await f.client.xlen(stream)).toBe(sourceBefore);
    expect((await payloads(f.client, out)).slice(2)).toEqual([{ n: 'x', version: 2 }, { n: 13, version: 2 }]);
  });

  it('redrives the given ids only, reports ids it does not have; an entry failing again gets a new DLQ entry', async () => {
    const { f, name, dlq, ids } = await withDlqEntries();
    const [first, second] = (await entries(f.client, dlq)).map((e) => e.id);
    const res = await f.inject({ method: 'POST', url: `/dlq/${dlq}/redrive`, payload: { ids: [second, '1-1', 'not-an-id'] } });
    expect(res.statusCode, res.body).toBe(200);
    const body = JSON.parse(res.body);
    expect(body.missing).toEqual(['1-1', 'not-an-id']);
    expect(body.redriven).toEqual([{ dlqId: second, pipeline: name, sourceId: ids[2], outcome: 'dlq', newDlqId: expect.stringMatching(/^\d+-\d+$/), error: expect.stringContaining('thirteen') }]);
    const left = await entries(f.client, dlq);
    expect(left.map((e) => e.id)).toEqual([first, body.redriven[0].newDlqId]);
    expect(left[1]!.fields).toMatchObject({ source_id: ids[2], stage: 'transform', pipeline: name });
  });

  it('runs an entry of a codec: fields stream as its flat field map', async () => {
    const name = key('p');
    const stream = key('in');
    const out = key('out');
    const dlq = `${stream}:dlq`;
    const yaml = pipelineYaml({ name, stream, out }).replace('  start:', '  codec: fields\n  start:');
    const f = await start({ pipelines: { [name]: yaml } });
    await f.client.xadd(stream, '*', 'event', 'ping', 'source', 'py-producer', 'data', '{"n":"x"}');
    await waitFor(async () => (await f.client.xlen(dlq)) === 1, 'the DLQ entry');
    const listed = JSON.parse((await f.inject({ method: 'GET', url: `/dlq/${dlq}` })).body).entries;
    expect(listed[0]).toMatchObject({ stage: 'validate', payload: JSON.stringify({ event: 'ping', source: 'py-producer', data: '{"n":"x"}' }) });

    const fixed = yaml.replace(/validate:\n.*\n.*\n/, '').replace('data.keep = true', 'true');
    const put = await f.inject({ method: 'PUT', url: `/pipelines/${name}`, headers: { 'content-type': 'application/yaml', 'if-match': sha256(yaml) }, payload: fixed });
    expect(put.statusCode, put.body).toBe(200);
    const res = await f.inject({ method: 'POST', url: `/dlq/${dlq}/redrive`, payload: {} });
    expect(JSON.parse(res.body).redriven).toMatchObject([{ outcome: 'sunk' }]);
    expect(await payloads(f.client, out)).toEqual([{ n: 'x', version: 1 }]);
    expect(await f.client.xlen(dlq)).toBe(0);
  });

  it('skips and keeps an entry whose pipeline is not running', async () => {
    const f = await start();
    const dlq = key('dlq');
    const id = await f.client.xadd(dlq, '*',
      'payload', JSON.stringify(ping(1)), 'error', 'boom', 'stage', 'sink', 'pipeline', 'gone',
      'source_stream', key('source'), 'source_id', '1-0', 'attempts', '3', 'failed_at', new Date().toISOString());
    const res = await f.inject({ method: 'POST', url: `/dlq/${dlq}/redrive`, payload: {} });
    expect(res.statusCode, res.body).toBe(200);
    expect(JSON.parse(res.body)).toEqual({ redriven: [], skipped: [{ dlqId: id, reason: "pipeline 'gone' is not running" }], missing: [] });
    expect(hasStackTrace(res.body)).toBe(false);
    expect((await entries(f.client, dlq)).map((e) => e.id)).toEqual([id]);
  });

  it('synapse dlq redrive asks the running engine, and prints each entry\'s outcome', async () => {
    const { f, name, stream, out, dlq, yaml, ids } = await withDlqEntries();
    const fixed = pipelineYaml({ name, stream, out, validate: false, version: 2, filter: 'true', transform: '{ "n": data.n, "version": 2 }' });
    await f.inject({ method: 'PUT', url: `/pipelines/${name}`, headers: { 'content-type': 'application/yaml', 'if-match': sha256(yaml) }, payload: fixed });
    await f.app.listen({ host: '127.0.0.1', port: 0 });
    const { port } = f.app.server.address() as { port: number };
    const res = await runCli(['dlq', 'redrive', dlq, '--admin', `http://127.0.0.1:${port}`]);
    expect(res.code, res.stderr).toBe(0);
    expect(res.stdout.trim().split('\n').map((l) => l.split(' ').slice(1))).toEqual([[name, ids[1], 'sunk'], [name, ids[2], 'sunk']]);
    expect(res.stderr).toContain('redriven 2, skipped 0');
    expect(await f.client.xlen(dlq)).toBe(0);
  });

  it('400 for a body with unknown keys', async () => {
    const f = await start();
    const res = await f.inject({ method: 'POST', url: `/dlq/${key('dlq')}/redrive`, payload: { everything: true } });
    expect(res.statusCode).toBe(400);
    expect(JSON.parse(res.body).error).toBe('bad_request');
    expect(hasStackTrace(res.body)).toBe(false);
  });
});
