import { execFileSync } from 'node:child_process';
import { mkdtemp, rm, symlink, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { key, ping, pipelineYaml, useEngines, type EngineFixture } from '../../helpers/engine.ts';

// Issue #10, item 1: a pipeline's `validate.schema` may name a file, and YAML sent over HTTP
// (PUT, dry-run, /validate) must not read, probe or register files outside the schema and
// pipeline directories.

const { start } = useEngines();

let outside: string;
const OUTSIDE_ID = 'https://synapse.test/security/outside.json';
const SIDE_ID = 'https://synapse.test/security/side.json';

beforeAll(async () => {
  outside = await mkdtemp(join(tmpdir(), 'synapse-outside-'));
  await writeFile(join(outside, 'outside.json'), JSON.stringify({ $id: OUTSIDE_ID, type: 'object' }));
});
afterAll(async () => {
  await rm(outside, { recursive: true, force: true });
});

/** A pipeline YAML validating with `schema`, as a string. */
function yamlWith(schema: string, name = key('p')): string {
  return [`name: ${name}`, 'source:', `  stream: ${key('in')}`, 'validate:', `  schema: ${JSON.stringify(schema)}`, 'sink: { type: log }', ''].join('\n');
}

async function validate(f: EngineFixture, yaml: string) {
  const res = await f.inject({ method: 'POST', url: '/validate', payload: { yaml } });
  expect(res.statusCode, res.body).toBe(200);
  return JSON.parse(res.body) as { valid: boolean; diagnostics: { message: string }[] };
}

describe('validate.schema as a file path, in YAML sent over HTTP', () => {
  it('files outside the schema and pipeline directories get one answer, whatever they are', async () => {
    const f = await start();
    const probes = ['/etc/shadow', '/root', '/nonexistent/x.json', '/etc/passwd', join(outside, 'outside.json'), '../../../../etc/hostname'];
    const answers = new Set<string>();
    for (const path of probes) {
      const body = await validate(f, yamlWith(path));
      expect(body.valid, path).toBe(false);
      expect(body.diagnostics).toHaveLength(1);
      answers.add(body.diagnostics[0]!.message.replace(path, 'PATH'));
    }
    expect([...answers]).toEqual([expect.stringContaining("unknown schema 'PATH': not a $id in the schema directory nor a file in the schema or pipeline directory")]);
    expect(f.engine.loadContext.schemas.has(OUTSIDE_ID)).toBe(false);
  });

  it('PUT of a pipeline naming a file outside is refused, and nothing is written', async () => {
    const f = await start();
    const name = key('p');
    const res = await f.inject({ method: 'PUT', url: `/pipelines/${name}`, headers: { 'content-type': 'application/yaml' }, payload: yamlWith(join(outside, 'outside.json'), name) });
    expect(res.statusCode, res.body).toBe(422);
    expect(JSON.parse(res.body).message).toContain('not a $id in the schema directory nor a file in the schema or pipeline directory');
    expect(f.engine.handles.has(name)).toBe(false);
    expect(f.engine.loadContext.schemas.has(OUTSIDE_ID)).toBe(false);
  });

  it('a symbolic link inside the pipeline directory does not lead outside it', async () => {
    const f = await start();
    await symlink(join(outside, 'outside.json'), join(f.pipelinesDir, 'link.json'));
    // A dry-run compiles as the file pipelines/NAME.yaml: ./link.json is beside it.
    const name = key('p');
    const res = await f.inject({ method: 'POST', url: `/pipelines/${name}/dry-run`, payload: { yaml: yamlWith('./link.json', name), events: [ping(1)] } });
    expect(res.statusCode, res.body).toBe(422);
    expect(JSON.parse(res.body).message).toContain("unknown schema './link.json'");
    expect(f.engine.loadContext.schemas.has(OUTSIDE_ID)).toBe(false);
  });

  it('a device or FIFO is refused without being read', async () => {
    const f = await start();
    await symlink('/dev/zero', join(f.schemasDir, 'zero.json'));
    execFileSync('mkfifo', [join(f.pipelinesDir, 'fifo.json')]);
    // The link leads outside the directories: the usual answer.
    expect((await validate(f, yamlWith('../schemas/zero.json'))).diagnostics[0]!.message).toContain("unknown schema '../schemas/zero.json'");
    // A FIFO inside them: opened without waiting for a writer, and refused.
    const body = await validate(f, yamlWith('./fifo.json'));
    expect(body.valid).toBe(false);
    expect(body.diagnostics[0]!.message).toContain('not a regular file');
  });

  it('a file over the size limit is refused', async () => {
    const f = await start();
    await writeFile(join(f.pipelinesDir, 'big.json'), `{"$id": "https://synapse.test/big.json", "description": "${'x'.repeat(1024 * 1024)}"}`);
    const body = await validate(f, yamlWith('./big.json'));
    expect(body.valid).toBe(false);
    expect(body.diagnostics[0]!.message).toContain('configuration files are limited to 1 MiB');
  });

  it('a schema file inside the pipeline directory validates, but never joins the running registry', async () => {
    const f = await start({ admin: { publishStreams: ['test-*'] } });
    await writeFile(join(f.pipelinesDir, 'side.json'), JSON.stringify({
      $schema: 'https://json-schema.org/draft/2020-12/schema', $id: SIDE_ID, type: 'object', required: ['event'],
      properties: { event: { const: 'side-event' } },
    }));
    expect((await validate(f, yamlWith('./side.json'))).valid).toBe(true);
    const name = key('p');
    const dry = await f.inject({ method: 'POST', url: `/pipelines/${name}/dry-run`, payload: { yaml: yamlWith('./side.json', name), events: [{ event: 'side-event' }, { event: 'other' }] } });
    expect(dry.statusCode, dry.body).toBe(200);
    expect(JSON.parse(dry.body).summary).toMatchObject({ sunk: 1, dlq: 1 });

    expect(f.engine.loadContext.schemas.has(SIDE_ID)).toBe(false);
    // POST /events chooses schemas from the registry: the side schema does not claim its type.
    const publish = await f.inject({ method: 'POST', url: `/events/${key('s')}`, payload: { event: 'side-event' } });
    expect(publish.statusCode, publish.body).toBe(422);
    // The same file, validated twice, is no duplicate $id.
    expect((await validate(f, yamlWith('./side.json'))).valid).toBe(true);
  });

  it('a pipeline on disk still names a schema file beside it', async () => {
    const stream = key('in');
    const out = key('out');
    const name = key('p');
    const f = await start({
      pipelines: { [name]: pipelineYaml({ name, stream, out }).replace(/schema: .*/, 'schema: ../schemas/ping.json') },
    });
    expect(f.engine.handles.get(name)?.pipeline.validate?.schemaId).toBe('https://synapse.test/admin/ping.json');
    const dry = await f.inject({ method: 'POST', url: `/pipelines/${name}/dry-run`, payload: { events: [ping(1), { event: 'ping' }] } });
    expect(JSON.parse(dry.body).summary).toMatchObject({ sunk: 1, dlq: 1 });
  });
});
