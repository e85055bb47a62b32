/**
 * The schema-aware checks where a running engine meets them: the admin API's POST /validate and
 * hot reload both reject a pipeline whose expression reads a field its schema can never have,
 * at the token's FILE:LINE:COL; a rejected edit leaves the running version in place. A type that
 * can never fit is a warning: /validate answers it, and the engine logs it at start and reload.
 */
import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { key, payloads, publish, sha256, useEngines } from '../helpers/engine.ts';
import { spawnEngine, type EngineProcess, type LogLine } from '../helpers/engine-process.ts';
import { startTestRedis, waitFor } from '../helpers/redis.ts';

const { start } = useEngines();

const ORDER_ID = 'https://synapse.test/checks/order.json';
const orderSchema = {
  $schema: 'https://json-schema.org/draft/2020-12/schema',
  $id: ORDER_ID,
  type: 'object',
  required: ['event', 'data'],
  additionalProperties: false,
  properties: {
    event: { type: 'string' },
    data: {
      type: 'object',
      additionalProperties: false,
      properties: { customer: { type: 'string' }, total: { type: 'number' } },
    },
  },
};

/** A pipeline over orders, one key per line; `field` is what the transform reads under data. */
function orderPipeline(p: { name: string; stream: string; out: string }, field: string): string {
  return [
    `name: ${p.name}`,
    'source:',
    `  stream: ${p.stream}`,
    '  start: "0"',
    '  block_ms: 100',
    'validate:',
    `  schema: ${ORDER_ID}`,
    `transform: '{ "who": data.${field} }'`,
    'sink:',
    '  type: publish',
    `  with: { stream: ${p.out} }`,
    '',
  ].join('\n');
}

const typoColumn = (yaml: string) => {
  const lines = yaml.split('\n');
  const line = lines.findIndex((l) => l.startsWith('transform:')) + 1;
  return { line, col: lines[line - 1]!.indexOf('custmer') + 1 };
};

describe('POST /validate', () => {
  it('a field the schema can never have is an error at its token, with did-you-mean', async () => {
    const f = await start({ schemas: { 'order.json': orderSchema } });
    const p = { name: key('orders'), stream: key('in'), out: key('out') };
    const yaml = orderPipeline(p, 'custmer');
    const res = await f.inject({ method: 'POST', url: '/validate', payload: { yaml, file: 'orders.yaml' } });
    expect(res.statusCode).toBe(200);
    const { line, col } = typoColumn(yaml);
    expect(JSON.parse(res.body)).toEqual({
      valid: false,
      diagnostics: [{ file: 'orders.yaml', line, col, message: "transform: field 'custmer' can never exist in 'data' (it allows 'customer', 'total'); did you mean 'customer'?" }],
      warnings: [],
    });
    const good = await f.inject({ method: 'POST', url: '/validate', payload: { yaml: orderPipeline(p, 'customer') } });
    expect(JSON.parse(good.body)).toEqual({ valid: true, name: p.name, diagnostics: [], warnings: [] });
  });

  it('a type that can never fit is valid, with a warning at its token', async () => {
    const f = await start({ schemas: { 'order.json': orderSchema } });
    const p = { name: key('orders'), stream: key('in'), out: key('out') };
    const yaml = upperTotalPipeline(p);
    const res = await f.inject({ method: 'POST', url: '/validate', payload: { yaml, file: 'orders.yaml' } });
    expect(res.statusCode).toBe(200);
    expect(JSON.parse(res.body)).toEqual({
      valid: true, name: p.name, diagnostics: [],
      warnings: [{ file: 'orders.yaml', ...upperColumn(yaml), message: UPPER_WARNING }],
    });
  });
});

const UPPER_WARNING = "transform: $uppercase needs a string, but 'data.total' is a number (a run-time error on every event that has it)";

/** A pipeline whose transform upper-cases the order's total, a number: it loads, with a warning. */
function upperTotalPipeline(p: { name: string; stream: string; out: string }): string {
  return orderPipeline(p, 'customer').replace(`'{ "who": data.customer }'`, `'{ "who": $uppercase(data.total) }'`);
}

const upperColumn = (yaml: string) => {
  const lines = yaml.split('\n');
  const line = lines.findIndex((l) => l.startsWith('transform:')) + 1;
  return { line, col: lines[line - 1]!.indexOf('data.total') + 1 };
};

describe('warnings in the log', () => {
  it('a pipeline that loads with a warning says so at start and at each reload, naming FILE:LINE:COL', async () => {
    const redis = await startTestRedis();
    const root = await mkdtemp(join(tmpdir(), 'synapse-warnings-'));
    const [pipelines, schemas] = [join(root, 'pipelines'), join(root, 'schemas')];
    let engine: EngineProcess | undefined;
    try {
      await mkdir(pipelines);
      await mkdir(schemas);
      await writeFile(join(schemas, 'order.json'), JSON.stringify(orderSchema));
      const p = { name: key('orders'), stream: key('in'), out: key('out') };
      const yaml = upperTotalPipeline(p);
      await writeFile(join(pipelines, 'orders.yaml'), yaml);
      engine = await spawnEngine({ pipelines, schemas, redisUrl: redis.url, consumer: 'warned' });
      const { line, col } = upperColumn(yaml);
      const warned = (l: LogLine) => l.msg === `pipeline loads with a warning: ${join(pipelines, 'orders.yaml')}:${line}:${col} ${UPPER_WARNING}`;
      expect(engine.logs.filter(warned)).toEqual([expect.objectContaining({ pipeline: p.name, level: 40 })]);

      // The watcher starts before the admin API listens.
      await engine.waitForLog((l) => l.msg === 'admin API listening', 'the admin API');
      await writeFile(join(pipelines, 'orders.yaml'), `${yaml}description: edited\n`);
      await engine.waitForLog((l) => l.msg === 'pipeline reloaded', 'the reload');
      expect(engine.logs.filter(warned)).toHaveLength(2);
    } finally {
      await engine?.stop();
      await redis.close();
      await rm(root, { recursive: true, force: true });
    }
  });
});

describe('hot reload', () => {
  it('an edit with a field the schema can never have is refused with the diagnostic; the running version stays', async () => {
    const p = { name: key('orders'), stream: key('in'), out: key('out') };
    const v1 = orderPipeline(p, 'customer');
    const f = await start({ schemas: { 'order.json': orderSchema }, pipelines: { [p.name]: v1 }, watch: true });
    const file = f.engine.handles.get(p.name)!.pipeline.file;

    const typo = orderPipeline(p, 'custmer');
    await writeFile(file, typo);
    const view = await waitFor(async () => {
      const v = JSON.parse((await f.inject({ method: 'GET', url: `/pipelines/${p.name}` })).body);
      return v.lastReloadError && v;
    }, 'the reload error');
    const { line, col } = typoColumn(typo);
    expect(view.lastReloadError).toMatch(new RegExp(`${p.name}\\.yaml:${line}:${col} transform: field 'custmer' can never exist in 'data'.*did you mean 'customer'\\?`));
    expect(view).toMatchObject({ status: 'running', generation: 1, hash: sha256(v1), fileHash: sha256(typo) });

    // Events still go through the version that reads the right field.
    await publish(f.client, p.stream, [{ event: 'order', data: { customer: 'ada', total: 3 } }]);
    await waitFor(async () => (await f.client.xlen(p.out)) >= 1, 'the event to be published');
    expect(await payloads(f.client, p.out)).toEqual([{ who: 'ada' }]);
  });
});
