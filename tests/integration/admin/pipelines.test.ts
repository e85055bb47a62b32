import { once } from 'node:events';
import { readdir, readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { groupsOf, hasStackTrace, key, metricValue, payloads, ping, pipelineYaml, publish, sha256, useEngines, type EngineFixture } from '../../helpers/engine.ts';
import { waitFor } from '../../helpers/redis.ts';

const { start } = useEngines();

/** One standard pipeline, `name` reading `stream` and publishing to `out`. */
function standard(label = 'p') {
  const name = key(label);
  return { name, stream: key('in'), out: key('out') };
}

/** Expects an error reply: the status, a stable code, a message, and nothing like a stack trace. */
interface ErrorBody {
  error: string;
  message: string;
  diagnostics?: { file: string; line: number; col: number; message: string }[];
}

function expectError(res: { statusCode: number; body: string }, status: number, code?: string): ErrorBody {
  expect(res.statusCode, res.body).toBe(status);
  const body = JSON.parse(res.body) as ErrorBody;
  expect(typeof body.error).toBe('string');
  expect(typeof body.message).toBe('string');
  if (code) expect(body.error).toBe(code);
  expect(hasStackTrace(res.body), res.body).toBe(false);
  return body;
}

/** Waits until `stream` holds at least `n` payloads and returns them. */
function outputs(f: EngineFixture, stream: string, n: number) {
  return waitFor(async () => {
    const got = await payloads(f.client, stream);
    return got.length >= n && got;
  }, `${n} outputs in ${stream}`);
}

describe('GET /pipelines and /pipelines/:name', () => {
  it('lists every pipeline, and shows one with status, generation, hashes, counters, lag, pending and errors', async () => {
    const a = standard('a');
    const b = standard('b');
    const yamlA = pipelineYaml(a);
    const f = await start({ pipelines: { [a.name]: yamlA, [b.name]: pipelineYaml(b) } });

    const list = await f.inject({ method: 'GET', url: '/pipelines' });
    expect(list.statusCode).toBe(200);
    const names = (JSON.parse(list.body).pipelines as { name: string }[]).map((p) => p.name);
    expect(names).toEqual([a.name, b.name].sort());

    // 3 sunk, 1 filtered, 1 invalid (validate), 1 failing its transform (n = 13).
    await publish(f.client, a.stream, [ping(1), ping(2), ping(3), ping(4, { keep: false }), { event: 'ping', data: {} }, ping(13)]);
    await waitFor(() => {
      const c = f.engine.handles.get(a.name)!.counters;
      return c.sunk + c.filtered + c.dlq + c.dropped === 6;
    }, 'six entries settled');

    const res = await f.inject({ method: 'GET', url: `/pipelines/${a.name}` });
    expect(res.statusCode).toBe(200);
    const view = JSON.parse(res.body);
    expect(view).toMatchObject({
      name: a.name,
      file: join(f.pipelinesDir, `${a.name}.yaml`),
      status: 'running',
      generation: 1,
      hash: sha256(yamlA),
      fileHash: sha256(yamlA),
      source: { stream: a.stream, group: a.name, codec: 'json', envelope: 'keep', batch: 100, start: '0' },
      validate: { schema: 'https://synapse.test/admin/ping.json', on_invalid: 'dlq' },
      filter: 'data.keep = true',
      sinks: [{ id: 'publish', type: 'publish' }],
      dlq: `${a.stream}:dlq`,
      counters: { sunk: 3, filtered: 1, dlq: 2, dropped: 0 },
      lag: 0,
      pending: 0,
      lastError: null,
      lastReloadError: null,
    });
    expect(new Date(view.loadedAt).toISOString()).toBe(view.loadedAt);
    // The counters are the four outcomes, nothing else; the last DLQ entry is the one of n = 13.
    expect(Object.keys(view.counters).sort()).toEqual(['dlq', 'dropped', 'filtered', 'sunk']);
    expect(view.lastDlq).toMatchObject({ stage: 'transform' });
    const lastDlq = view.lastDlq;

    // A later batch that dead-letters nothing leaves the last DLQ entry as it was.
    await publish(f.client, a.stream, [ping(5)]);
    await waitFor(() => f.engine.handles.get(a.name)!.counters.sunk === 4, 'the next entry settled');
    expect(JSON.parse((await f.inject({ method: 'GET', url: `/pipelines/${a.name}` })).body).lastDlq).toEqual(lastDlq);
  });

  it('shows lastReloadError as FILE:LINE:COL while a bad edit is on disk, and fileHash differs from hash', async () => {
    const p = standard();
    const yaml = pipelineYaml(p);
    const f = await start({ pipelines: { [p.name]: yaml } });
    const bad = yaml.replace('filter: "data.keep = true"', 'filtr: "data.keep = true"');
    const file = await f.writePipeline(p.name, bad);
    const result = await f.engine.reloadFile(file);
    expect(result.ok).toBe(false);

    const view = JSON.parse((await f.inject({ method: 'GET', url: `/pipelines/${p.name}` })).body);
    expect(view.status).toBe('running');
    expect(view.generation).toBe(1);
    expect(view.hash).toBe(sha256(yaml));
    expect(view.fileHash).toBe(sha256(bad));
    const line = bad.split('\n').findIndex((l) => l.startsWith('filtr:')) + 1;
    expect(view.lastReloadError).toMatch(new RegExp(`${p.name}\\.yaml:${line}:1 unknown key 'filtr'`));
  });

  it('shows lastError when the consumer loop fails (the source key is not a stream)', async () => {
    const p = standard();
    const f = await start({ pipelines: { [p.name]: pipelineYaml(p) } });
    await waitFor(async () => (await f.client.exists(p.stream)) === 1, 'the group to be created');
    await f.client.del(p.stream);
    await f.client.set(p.stream, 'not a stream');
    const view = await waitFor(async () => {
      const v = JSON.parse((await f.inject({ method: 'GET', url: `/pipelines/${p.name}` })).body);
      return v.lastError && v;
    }, 'lastError');
    expect(view.lastError.message).toEqual(expect.stringMatching(/\S/));
    expect(new Date(view.lastError.at).toISOString()).toBe(view.lastError.at);
  });

  it('lists a file that failed to load as invalid, with its FILE:LINE:COL error', async () => {
    const p = standard();
    const bad = 'name: NAME\nsource:\n  stream: s\nsink:\n  type: nosuch\n'.replace('NAME', p.name);
    const f = await start({ pipelines: { [p.name]: bad }, allowRejected: true });
    const list = JSON.parse((await f.inject({ method: 'GET', url: '/pipelines' })).body).pipelines;
    expect(list).toEqual([expect.objectContaining({ name: p.name, status: 'invalid' })]);
    const one = JSON.parse((await f.inject({ method: 'GET', url: `/pipelines/${p.name}` })).body);
    expect(one.status).toBe('invalid');
    expect(one.lastReloadError).toMatch(new RegExp(`${p.name}\\.yaml:5:9 unknown sink type 'nosuch'`));
  });

  it('404s an unknown pipeline and an unknown route', async () => {
    const f = await start();
    expectError(await f.inject({ method: 'GET', url: `/pipelines/${key('nope')}` }), 404, 'not_found');
    expectError(await f.inject({ method: 'GET', url: '/no/such/route' }), 404, 'not_found');
    expectError(await f.inject({ method: 'DELETE', url: '/pipelines' }), 404, 'not_found');
  });
});

describe('POST /pipelines/:name/pause and /resume', () => {
  it('reads nothing while paused (lag grows), and catches up once resumed', async () => {
    const p = standard('paused');
    // A sentinel pipeline reads the same stream in its own group: once it has everything, the
    // paused one had every chance to read too.
    const s = { name: key('sentinel'), stream: p.stream, out: key('sentinel-out') };
    const f = await start({ pipelines: { [p.name]: pipelineYaml(p), [s.name]: pipelineYaml(s) } });
    await publish(f.client, p.stream, [ping(1), ping(2), ping(3)]);
    await outputs(f, p.out, 3);
    await outputs(f, s.out, 3);

    const consumer = f.engine.handles.get(p.name)!.consumer!;
    // The read in hand when pausing finishes first: wait for it to come back.
    const parked = Promise.race([once(consumer, 'idle'), once(consumer, 'settled')]);
    const paused = await f.inject({ method: 'POST', url: `/pipelines/${p.name}/pause` });
    expect(paused.statusCode).toBe(200);
    expect(JSON.parse(paused.body)).toEqual({ name: p.name, status: 'paused' });
    await parked;
    expect(metricValue(await f.engine.metrics.registry.metrics(), 'synapse_pipeline_up', { pipeline: p.name })).toBe(0);

    await publish(f.client, p.stream, [ping(4), ping(5), ping(6), ping(7), ping(8)]);
    await outputs(f, s.out, 8);
    const view = JSON.parse((await f.inject({ method: 'GET', url: `/pipelines/${p.name}` })).body);
    expect(view.status).toBe('paused');
    expect(view.lag).toBe(5);
    expect(view.counters.sunk).toBe(3);
    expect(await f.client.xlen(p.out)).toBe(3);

    const resumed = await f.inject({ method: 'POST', url: `/pipelines/${p.name}/resume` });
    expect(resumed.statusCode).toBe(200);
    expect(JSON.parse(resumed.body)).toEqual({ name: p.name, status: 'running' });
    const out = await outputs(f, p.out, 8);
    expect(out.map((o) => o.n)).toEqual([1, 2, 3, 4, 5, 6, 7, 8]);
    const after = JSON.parse((await f.inject({ method: 'GET', url: `/pipelines/${p.name}` })).body);
    expect(after).toMatchObject({ status: 'running', lag: 0, pending: 0, counters: { sunk: 8 } });
  });

  it('404s pausing or resuming an unknown pipeline', async () => {
    const f = await start();
    expectError(await f.inject({ method: 'POST', url: `/pipelines/${key()}/pause` }), 404, 'not_found');
    expectError(await f.inject({ method: 'POST', url: `/pipelines/${key()}/resume` }), 404, 'not_found');
  });
});

describe('PUT /pipelines/:name', () => {
  it('creates a pipeline (201): written to disk and running', async () => {
    const f = await start();
    const p = standard('new');
    const yaml = pipelineYaml(p);
    const res = await f.inject({ method: 'PUT', url: `/pipelines/${p.name}`, headers: { 'content-type': 'application/yaml' }, payload: yaml });
    expect(res.statusCode, res.body).toBe(201);
    expect(JSON.parse(res.body)).toEqual({ name: p.name, hash: sha256(yaml), generation: 1, change: 'added' });
    expect(await readFile(join(f.pipelinesDir, `${p.name}.yaml`), 'utf8')).toBe(yaml);
    expect(f.engine.handles.get(p.name)?.status).toBe('running');
    await publish(f.client, p.stream, [ping(1)]);
    expect(await outputs(f, p.out, 1)).toEqual([{ n: 1, version: 1 }]);
  });

  it('updates a pipeline (200) given the current hash: generation +1, new text on disk, new behaviour', async () => {
    const p = standard();
    const v1 = pipelineYaml(p);
    const f = await start({ pipelines: { [p.name]: v1 } });
    await publish(f.client, p.stream, [ping(1)]);
    await outputs(f, p.out, 1);

    const got = JSON.parse((await f.inject({ method: 'GET', url: `/pipelines/${p.name}` })).body);
    const v2 = pipelineYaml({ ...p, version: 2 });
    const res = await f.inject({
      method: 'PUT', url: `/pipelines/${p.name}`,
      headers: { 'content-type': 'application/yaml', 'if-match': `"${got.fileHash}"` }, payload: v2,
    });
    expect(res.statusCode, res.body).toBe(200);
    expect(JSON.parse(res.body)).toEqual({ name: p.name, hash: sha256(v2), generation: 2, change: 'updated' });
    expect(await readFile(join(f.pipelinesDir, `${p.name}.yaml`), 'utf8')).toBe(v2);
    const view = JSON.parse((await f.inject({ method: 'GET', url: `/pipelines/${p.name}` })).body);
    expect(view).toMatchObject({ generation: 2, hash: sha256(v2), fileHash: sha256(v2), status: 'running' });

    await publish(f.client, p.stream, [ping(2)]);
    expect(await outputs(f, p.out, 2)).toEqual([{ n: 1, version: 1 }, { n: 2, version: 2 }]);
  });

  it('428 without If-Match on an existing pipeline; 409 with a stale hash or If-Match on a new one', async () => {
    const p = standard();
    const v1 = pipelineYaml(p);
    const f = await start({ pipelines: { [p.name]: v1 } });
    const yaml = { 'content-type': 'application/yaml' };
    const v2 = pipelineYaml({ ...p, version: 2 });

    const missing = expectError(await f.inject({ method: 'PUT', url: `/pipelines/${p.name}`, headers: yaml, payload: v2 }), 428, 'precondition_required');
    expect(missing.message).toContain(sha256(v1));

    const ok = await f.inject({ method: 'PUT', url: `/pipelines/${p.name}`, headers: { ...yaml, 'if-match': sha256(v1) }, payload: v2 });
    expect(ok.statusCode, ok.body).toBe(200);
    // Someone else's edit won: the hash read before it is stale.
    const v3 = pipelineYaml({ ...p, version: 3 });
    expectError(await f.inject({ method: 'PUT', url: `/pipelines/${p.name}`, headers: { ...yaml, 'if-match': sha256(v1) }, payload: v3 }), 409, 'conflict');
    expect(await readFile(join(f.pipelinesDir, `${p.name}.yaml`), 'utf8')).toBe(v2);
    expect(f.engine.handles.get(p.name)!.generation).toBe(2);

    const other = standard();
    expectError(await f.inject({ method: 'PUT', url: `/pipelines/${other.name}`, headers: { ...yaml, 'if-match': sha256(v1) }, payload: pipelineYaml(other) }), 409, 'conflict');
    expect(f.engine.handles.has(other.name)).toBe(false);
  });

  it('two PUTs racing with the same If-Match: one wins, the other gets 409', async () => {
    const p = standard();
    const v1 = pipelineYaml(p);
    const f = await start({ pipelines: { [p.name]: v1 } });
    const put = (version: number) => f.inject({
      method: 'PUT', url: `/pipelines/${p.name}`,
      headers: { 'content-type': 'application/yaml', 'if-match': sha256(v1) }, payload: pipelineYaml({ ...p, version }),
    });
    const [a, b] = await Promise.all([put(2), put(3)]);
    expect([a.statusCode, b.statusCode].sort()).toEqual([200, 409]);
    const winner = a.statusCode === 200 ? 2 : 3;
    expect(await readFile(join(f.pipelinesDir, `${p.name}.yaml`), 'utf8')).toBe(pipelineYaml({ ...p, version: winner }));
    expect(f.engine.handles.get(p.name)!.generation).toBe(2);
  });

  it('a paused pipeline stays paused across a PUT (weak If-Match accepted)', async () => {
    const p = standard();
    const v1 = pipelineYaml(p);
    const f = await start({ pipelines: { [p.name]: v1 } });
    const consumer = f.engine.handles.get(p.name)!.consumer!;
    const parked = Promise.race([once(consumer, 'idle'), once(consumer, 'settled')]);
    await f.inject({ method: 'POST', url: `/pipelines/${p.name}/pause` });
    await parked;
    const v2 = pipelineYaml({ ...p, version: 2 });
    const res = await f.inject({ method: 'PUT', url: `/pipelines/${p.name}`, headers: { 'content-type': 'application/yaml', 'if-match': `W/"${sha256(v1)}"` }, payload: v2 });
    expect(res.statusCode, res.body).toBe(200);
    const view = JSON.parse((await f.inject({ method: 'GET', url: `/pipelines/${p.name}` })).body);
    expect(view).toMatchObject({ status: 'paused', generation: 2, hash: sha256(v2) });
    await f.inject({ method: 'POST', url: `/pipelines/${p.name}/resume` });
    await publish(f.client, p.stream, [ping(1)]);
    expect(await outputs(f, p.out, 1)).toEqual([{ n: 1, version: 2 }]);
  });

  it('a PUT moving the pipeline to another group starts it there and keeps the old group', async () => {
    const p = standard();
    const v1 = pipelineYaml(p);
    const f = await start({ pipelines: { [p.name]: v1 } });
    await publish(f.client, p.stream, [ping(1)]);
    await outputs(f, p.out, 1);
    const group = key('group');
    const v2 = pipelineYaml({ ...p, version: 2, start: '$' }).replace('source:\n', `source:\n  group: ${group}\n`);
    const res = await f.inject({ method: 'PUT', url: `/pipelines/${p.name}`, headers: { 'content-type': 'application/yaml', 'if-match': sha256(v1) }, payload: v2 });
    expect(res.statusCode, res.body).toBe(200);
    expect(JSON.parse(res.body)).toMatchObject({ generation: 2, change: 'updated' });
    await waitFor(async () => (await groupsOf(f.client, p.stream)).some((g) => g.name === group), 'the new group');
    expect((await groupsOf(f.client, p.stream)).map((g) => g.name).sort()).toEqual([group, p.name].sort());
    await publish(f.client, p.stream, [ping(2)]);
    expect(await outputs(f, p.out, 2)).toEqual([{ n: 1, version: 1 }, { n: 2, version: 2 }]);
  });

  // Each invalid file and where its (first) problem is: the reply must point at that line and column.
  const invalid: { title: string; yaml: (n: string) => string; line: number; col: number; message: RegExp }[] = [
    { title: 'a duplicate key', yaml: (n) => `name: ${n}\nsource:\n  stream: s\n  stream: t\nsink: { type: log }\n`, line: 4, col: 3, message: /unique/ },
    { title: 'a tab as indentation', yaml: (n) => `name: ${n}\nsource:\n\tstream: s\nsink: { type: log }\n`, line: 3, col: 1, message: /[Tt]ab/ },
    { title: 'a nested compact mapping', yaml: (n) => `name: ${n}\nsource:\n  stream: s\nsink: type: log\n`, line: 4, col: 7, message: /compact/ },
    { title: 'an unknown key', yaml: (n) => `name: ${n}\nsource:\n  stream: s\nfiltr: event = "a"\nsink: { type: log }\n`, line: 4, col: 1, message: /unknown key 'filtr'/ },
    { title: 'a bad JSONata filter (plain scalar)', yaml: (n) => `name: ${n}\nsource:\n  stream: s\nfilter: data.n + \nsink: { type: log }\n`, line: 4, col: 17, message: /filter: invalid JSONata/ },
    { title: 'a bad JSONata transform in a block scalar', yaml: (n) => `name: ${n}\nsource:\n  stream: s\ntransform: |\n  {\n    "a": data.a,\n    "b": \n  }\nsink: { type: log }\n`, line: 8, col: 3, message: /transform: invalid JSONata/ },
    { title: 'a bad JSONata transform in a double-quoted scalar with escapes', yaml: (n) => `name: ${n}\nsource:\n  stream: s\ntransform: "{ \\"a\\": }"\nsink: { type: log }\n`, line: 4, col: 22, message: /transform: invalid JSONata/ },
    { title: 'an unknown schema $id', yaml: (n) => `name: ${n}\nsource:\n  stream: s\nvalidate:\n  schema: https://nope.test/x.json\nsink: { type: log }\n`, line: 5, col: 11, message: /unknown schema/ },
    { title: 'an unknown sink type', yaml: (n) => `name: ${n}\nsource:\n  stream: s\nsink:\n  type: nosuch\n`, line: 5, col: 9, message: /unknown sink type 'nosuch'/ },
    { title: "a sink 'with' not matching its configSchema", yaml: (n) => `name: ${n}\nsource:\n  stream: s\nsink:\n  type: publish\n  with:\n    stream: x\n    maxlen: many\n`, line: 8, col: 13, message: /maxlen/ },
  ];

  it.each(invalid)('422 for $title, pointing at $line:$col; the running version stays', async ({ yaml, line, col, message }) => {
    const p = standard();
    const v1 = pipelineYaml(p);
    const f = await start({ pipelines: { [p.name]: v1 } });
    const res = await f.inject({ method: 'PUT', url: `/pipelines/${p.name}`, headers: { 'content-type': 'application/yaml', 'if-match': sha256(v1) }, payload: yaml(p.name) });
    const body = expectError(res, 422, 'pipeline_invalid');
    const file = join(f.pipelinesDir, `${p.name}.yaml`);
    expect(body.diagnostics?.[0]).toMatchObject({ file, line, col, message: expect.stringMatching(message) });
    expect(body.message).toContain(`${p.name}.yaml:${line}:${col} `);
    expect(await readFile(file, 'utf8')).toBe(v1);
    expect(f.engine.handles.get(p.name)).toMatchObject({ generation: 1, status: 'running' });
  });

  it('422 when the file names another pipeline than the URL', async () => {
    const f = await start();
    const p = standard();
    const res = await f.inject({ method: 'PUT', url: `/pipelines/${key('other')}`, headers: { 'content-type': 'application/yaml' }, payload: pipelineYaml(p) });
    const body = expectError(res, 422, 'pipeline_invalid');
    expect(body.diagnostics?.[0]).toMatchObject({ line: 1, col: 1, message: expect.stringContaining(p.name) });
    expect(f.engine.handles.size).toBe(0);
  });

  it('fixes a file that failed to load, with the fileHash GET shows as If-Match', async () => {
    const p = standard();
    const bad = pipelineYaml(p).replace('type: publish', 'type: nosuch');
    const f = await start({ pipelines: { [p.name]: bad }, allowRejected: true });
    const view = JSON.parse((await f.inject({ method: 'GET', url: `/pipelines/${p.name}` })).body);
    expect(view.status).toBe('invalid');
    // PUT demands If-Match for an existing file, so GET must tell its hash.
    expect(view.fileHash).toBe(sha256(bad));
    const good = pipelineYaml(p);
    const res = await f.inject({ method: 'PUT', url: `/pipelines/${p.name}`, headers: { 'content-type': 'application/yaml', 'if-match': String(view.fileHash) }, payload: good });
    expect(res.statusCode, res.body).toBe(200);
    expect(f.engine.handles.get(p.name)?.status).toBe('running');
    expect(f.engine.rejected.size).toBe(0);
  });
});

describe('POST /pipelines/:name/dry-run', () => {
  it('runs the given events through the running version, with no side effects', async () => {
    const p = standard();
    const f = await start({ pipelines: { [p.name]: pipelineYaml(p) } });
    const res = await f.inject({
      method: 'POST', url: `/pipelines/${p.name}/dry-run`,
      payload: { events: [ping(1), ping(2, { keep: false }), { event: 'ping', data: { n: 'x' } }, ping(13)] },
    });
    expect(res.statusCode, res.body).toBe(200);
    const body = JSON.parse(res.body);
    expect(body.summary).toEqual({ sunk: 1, filtered: 1, dlq: 2, dropped: 0 });
    expect(body.results).toEqual([
      { id: '0-1', outcome: 'sunk', sinks: { publish: { n: 1, version: 1 } } },
      { id: '0-2', outcome: 'filtered' },
      { id: '0-3', outcome: 'dlq', stage: 'validate', error: expect.stringContaining('data.n') },
      { id: '0-4', outcome: 'dlq', stage: 'transform', error: expect.stringContaining('thirteen') },
    ]);
    expect(await f.client.exists(p.out, `${p.stream}:dlq`)).toBe(0);
  });

  it('runs an edited version given as yaml, leaving the running one alone', async () => {
    const p = standard();
    const v1 = pipelineYaml(p);
    const f = await start({ pipelines: { [p.name]: v1 } });
    const res = await f.inject({
      method: 'POST', url: `/pipelines/${p.name}/dry-run`,
      payload: { yaml: pipelineYaml({ ...p, version: 7, filter: 'true' }), events: [ping(1), ping(2, { keep: false })] },
    });
    expect(res.statusCode, res.body).toBe(200);
    expect(JSON.parse(res.body).results.map((r: { sinks?: unknown }) => r.sinks)).toEqual([{ publish: { n: 1, version: 7 } }, { publish: { n: 2, version: 7 } }]);
    expect(f.engine.handles.get(p.name)).toMatchObject({ generation: 1, pipeline: { hash: sha256(v1) } });
    expect(await readFile(join(f.pipelinesDir, `${p.name}.yaml`), 'utf8')).toBe(v1);
  });

  it('runs a real slice of the source stream (from/to, count) and never acknowledges it', async () => {
    const p = standard();
    const f = await start({ pipelines: { [p.name]: pipelineYaml(p) } });
    await publish(f.client, p.stream, [ping(1), ping(2)]);
    await outputs(f, p.out, 2);
    const consumer = f.engine.handles.get(p.name)!.consumer!;
    const parked = Promise.race([once(consumer, 'idle'), once(consumer, 'settled')]);
    await f.inject({ method: 'POST', url: `/pipelines/${p.name}/pause` });
    await parked;
    // Entries the group has not read (lag), and one delivered to another consumer, not acked (pending).
    const ids = await publish(f.client, p.stream, [ping(3), ping(4, { keep: false }), ping(13), ping(6)]);
    const ghost = await f.client.xreadgroup('GROUP', p.name, 'ghost', 'COUNT', 1, 'STREAMS', p.stream, '>') as [string, [string, string[]][]][];
    expect(ghost[0]![1][0]![0]).toBe(ids[0]);

    const state = async () => ({
      group: (await groupsOf(f.client, p.stream)).find((g) => g.name === p.name),
      // id, consumer and delivery count of each pending entry (not its idle time, which grows).
      pending: ((await f.client.xpending(p.stream, p.name, '-', '+', 100)) as [string, string, number, number][]).map(([id, c, , n]) => [id, c, n]),
      length: await f.client.xlen(p.stream),
      dlq: await f.client.exists(`${p.stream}:dlq`),
      out: await f.client.xlen(p.out),
    });
    const before = await state();
    expect(before.group).toMatchObject({ pending: 1, lag: 3, 'last-delivered-id': ids[0] });

    const range = await f.inject({ method: 'POST', url: `/pipelines/${p.name}/dry-run`, payload: { from: ids[0], to: ids[2] } });
    expect(range.statusCode, range.body).toBe(200);
    const rb = JSON.parse(range.body);
    expect(rb.results.map((r: { id: string; outcome: string }) => [r.id, r.outcome])).toEqual([[ids[0], 'sunk'], [ids[1], 'filtered'], [ids[2], 'dlq']]);
    expect(rb.summary).toEqual({ sunk: 1, filtered: 1, dlq: 1, dropped: 0 });

    const latest = await f.inject({ method: 'POST', url: `/pipelines/${p.name}/dry-run`, payload: { count: 2 } });
    expect(latest.statusCode, latest.body).toBe(200);
    expect(JSON.parse(latest.body).results.map((r: { id: string }) => r.id)).toEqual([ids[2], ids[3]]);

    expect(await state()).toEqual(before);
  });

  it('422 for invalid yaml or a bad range; 404 for an unknown pipeline', async () => {
    const p = standard();
    const f = await start({ pipelines: { [p.name]: pipelineYaml(p) } });
    const badYaml = `name: ${p.name}\nsource:\n  stream: s\nsink:\n  type: nosuch\n`;
    const body = expectError(await f.inject({ method: 'POST', url: `/pipelines/${p.name}/dry-run`, payload: { yaml: badYaml, events: [ping(1)] } }), 422, 'pipeline_invalid');
    expect(body.diagnostics).toEqual([expect.objectContaining({ line: 5, col: 9 })]);
    expectError(await f.inject({ method: 'POST', url: `/pipelines/${p.name}/dry-run`, payload: { from: 'yesterday-ish' } }), 422, 'bad_range');
    expectError(await f.inject({ method: 'POST', url: `/pipelines/${key()}/dry-run`, payload: { events: [ping(1)] } }), 404, 'not_found');
    expectError(await f.inject({ method: 'POST', url: `/pipelines/${p.name}/dry-run`, payload: { events: [ping(1)], bogus: true } }), 400, 'bad_request');
  });
});

describe('POST /validate', () => {
  it('says valid, with the pipeline name', async () => {
    const f = await start();
    const p = standard();
    const res = await f.inject({ method: 'POST', url: '/validate', payload: { yaml: pipelineYaml(p) } });
    expect(res.statusCode).toBe(200);
    expect(JSON.parse(res.body)).toEqual({ valid: true, name: p.name, diagnostics: [], warnings: [] });
    expect(f.engine.handles.size).toBe(0);
  });

  it('lists every problem as file, line, col, message', async () => {
    const f = await start();
    const yaml = 'source:\n  stream: s\nfiltr: x\nsink:\n  type: nosuch\n';
    const res = await f.inject({ method: 'POST', url: '/validate', payload: { yaml, file: 'mine.yaml' } });
    expect(res.statusCode).toBe(200);
    expect(JSON.parse(res.body)).toEqual({
      valid: false,
      diagnostics: [
        { file: 'mine.yaml', line: 3, col: 1, message: expect.stringContaining("unknown key 'filtr'") },
        { file: 'mine.yaml', line: 5, col: 9, message: expect.stringContaining("unknown sink type 'nosuch'") },
      ],
      warnings: [],
    });
    const res2 = await f.inject({ method: 'POST', url: '/validate', payload: { yaml: 'source:\n  stream: s\nsink:\n  type: nosuch\n' } });
    expect(JSON.parse(res2.body).diagnostics).toEqual([{ file: 'pipeline.yaml', line: 4, col: 9, message: expect.stringContaining('nosuch') }]);
    expectError(await f.inject({ method: 'POST', url: '/validate', payload: {} }), 400, 'bad_request');
  });
});

describe('error replies', () => {
  it('a 500 says where to look, without a stack trace', async () => {
    // A pipeline's output key holds a string: XLEN of it fails inside GET /streams.
    const p = standard();
    const f = await start({ pipelines: { [p.name]: pipelineYaml(p) } });
    await f.client.set(p.out, 'not a stream');
    const body = expectError(await f.inject({ method: 'GET', url: '/streams' }), 500, 'internal');
    expect(body.message).toBe('internal error; see the engine log');
  });

  it('a malformed JSON body is a 400 without a stack trace', async () => {
    const f = await start();
    expectError(await f.inject({ method: 'POST', url: '/validate', headers: { 'content-type': 'application/json' }, payload: '{"yaml": ' }), 400);
  });

  it('PUT leaves no temp file behind in the pipeline directory', async () => {
    const f = await start();
    const p = standard();
    const res = await f.inject({ method: 'PUT', url: `/pipelines/${p.name}`, headers: { 'content-type': 'application/yaml' }, payload: pipelineYaml(p) });
    expect(res.statusCode).toBe(201);
    expect(await readdir(f.pipelinesDir)).toEqual([`${p.name}.yaml`]);
  });
});
