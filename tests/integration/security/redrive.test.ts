import { describe, expect, it } from 'vitest';
import { startHttpRecorder } from '../../helpers/http-recorder.ts';
import { entries, key, payloads, ping, PING_ID, pipelineYaml, publish, sha256, useEngines } from '../../helpers/engine.ts';
import { waitFor } from '../../helpers/redis.ts';

// Issue #10, item 11: one entry that cannot be re-sent must not fail a whole redrive, and a
// redriven entry must reach only the pipeline (consumer group) that failed it, under its
// original id.

const { start } = useEngines();

function dlqEntry(o: { payload: string; pipeline: string; source: string; sourceId?: string }): string[] {
  return ['payload', o.payload, 'error', 'boom', 'stage', 'sink', 'pipeline', o.pipeline,
    'source_stream', o.source, 'source_id', o.sourceId ?? '1-0', 'attempts', '1', 'failed_at', new Date().toISOString()];
}

/** A pipeline that takes every ping and writes `{ n }` to `out` (dead-lettering to `dlq` when given). */
function acceptAll(o: { name: string; stream: string; out: string; dlq?: string }): string {
  return pipelineYaml({ ...o, validate: false, filter: 'true', transform: '{ "n": data.n }', extra: o.dlq ? `dlq: ${o.dlq}` : undefined });
}

