import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { key, metricValue, ping, pipelineYaml, useEngines, type EngineFixture } from '../../helpers/engine.ts';

// Issue #10, item 9: `${VAR}` in YAML sent over HTTP (PUT, dry-run, /validate) must not read the
// engine's environment; only the variables of SYNAPSE_ADMIN_ENV_ALLOW.

const { start } = useEngines();

const SECRET_VAR = `SYNAPSE_TEST_SECRET_${key().replace(/-/g, '_').toUpperCase()}`;
const ALLOWED_VAR = `SYNAPSE_TEST_ALLOWED_${key().replace(/-/g, '_').toUpperCase()}`;
const SECRET = `s3cr3t-${key()}`;

beforeEach(() => {
  process.env[SECRET_VAR] = SECRET;
  process.env[ALLOWED_VAR] = 'allowed-value';
});
afterEach(() => {
  delete process.env[SECRET_VAR];
  delete process.env[ALLOWED_VAR];
});

function leaky(name: string, ref: string): string {
  return pipelineYaml({ name, stream: key('in'), out: key('out'), validate: false, filter: null, transform: `{ "leak": "${ref}" }` });
}

async function attempts(f: EngineFixture, ref: string) {
  const name = key('p');
  const yaml = leaky(name, ref);
  return {
    validate: await f.inject({ method: 'POST', url: '/validate', payload: { yaml } }),
    dryRun: await f.inject({ method: 'POST', url: `/pipelines/${name}/dry-run`, payload: { yaml, events: [ping(1)] } }),
    put: await f.inject({ method: 'PUT', url: `/pipelines/${name}`, headers: { 'content-type': 'application/yaml' }, payload: yaml }),
    // The same YAML as the body itself (Content-Type: application/yaml).
    validateYaml: await f.inject({ method: 'POST', url: '/validate', headers: { 'content-type': 'application/yaml' }, payload: yaml }),
    dryRunYaml: await f.inject({ method: 'POST', url: `/pipelines/${name}/dry-run`, headers: { 'content-type': 'application/yaml' }, payload: yaml }),
  };
}

describe('${VAR} in YAML sent over HTTP', () => {
  it.each([['${VAR}', (v: string) => `\${${v}}`], ['${VAR:-default}', (v: string) => `\${${v}:-fallback}`]])('%s naming a variable outside the allow-list is refused and never echoed', async (_title, ref) => {
    const f = await start();
    const { validate, dryRun, put, validateYaml, dryRunYaml } = await attempts(f, ref(SECRET_VAR));
    for (const res of [validate, dryRun, put, validateYaml, dryRunYaml]) expect(res.body).not.toContain(SECRET);
    for (const res of [validate, validateYaml]) {
      expect(JSON.parse(res.body)).toMatchObject({ valid: false, diagnostics: [{ message: expect.stringContaining(`environment variable ${SECRET_VAR} is not available to pipeline YAML sent over HTTP`) }] });
    }
    expect(dryRun.statusCode, dryRun.body).toBe(422);
    expect(dryRunYaml.statusCode, dryRunYaml.body).toBe(422);
    expect(put.statusCode, put.body).toBe(422);
    expect(JSON.parse(put.body).message).toContain('SYNAPSE_ADMIN_ENV_ALLOW');
    expect(metricValue(await f.engine.metrics.registry.metrics(), 'synapse_refused_total', { limit: 'admin.yaml_env' })).toBe(5);
  });

  it('a variable of the allow-list is interpolated', async () => {
    const f = await start({ admin: { envAllow: [ALLOWED_VAR] } });
    const { validate, dryRun, put } = await attempts(f, `\${${ALLOWED_VAR}}`);
    expect(JSON.parse(validate.body)).toMatchObject({ valid: true });
    expect(JSON.parse(dryRun.body).results[0]).toMatchObject({ outcome: 'sunk', sinks: { publish: { leak: 'allowed-value' } } });
    expect(put.statusCode, put.body).toBe(201);
  });

  it('files the operator put on disk still read the whole environment', async () => {
    const name = key('p');
    const f = await start({ pipelines: { [name]: leaky(name, `\${${SECRET_VAR}}`) } });
    const dry = await f.inject({ method: 'POST', url: `/pipelines/${name}/dry-run`, payload: { events: [ping(1)] } });
    expect(JSON.parse(dry.body).results[0]).toMatchObject({ outcome: 'sunk' });
  });
});
