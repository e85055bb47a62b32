import { readdir } from 'node:fs/promises';
import { describe, expect, it } from 'vitest';
import { key, pipelineYaml, useEngines } from '../../helpers/engine.ts';

// Issue #10, item 16: PUT /pipelines/x.test created a pipeline whose file, x.test.yaml, is a test
// file to every later load: it ran until the next restart, then vanished.

const { start } = useEngines();

describe('PUT /pipelines/:name', () => {
  it.each(['x.test', 'pipeline.v1.test'])('refuses %s: its file would be a test file', async (name) => {
    const f = await start();
    const yaml = pipelineYaml({ name, stream: key('in'), out: key('out') });
    const res = await f.inject({ method: 'PUT', url: `/pipelines/${name}`, headers: { 'content-type': 'application/yaml' }, payload: yaml });
    expect(res.statusCode, res.body).toBe(400);
    expect(JSON.parse(res.body)).toMatchObject({ error: 'bad_name', message: expect.stringContaining('.test') });
    expect(f.engine.handles.has(name)).toBe(false);
    expect(await readdir(f.pipelinesDir)).toEqual([]);
  });

  it('accepts a name with dots that is no test file: written as a pipeline file', async () => {
    const f = await start();
    const name = `${key('p')}.v2`;
    const res = await f.inject({ method: 'PUT', url: `/pipelines/${name}`, headers: { 'content-type': 'application/yaml' }, payload: pipelineYaml({ name, stream: key('in'), out: key('out') }) });
    expect(res.statusCode, res.body).toBe(201);
    expect(await readdir(f.pipelinesDir)).toEqual([`${name}.yaml`]);
  });
});