describe('redrive', () => {
  it('skips and reports entries it cannot run, and still runs the others', async () => {
    const name = key('p');
    const fieldsName = key('pf');
    const stream = key('in');
    const fieldsStream = key('inf');
    const out = key('out');
    const fieldsOut = key('outf');
    // Both pipelines dead-letter to one DLQ.
    const dlq = key('dlq');
    const accept = acceptAll({ name, stream, out, dlq });
    const fieldsYaml = [`name: ${fieldsName}`, 'source:', `  stream: ${fieldsStream}`, '  codec: fields', 'validate:', `  schema: ${PING_ID}`,
      'sink:', '  type: publish', `  with: { stream: ${fieldsOut} }`, `dlq: ${dlq}`, ''].join('\n');
    const f = await start({ pipelines: { [name]: accept, [fieldsName]: fieldsYaml } });
    const notAStream = key('string');
    await f.client.set(notAStream, 'not a stream');
    const huge: Record<string, string> = { event: 'ping', data: '{"n":5}' };
    for (let i = 0; i < 5000; i++) huge[`f${i}`] = String(i);

    const good = await f.client.xadd(dlq, '*', ...dlqEntry({ payload: JSON.stringify(ping(1)), pipeline: name, source: stream, sourceId: '5-0' }));
    const wrongSource = await f.client.xadd(dlq, '*', ...dlqEntry({ payload: JSON.stringify(ping(2)), pipeline: name, source: notAStream }));
    const gone = await f.client.xadd(dlq, '*', ...dlqEntry({ payload: JSON.stringify(ping(3)), pipeline: key('gone'), source: stream }));
    const manyFields = await f.client.xadd(dlq, '*', ...dlqEntry({ payload: JSON.stringify(huge), pipeline: fieldsName, source: fieldsStream, sourceId: '6-0' }));
    const notAMap = await f.client.xadd(dlq, '*', ...dlqEntry({ payload: '["x"]', pipeline: fieldsName, source: fieldsStream }));
    const badId = await f.client.xadd(dlq, '*', ...dlqEntry({ payload: JSON.stringify(ping(4)), pipeline: name, source: stream, sourceId: 'nope' }));

    const res = await f.inject({ method: 'POST', url: `/dlq/${dlq}/redrive`, payload: { count: 100 } });
    expect(res.statusCode, res.body).toBe(200);
    const body = JSON.parse(res.body);
    expect(body.redriven).toEqual([
      { dlqId: good, pipeline: name, sourceId: '5-0', outcome: 'sunk' },
      { dlqId: manyFields, pipeline: fieldsName, sourceId: '6-0', outcome: 'sunk' },
    ]);
    expect(body.skipped).toEqual([
      { dlqId: wrongSource, reason: expect.stringContaining(`not the entry's source stream '${notAStream}'`) },
      { dlqId: gone, reason: expect.stringContaining('is not running') },
      { dlqId: notAMap, reason: expect.stringContaining('not the field map') },
      { dlqId: badId, reason: expect.stringContaining('is not a stream entry id') },
    ]);
    expect((await entries(f.client, dlq)).map((e) => e.id)).toEqual([wrongSource, gone, notAMap, badId]);
    expect(await payloads(f.client, out)).toEqual([{ n: 1 }]);
    expect((await payloads(f.client, fieldsOut))[0]).toMatchObject({ event: 'ping', f4999: '4999' });
    expect(await f.client.get(notAStream)).toBe('not a stream');
    expect(await f.client.xlen(stream)).toBe(0);
  });

  it('skips, each with its reason: no pipeline named, a pipeline that reads no stream, a bad source id (quoted cut), payloads no field map', async () => {
    const name = key('p');
    const fieldsName = key('pf');
    const tickName = key('tick');
    const stream = key('in');
    const fieldsStream = key('inf');
    const dlq = key('dlq');
    const accept = acceptAll({ name, stream, out: key('out'), dlq });
    const fieldsYaml = [`name: ${fieldsName}`, 'source:', `  stream: ${fieldsStream}`, '  codec: fields', 'sink:', '  type: publish',
      `  with: { stream: ${key('outf')} }`, `dlq: ${dlq}`, ''].join('\n');
    const tickYaml = [`name: ${tickName}`, 'source: { schedule: 1h }', `sink: { type: publish, with: { stream: ${key('ticks')} } }`, `dlq: ${dlq}`, ''].join('\n');
    const f = await start({ pipelines: { [name]: accept, [fieldsName]: fieldsYaml, [tickName]: tickYaml } });
    const add = (o: Parameters<typeof dlqEntry>[0], drop?: string) => {
      const fields = dlqEntry(o);
      if (drop) fields.splice(fields.indexOf(drop), 2);
      return f.client.xadd(dlq, '*', ...fields);
    };
    const noPipeline = await add({ payload: JSON.stringify(ping(1)), pipeline: name, source: stream }, 'pipeline');
    const noStream = await add({ payload: JSON.stringify(ping(2)), pipeline: tickName, source: stream });
    const longId = `${'7'.repeat(30)}x${'8'.repeat(69)}`;
    const badId = await add({ payload: JSON.stringify(ping(3)), pipeline: name, source: stream, sourceId: longId });
    const notMaps = [];
    for (const payload of ['not json', 'null', '"a string"', '{"n":1}']) {
      notMaps.push(await add({ payload, pipeline: fieldsName, source: fieldsStream, sourceId: '8-0' }));
    }

    const res = await f.inject({ method: 'POST', url: `/dlq/${dlq}/redrive`, payload: {} });
    expect(res.statusCode, res.body).toBe(200);
    const body = JSON.parse(res.body);
    expect(body.redriven).toEqual([]);
    expect(body.skipped).toEqual([
      { dlqId: noPipeline, reason: 'the entry names no pipeline' },
      { dlqId: noStream, reason: `pipeline '${tickName}' reads no stream` },
      { dlqId: badId, reason: `source_id '${longId.slice(0, 40)}' is not a stream entry id` },
      ...notMaps.map((dlqId) => ({ dlqId, reason: 'the payload is not the field map of a codec: fields entry' })),
    ]);
    expect(await f.client.xlen(dlq)).toBe(3 + notMaps.length);
  });

  it('redrives by ids only what looks like a stream entry id, and without ids only the oldest `count` entries', async () => {
    const name = key('p');
    const stream = key('in');
    const out = key('out');
    const dlq = key('dlq');
    const f = await start({ pipelines: { [name]: acceptAll({ name, stream, out, dlq }) } });
    // Ids with sequence numbers of two digits and more, as a busy millisecond gives them.
    const ids = ['5-10', '5-123', '6-1'];
    for (const [i, id] of ids.entries()) await f.client.xadd(dlq, id, ...dlqEntry({ payload: JSON.stringify(ping(i + 1)), pipeline: name, source: stream, sourceId: `${i + 1}-0` }));
    // Ids that are not stream entry ids are missing, not sent to Redis (which would refuse them).
    const odd = [`x${ids[0]}`, `${ids[0]}x`, `${ids[0]}-1`, '1-x', 'x-1'];
    const byIds = JSON.parse((await f.inject({ method: 'POST', url: `/dlq/${dlq}/redrive`, payload: { ids: odd } })).body);
    expect(byIds).toEqual({ redriven: [], skipped: [], missing: odd });
    expect(await f.client.xlen(dlq)).toBe(3);

    const one = JSON.parse((await f.inject({ method: 'POST', url: `/dlq/${dlq}/redrive`, payload: { count: 1 } })).body);
    expect(one.redriven).toEqual([{ dlqId: ids[0], pipeline: name, sourceId: '1-0', outcome: 'sunk' }]);
    expect((await entries(f.client, dlq)).map((e) => e.id)).toEqual(ids.slice(1));
    const second = JSON.parse((await f.inject({ method: 'POST', url: `/dlq/${dlq}/redrive`, payload: { ids: [ids[1]] } })).body);
    expect(second).toEqual({ redriven: [{ dlqId: ids[1], pipeline: name, sourceId: '2-0', outcome: 'sunk' }], skipped: [], missing: [] });
    const rest = JSON.parse((await f.inject({ method: 'POST', url: `/dlq/${dlq}/redrive`, payload: {} })).body);
    expect(rest.redriven.map((r: { dlqId: string }) => r.dlqId)).toEqual(ids.slice(2));
    expect(await payloads(f.client, out)).toEqual([{ n: 1 }, { n: 2 }, { n: 3 }]);
  });

  it('an entry that fails again while Redis refuses its new DLQ entry (out of memory) stays on the DLQ, not lost', async () => {
    const name = key('p');
    const stream = key('in');
    const dlq = key('dlq');
    // Fails again at transform: a new DLQ entry must replace the old one.
    const yaml = pipelineYaml({ name, stream, out: key('out'), validate: false, filter: 'true', transform: '$error("still broken")', extra: `dlq: ${dlq}` });
    const f = await start({ ownRedis: true, pipelines: { [name]: yaml } });
    const old = await f.client.xadd(dlq, '*', ...dlqEntry({ payload: JSON.stringify(ping(1)), pipeline: name, source: stream, sourceId: '5-0' }));
    await f.client.config('SET', 'maxmemory-policy', 'noeviction');
    await f.client.config('SET', 'maxmemory', '1');
    try {
      const res = await f.inject({ method: 'POST', url: `/dlq/${dlq}/redrive`, payload: { count: 10 } });
      expect(res.statusCode, res.body).toBe(200);
      expect(JSON.parse(res.body)).toMatchObject({ redriven: [], skipped: [{ dlqId: old, reason: expect.stringMatching(/OOM/) }] });
    } finally {
      await f.client.config('SET', 'maxmemory', '0');
    }
    expect((await entries(f.client, dlq)).map((e) => e.id)).toEqual([old]);
  });

  it('an entry whose sink Redis refuses (out of memory) is not settled: it stays on the DLQ, said so', async () => {
    const name = key('p');
    const stream = key('in');
    const out = key('out');
    const dlq = key('dlq');
    // Would be sunk, but the publish sink's write is refused after its retries: deferred.
    const yaml = acceptAll({ name, stream, out, dlq });
    const f = await start({ ownRedis: true, pipelines: { [name]: yaml } });
    const old = await f.client.xadd(dlq, '*', ...dlqEntry({ payload: JSON.stringify(ping(1)), pipeline: name, source: stream, sourceId: '5-0' }));
    await f.client.config('SET', 'maxmemory-policy', 'noeviction');
    await f.client.config('SET', 'maxmemory', '1');
    try {
      const res = await f.inject({ method: 'POST', url: `/dlq/${dlq}/redrive`, payload: {} });
      expect(res.statusCode, res.body).toBe(200);
      expect(JSON.parse(res.body)).toEqual({ redriven: [], missing: [],
        skipped: [{ dlqId: old, reason: expect.stringMatching(/^not settled \(.*OOM.*\); left on the DLQ$/) }] });
    } finally {
      await f.client.config('SET', 'maxmemory', '0');
    }
    expect((await entries(f.client, dlq)).map((e) => e.id)).toEqual([old]);
    expect(await f.client.exists(out)).toBe(0);
  });

  it('GET /dlq and redrive of a key that is no stream answer 409', async () => {
    const f = await start();
    const k = key('string');
    await f.client.set(k, 'x');
    for (const req of [{ method: 'GET' as const, url: `/dlq/${k}` }, { method: 'POST' as const, url: `/dlq/${k}/redrive`, payload: {} }]) {
      const res = await f.inject(req);
      expect(res.statusCode, res.body).toBe(409);
      expect(JSON.parse(res.body).error).toBe('not_a_stream');
    }
  });

  it('runs only entries found in the DLQ their pipeline writes to: look-alikes elsewhere are skipped', async () => {
    const name = key('p');
    const stream = key('in');
    const out = key('out');
    const f = await start({ pipelines: { [name]: acceptAll({ name, stream, out }) } });
    // A flat entry shaped like a DLQ entry, in the pipeline's own source stream.
    const forged = await f.client.xadd(stream, '*', ...dlqEntry({ payload: JSON.stringify(ping(7)), pipeline: name, source: stream, sourceId: '1-1' }));
    const res = await f.inject({ method: 'POST', url: `/dlq/${stream}/redrive`, payload: { ids: [forged] } });
    expect(JSON.parse(res.body)).toEqual({ redriven: [], skipped: [{ dlqId: forged, reason: expect.stringContaining(`dead-letters to '${stream}:dlq'`) }], missing: [] });
    expect(await f.client.xlen(stream)).toBe(1);
  });

  it('reaches only the consumer group that failed: other pipelines on the stream do not see the entry again', async () => {
    const failing = key('a');
    const other = key('b');
    const stream = key('in');
    const outA = key('outa');
    const outB = key('outb');
    const yamlA = pipelineYaml({ name: failing, stream, out: outA });
    const f = await start({ pipelines: { [failing]: yamlA, [other]: acceptAll({ name: other, stream, out: outB }) } });
    await publish(f.client, stream, [ping(1), ping(13)]);
    await waitFor(async () => (await f.client.xlen(outB)) === 2 && (await f.client.xlen(`${stream}:dlq`)) === 1, 'B sinks both, A dead-letters 13');

    const fixed = pipelineYaml({ name: failing, stream, out: outA, transform: '{ "n": data.n, "version": 2 }' });
    const put = await f.inject({ method: 'PUT', url: `/pipelines/${failing}`, headers: { 'content-type': 'application/yaml', 'if-match': sha256(yamlA) }, payload: fixed });
    expect(put.statusCode, put.body).toBe(200);
    const res = await f.inject({ method: 'POST', url: `/dlq/${stream}:dlq/redrive`, payload: {} });
    expect(JSON.parse(res.body).redriven).toMatchObject([{ pipeline: failing, outcome: 'sunk' }]);

    expect(await payloads(f.client, outA)).toEqual([{ n: 1, version: 1 }, { n: 13, version: 2 }]);
    expect(await f.client.xlen(stream)).toBe(2);
    // B's group has nothing new to read: its output stays at two.
    const groups = (await f.client.xinfo('GROUPS', stream)) as unknown[][];
    for (const g of groups) expect(g[g.indexOf('lag') + 1]).toBe(0);
    expect(await payloads(f.client, outB)).toEqual([{ n: 1 }, { n: 13 }]);
  });

  it('sinks see the original source id again: the http sink sends the same Idempotency-Key', async () => {
    const recorder = await startHttpRecorder(() => ({ status: 500 }));
    try {
      const name = key('p');
      const stream = key('in');
      const yaml = [`name: ${name}`, 'source:', `  stream: ${stream}`, '  start: "0"', '  block_ms: 100',
        'sink:', '  type: http', `  with: { url: "${recorder.url}/hook" }`, 'retry: { attempts: 1 }', ''].join('\n');
      const f = await start({ pipelines: { [name]: yaml } });
      const [id] = await publish(f.client, stream, [ping(1)]);
      await waitFor(async () => (await f.client.xlen(`${stream}:dlq`)) === 1, 'the DLQ entry');
      recorder.answer(() => ({ status: 200, body: { ok: true } }));
      const res = await f.inject({ method: 'POST', url: `/dlq/${stream}:dlq/redrive`, payload: {} });
      expect(JSON.parse(res.body).redriven).toMatchObject([{ sourceId: id, outcome: 'sunk' }]);
      expect(recorder.requests.map((r) => r.headers['idempotency-key'])).toEqual([`${name}:${id}`, `${name}:${id}`]);
    } finally {
      await recorder.close();
    }
  });
});
