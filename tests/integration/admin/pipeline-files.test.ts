import { access, readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { groupsOf, hasStackTrace, key, ping, pipelineYaml, publish, sha256, useEngines } from '../../helpers/engine.ts';
import { waitFor } from '../../helpers/redis.ts';

// Issue #12, item 3: a pipeline's file over HTTP — fetched as YAML with its hash, deleted with
// If-Match — and YAML accepted wherever a pipeline is sent; a 415 says what a route takes.

const { start } = useEngines();

function standard(label = 'p') {
  return { name: key(label), stream: key('in'), out: key('out') };
}

const exists = (file: string) => access(file).then(() => true, () => false);

describe('GET /pipelines/:name as YAML', () => {
  it('returns the file as it is on disk, with its sha256 as ETag; the JSON view carries the same ETag', async () => {
    const p = standard();
    // Comments and layout are kept: it is the file, not a re-serialisation.
    const text = `# owned by the ops team\n${pipelineYaml(p)}`;
    const f = await start({ pipelines: { [p.name]: text } });
    const yaml = await f.inject({ method: 'GET', url: `/pipelines/${p.name}`, headers: { accept: 'application/yaml' } });
    expect(yaml.statusCode).toBe(200);
    expect(yaml.headers['content-type']).toMatch(/^application\/yaml/);
    expect(yaml.body).toBe(text);
    expect(yaml.headers.etag).toBe(`"${sha256(text)}"`);

    const json = await f.inject({ method: 'GET', url: `/pipelines/${p.name}`, headers: { accept: 'application/json, application/yaml;q=0.5' } });
    expect(json.headers['content-type']).toMatch(/^application\/json/);
    expect(json.headers.etag).toBe(`"${sha256(text)}"`);
    expect(JSON.parse(json.body)).toMatchObject({ name: p.name, fileHash: sha256(text) });

    // The ETag is what PUT takes in If-Match.
    const edited = text.replace('version": 1', 'version": 2');
    const put = await f.inject({ method: 'PUT', url: `/pipelines/${p.name}`, headers: { 'content-type': 'application/yaml', 'if-match': yaml.headers.etag as string }, payload: edited });
    expect(put.statusCode, put.body).toBe(200);
    expect((await f.inject({ method: 'GET', url: `/pipelines/${p.name}`, headers: { accept: 'text/yaml' } })).body).toBe(edited);
  });

  it('returns a file that failed to load as it is, and 404s an unknown name', async () => {
    const p = standard();
    const bad = `name: ${p.name}\nsource:\n  stream: ${p.stream}\nsink:\n  type: nosuch\n`;
    const f = await start({ pipelines: { [p.name]: bad }, allowRejected: true });
    const res = await f.inject({ method: 'GET', url: `/pipelines/${p.name}`, headers: { accept: 'application/yaml' } });
    expect(res.statusCode).toBe(200);
    expect(res.body).toBe(bad);
    expect(res.headers.etag).toBe(`"${sha256(bad)}"`);
    expect((await f.inject({ method: 'GET', url: `/pipelines/${key()}`, headers: { accept: 'application/yaml' } })).statusCode).toBe(404);
  });
});

describe('DELETE /pipelines/:name', () => {
  it('needs the current hash in If-Match (428 without, 409 stale), then removes the file and stops the pipeline; its group stays', async () => {
    const p = standard();
    const text = pipelineYaml(p);
    const f = await start({ pipelines: { [p.name]: text } });
    const file = join(f.pipelinesDir, `${p.name}.yaml`);
    await publish(f.client, p.stream, [ping(1)]);
    await waitFor(async () => (await f.client.xlen(p.out)) === 1, 'the pipeline running');

    const none = await f.inject({ method: 'DELETE', url: `/pipelines/${p.name}` });
    expect(none.statusCode).toBe(428);
    expect(JSON.parse(none.body)).toMatchObject({ error: 'precondition_required', message: expect.stringContaining(sha256(text)) });
    const stale = await f.inject({ method: 'DELETE', url: `/pipelines/${p.name}`, headers: { 'if-match': `"${sha256('older')}"` } });
    expect(stale.statusCode).toBe(409);
    expect(await exists(file)).toBe(true);
    expect(f.engine.handles.has(p.name)).toBe(true);

    const res = await f.inject({ method: 'DELETE', url: `/pipelines/${p.name}`, headers: { 'if-match': `"${sha256(text)}"` } });
    expect(res.statusCode, res.body).toBe(200);
    expect(JSON.parse(res.body)).toMatchObject({ name: p.name, change: 'removed' });
    expect(await exists(file)).toBe(false);
    expect(f.engine.handles.has(p.name)).toBe(false);
    expect((await f.inject({ method: 'GET', url: `/pipelines/${p.name}` })).statusCode).toBe(404);
    // Stopped: what comes now is not read; the group is kept for a pipeline put back later.
    await publish(f.client, p.stream, [ping(2)]);
    expect((await groupsOf(f.client, p.stream)).find((g) => g.name === p.name)).toMatchObject({ lag: 1 });
    expect(await f.client.xlen(p.out)).toBe(1);
    expect((await f.inject({ method: 'DELETE', url: `/pipelines/${p.name}`, headers: { 'if-match': `"${sha256(text)}"` } })).statusCode).toBe(404);
  });

  it('deletes a file that failed to load', async () => {
    const p = standard();
    const bad = `name: ${p.name}\nsource:\n  stream: ${p.stream}\nsink:\n  type: nosuch\n`;
    const f = await start({ pipelines: { [p.name]: bad }, allowRejected: true });
    const res = await f.inject({ method: 'DELETE', url: `/pipelines/${p.name}`, headers: { 'if-match': sha256(bad) } });
    expect(res.statusCode, res.body).toBe(200);
    expect(f.engine.rejected.size).toBe(0);
    expect((await f.inject({ method: 'GET', url: '/pipelines' })).json()).toEqual({ pipelines: [] });
  });

  it('is refused to a page of another site (Origin), as every state-changing route is', async () => {
    const p = standard();
    const text = pipelineYaml(p);
    const f = await start({ pipelines: { [p.name]: text } });
    const res = await f.inject({ method: 'DELETE', url: `/pipelines/${p.name}`, headers: { origin: 'https://attacker.example', 'if-match': sha256(text) } });
    expect(res.statusCode).toBe(403);
    expect(JSON.parse(res.body)).toMatchObject({ error: 'cross_site_request' });
    expect(await exists(join(f.pipelinesDir, `${p.name}.yaml`))).toBe(true);
    expect(f.engine.handles.has(p.name)).toBe(true);
  });
});

describe('YAML wherever a pipeline is sent', () => {
  it('POST /validate takes the YAML itself (?file= names it) as well as JSON { yaml }', async () => {
    const f = await start();
    const p = standard();
    const ok = await f.inject({ method: 'POST', url: '/validate', headers: { 'content-type': 'application/yaml' }, payload: pipelineYaml(p) });
    expect(ok.statusCode, ok.body).toBe(200);
    expect(JSON.parse(ok.body)).toEqual({ valid: true, name: p.name, diagnostics: [], warnings: [] });
    const bad = await f.inject({ method: 'POST', url: '/validate?file=mine.yaml', headers: { 'content-type': 'application/x-yaml' }, payload: 'source:\n  stream: s\nsink:\n  type: nosuch\n' });
    expect(JSON.parse(bad.body)).toEqual({ valid: false, diagnostics: [{ file: 'mine.yaml', line: 4, col: 9, message: expect.stringContaining("unknown sink type 'nosuch'") }], warnings: [] });
  });

  it('POST /pipelines/:name/dry-run takes the edited YAML itself, run on the slice the query names', async () => {
    const p = standard();
    const f = await start({ pipelines: { [p.name]: pipelineYaml(p) } });
    await publish(f.client, p.stream, [ping(1), ping(2), ping(3)]);
    const res = await f.inject({
      method: 'POST', url: `/pipelines/${p.name}/dry-run?count=2`, headers: { 'content-type': 'application/yaml' },
      payload: pipelineYaml({ ...p, version: 9 }),
    });
    expect(res.statusCode, res.body).toBe(200);
    expect(JSON.parse(res.body).results.map((r: { sinks: unknown }) => r.sinks)).toEqual([{ publish: { n: 2, version: 9 } }, { publish: { n: 3, version: 9 } }]);
  });

  it('PUT takes JSON { yaml } as well as the YAML itself', async () => {
    const f = await start();
    const p = standard();
    const res = await f.inject({ method: 'PUT', url: `/pipelines/${p.name}`, payload: { yaml: pipelineYaml(p) } });
    expect(res.statusCode, res.body).toBe(201);
    expect(await readFile(join(f.pipelinesDir, `${p.name}.yaml`), 'utf8')).toBe(pipelineYaml(p));
  });
});

describe('415 says what a route takes', () => {
  it('a PUT without Content-Type, or with one the API does not read', async () => {
    const f = await start();
    const p = standard();
    for (const headers of [{}, { 'content-type': 'application/octet-stream' }]) {
      const res = await f.inject({ method: 'PUT', url: `/pipelines/${p.name}`, headers, payload: Buffer.from(pipelineYaml(p)) });
      expect(res.statusCode, res.body).toBe(415);
      const body = JSON.parse(res.body);
      expect(body).toMatchObject({ error: 'unsupported_media_type', accepts: ['application/json', 'application/yaml'] });
      expect(body.message).toContain('PUT /pipelines/:name takes application/json or application/yaml');
      expect(hasStackTrace(res.body)).toBe(false);
    }
  });

  it('YAML sent to a route that takes only JSON', async () => {
    const f = await start();
    const res = await f.inject({ method: 'POST', url: `/events/${key()}`, headers: { 'content-type': 'application/yaml' }, payload: 'event: ping\n' });
    expect(res.statusCode, res.body).toBe(415);
    expect(JSON.parse(res.body)).toMatchObject({ error: 'unsupported_media_type', accepts: ['application/json'], message: expect.stringContaining("got 'application/yaml'") });
  });
});

describe('GET /', () => {
  it('points to the API reference, the console and the main routes', async () => {
    const f = await start();
    const res = await f.inject({ method: 'GET', url: '/' });
    expect(res.statusCode).toBe(200);
    const body = JSON.parse(res.body);
    expect(body).toMatchObject({ docs: '/docs', openapi: '/docs/json', console: '/ui/', routes: { pipelines: '/pipelines' } });
    for (const path of [body.docs, body.openapi, body.console, body.routes.pipelines, body.routes.health]) {
      expect((await f.inject({ method: 'GET', url: path })).statusCode, path).toBe(200);
    }
  });
});
