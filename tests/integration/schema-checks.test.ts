/**
 * The schema-aware checks where a running engine meets them: the admin API's POST /validate and
 * hot reload both reject a pipeline whose expression reads a field its schema can never have,
 * at the token's FILE:LINE:COL; a rejected edit leaves the running version in place.
 */
import { writeFile } from 'node:fs/promises';
import { describe, expect, it } from 'vitest';
import { key, payloads, publish, sha256, useEngines } from '../helpers/engine.ts';
import { waitFor } from '../helpers/redis.ts';

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
    });
    const good = await f.inject({ method: 'POST', url: '/validate', payload: { yaml: orderPipeline(p, 'customer') } });
    expect(JSON.parse(good.body)).toEqual({ valid: true, name: p.name, diagnostics: [] });
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
