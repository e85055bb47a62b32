import { execFile } from 'node:child_process';
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { promisify } from 'node:util';
import { Ajv, type ValidateFunction } from 'ajv';
import { parse } from 'yaml';
import { describe, expect, it } from 'vitest';
import { formatSchema, pipelineEditorSchema, testEditorSchema } from '../../engine/config/editor-schema.ts';
import { builtinSinks } from '../../plugins/sinks/index.ts';

// The committed copies the shipped pipelines point at (their `# yaml-language-server` modeline),
// and what `synapse schema` prints.
const ROOT = resolve(import.meta.dirname, '../..');
const PIPELINE_SCHEMA = join(ROOT, 'editor/pipeline.schema.json');
const TEST_SCHEMA = join(ROOT, 'editor/pipeline-test.schema.json');
const REGENERATE = 'stale: run `npm run editor-schemas` and commit editor/';

function synapse(args: string[]): Promise<{ stdout: string }> {
  const env = Object.fromEntries(Object.entries(process.env).filter(([k]) => !k.startsWith('SYNAPSE_')));
  return promisify(execFile)(process.execPath, [join(ROOT, 'bin/synapse.mjs'), ...args], { cwd: ROOT, env });
}

/** A draft-07 validator, as yaml-language-server reads the schema (ajv's default dialect is draft-07). */
function draft07(file: string): ValidateFunction {
  return new Ajv({ allErrors: true, strict: false }).compile(JSON.parse(readFileSync(file, 'utf8')));
}

const shipped = readdirSync(join(ROOT, 'pipelines')).filter((f) => /\.ya?ml$/.test(f)).sort();

describe('the editor schemas in editor/', () => {
  it('are what the loader schemas and the built-in sinks generate', () => {
    expect(readFileSync(PIPELINE_SCHEMA, 'utf8'), REGENERATE).toBe(formatSchema(pipelineEditorSchema(builtinSinks)));
    expect(readFileSync(TEST_SCHEMA, 'utf8'), REGENERATE).toBe(formatSchema(testEditorSchema()));
  });

  it('are what `synapse schema pipeline` and `synapse schema test` print', async () => {
    expect((await synapse(['schema', 'pipeline'])).stdout).toBe(readFileSync(PIPELINE_SCHEMA, 'utf8'));
    expect((await synapse(['schema', 'test'])).stdout).toBe(readFileSync(TEST_SCHEMA, 'utf8'));
  });

  it('every shipped pipeline and test file names its schema in a modeline, and conforms to it', () => {
    expect(shipped.length).toBeGreaterThan(10);
    const validators = { pipeline: draft07(PIPELINE_SCHEMA), test: draft07(TEST_SCHEMA) };
    for (const file of shipped) {
      const text = readFileSync(join(ROOT, 'pipelines', file), 'utf8');
      const kind = file.endsWith('.test.yaml') ? 'test' : 'pipeline';
      const modeline = /^# yaml-language-server: \$schema=(\S+)$/m.exec(text);
      expect(modeline?.[1], file).toBe(kind === 'test' ? '../editor/pipeline-test.schema.json' : '../editor/pipeline.schema.json');
      expect(existsSync(resolve(dirname(join(ROOT, 'pipelines', file)), modeline![1]!))).toBe(true);
      const validate = validators[kind];
      expect(validate(parse(text)), `${file}: ${JSON.stringify(validate.errors)}`).toBe(true);
    }
  });

  it("checks a sink's `with:` against the configSchema of its `type`", () => {
    const validate = draft07(PIPELINE_SCHEMA);
    const pipeline = (sink: unknown) => ({ source: { stream: 's' }, sink });
    expect(validate(pipeline({ type: 'http', with: { url: 'https://example.com/hook', timeout_ms: 500 } }))).toBe(true);
    expect(validate(pipeline({ type: 'http', with: { timeout_ms: 500 } }))).toBe(false);
    expect(validate.errors).toContainEqual(expect.objectContaining({ instancePath: '/sink/with', params: { missingProperty: 'url' } }));
    expect(validate(pipeline({ type: 'http' }))).toBe(false);
    expect(validate(pipeline({ type: 'log', with: { levle: 'warn' } }))).toBe(false);
    expect(validate.errors).toContainEqual(expect.objectContaining({ instancePath: '/sink/with', params: { additionalProperty: 'levle' } }));
    expect(validate(pipeline({ type: 'carrier-pigeon' }))).toBe(false);
    expect(validate({ source: { stream: 's' }, sinks: [{ type: 'log' }, { type: 'http', with: {} }] })).toBe(false);
    expect(validate.errors).toContainEqual(expect.objectContaining({ instancePath: '/sinks/1/with' }));
  });

  it('accepts ${VAR} where the loader interpolates a number, a boolean or an enum, and nothing else there', () => {
    const validate = draft07(PIPELINE_SCHEMA);
    expect(validate({ enabled: '${ON:-true}', source: { stream: 's', batch: '${BATCH:-100}', codec: '${CODEC}' }, sink: { type: 'log' } })).toBe(true);
    expect(validate({ source: { stream: 's', batch: 'many' }, sink: { type: 'log' } })).toBe(false);
    expect(validate({ source: { stream: 's', batch: 0 }, sink: { type: 'log' } })).toBe(false);
  });

  it('describe every key for hover, with the loader defaults', () => {
    const schema = JSON.parse(readFileSync(PIPELINE_SCHEMA, 'utf8'));
    const undescribed: string[] = [];
    const walk = (node: any, path: string) => {
      if (!node || typeof node !== 'object') return;
      for (const [key, sub] of Object.entries<any>(node.properties ?? {})) {
        if (typeof sub.description !== 'string' && !sub.$ref) undescribed.push(`${path}.${key}`);
        walk(sub, `${path}.${key}`);
      }
      for (const key of ['allOf', 'anyOf']) for (const sub of node[key] ?? []) walk(sub.then ?? sub, path);
      if (node.items) walk(node.items, `${path}[]`);
    };
    walk(schema, '');
    expect(undescribed).toEqual([]);
    expect(schema.properties.source.properties.batch).toMatchObject({ default: 100, description: expect.stringContaining('Default: 100') });
    expect(schema.properties.retry.properties.attempts.default).toBe(3);
  });
});

describe("the loader's own schemas (compiled without a meta-schema check, to start fast)", () => {
  it('are valid JSON Schema 2020-12: the pipeline file, the test file and every built-in sink configSchema', async () => {
    const { Ajv2020 } = await import('ajv/dist/2020.js');
    const { pipelineFileSchema } = await import('../../engine/config/pipeline-file-schema.ts');
    const { testFileSchema } = await import('../../engine/testing/test-file-schema.ts');
    const ajv = new Ajv2020({ strict: false });
    for (const [name, schema] of [['pipeline file', pipelineFileSchema], ['test file', testFileSchema], ...builtinSinks.map((s) => [s.name, s.configSchema] as const)] as const) {
      expect(ajv.validateSchema(schema as object), `${name}: ${JSON.stringify(ajv.errors)}`).toBe(true);
    }
    // and the check does catch a broken one
    expect(ajv.validateSchema({ type: 'objekt' })).toBe(false);
  });
});
