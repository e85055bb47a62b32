/**
 * `synapse validate` (and `--strict`) and `synapse test --fuzz N`, run as the real bin on temp
 * pipeline directories: what a user sees of the schema-aware checks.
 */
import { execFile } from 'node:child_process';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { tempDirs } from '../support/temp-dir.ts';

const ROOT = join(import.meta.dirname, '../../..');
const BIN = join(ROOT, 'bin/synapse.mjs');
const CLI_TIMEOUT = 60_000;

const dirs = tempDirs('synapse-checks-cli-');
afterAll(() => dirs.cleanup());

function synapse(args: string[], cwd: string, timeout = CLI_TIMEOUT): Promise<{ code: number; stdout: string; stderr: string }> {
  const env = Object.fromEntries(Object.entries(process.env).filter(([k]) => !k.startsWith('SYNAPSE_') && k !== 'REDIS_URL'));
  return new Promise((resolve, reject) => {
    execFile(process.execPath, [BIN, ...args], { cwd, env: { ...env, NO_COLOR: '1' }, timeout: timeout - 5_000 }, (error, stdout, stderr) => {
      if (error && typeof error.code !== 'number') reject(new Error(`synapse ${args.join(' ')}: ${error.message}\n${stderr}`));
      else resolve({ code: error ? (error.code as number) : 0, stdout, stderr });
    }).stdin!.end();
  });
}

const lines = (text: string) => text.replace(/\n$/, '').split('\n');
/** The 1-based column of `token` in line `line` (1-based) of `text`. */
const colOf = (text: string, line: number, token: string) => text.split('\n')[line - 1]!.indexOf(token) + 1;

const orderSchema = JSON.stringify({
  $schema: 'https://json-schema.org/draft/2020-12/schema',
  $id: 'https://synapse.test/cli/order.json',
  type: 'object',
  required: ['event', 'data'],
  additionalProperties: false,
  properties: {
    event: { const: 'order' },
    data: {
      type: 'object',
      additionalProperties: false,
      required: ['customer', 'total', 'qty'],
      properties: {
        customer: { type: 'string', minLength: 1 },
        total: { type: 'number' },
        qty: { type: 'string' },
      },
    },
  },
}, null, 2);

function pipeline(name: string, transform: string, extra = ''): string {
  return `name: ${name}\nsource: { stream: orders, group: ${name} }\nvalidate: { schema: https://synapse.test/cli/order.json }\ntransform: '${transform}'\nsink: { type: log }\n${extra}`;
}

describe('synapse validate: paths and types against the input schema', () => {
  it('a field that can never exist is an error at FILE:LINE:COL with did-you-mean; exit 1', async () => {
    const yaml = pipeline('orders', '{ "who": data.custmer }', 'filter: data.total.amount > 1\n');
    const dir = await dirs.make({ 'schemas/order.json': orderSchema, 'pipelines/orders.yaml': yaml });
    const r = await synapse(['validate'], dir);
    expect(colOf(yaml, 4, 'custmer')).toBe(27);
    expect(colOf(yaml, 6, 'amount')).toBe(20);
    expect(lines(r.stdout)).toEqual([
      "pipelines/orders.yaml:4:27 transform: field 'custmer' can never exist in 'data' (it allows 'customer', 'total', 'qty'); did you mean 'customer'?",
      "pipelines/orders.yaml:6:20 filter: field 'amount' can never exist: 'data.total' is a number, which has no fields",
      '1 pipeline(s), 0 test file(s), 1 schema(s): 2 error(s)',
    ]);
    expect(r.code).toBe(1);
  }, CLI_TIMEOUT);

  it('a type that can never fit is a warning (exit 0), and an error with --strict (exit 1)', async () => {
    const yaml = pipeline('orders', '{ "who": $uppercase(data.total), "n": data.total * data.qty }');
    const dir = await dirs.make({ 'schemas/order.json': orderSchema, 'pipelines/orders.yaml': yaml });
    expect(colOf(yaml, 4, 'data.total')).toBe(33);
    expect(colOf(yaml, 4, 'data.qty')).toBe(64);
    const plain = await synapse(['validate'], dir);
    expect(lines(plain.stdout)).toEqual([
      "pipelines/orders.yaml:4:33 warning: transform: $uppercase needs a string, but 'data.total' is a number (a run-time error on every event that has it)",
      "pipelines/orders.yaml:4:64 warning: transform: '*' needs numbers, but 'data.qty' is a string (a run-time error on every event that has it)",
      '1 pipeline(s), 0 test file(s), 1 schema(s): 0 error(s), 2 warning(s)',
    ]);
    expect(plain.code).toBe(0);
    const strict = await synapse(['validate', '--strict'], dir);
    expect(lines(strict.stdout)).toEqual([
      "pipelines/orders.yaml:4:33 error: transform: $uppercase needs a string, but 'data.total' is a number (a run-time error on every event that has it)",
      "pipelines/orders.yaml:4:64 error: transform: '*' needs numbers, but 'data.qty' is a string (a run-time error on every event that has it)",
      '1 pipeline(s), 0 test file(s), 1 schema(s): 2 error(s)',
    ]);
    expect(strict.code).toBe(1);
  }, CLI_TIMEOUT);

  it('the shipped catalog passes --strict', async () => {
    const r = await synapse(['validate', '--strict'], ROOT);
    expect(r.stdout).toMatch(/: 0 error\(s\)\n$/);
    expect(r.code).toBe(0);
  }, CLI_TIMEOUT);
});

describe('synapse test --fuzz N', () => {
  it('reports valid events a pipeline dead-letters, with the smallest example and the seed to replay', async () => {
    const dir = await dirs.make({
      'schemas/order.json': orderSchema,
      // $number fails on a qty that is not numeric: the schema allows any string.
      'pipelines/orders.yaml': pipeline('orders', '{ "who": data.customer, "n": $number(data.qty) }'),
      'pipelines/good.yaml': pipeline('good', '{ "who": data.customer, "n": data.total }'),
      'pipelines/ticks.yaml': 'name: ticks\nsource: { schedule: 60s }\nsink: { type: log }\n',
    });
    const r = await synapse(['test', '--fuzz', '50', '--seed', '42'], dir);
    const out = lines(r.stdout);
    expect(out[0]).toBe('fuzz: 50 valid event(s) per pipeline from its input schema, seed 42 (replay: --fuzz 50 --seed 42)');
    expect(out).toContain('pipelines/good.yaml (pipeline good)');
    expect(out).toContain('  ✓ fuzz: 50 valid event(s), none dead-lettered');
    expect(out).toContain('pipelines/ticks.yaml (pipeline ticks)');
    expect(out).toContain('  - not fuzzed: a schedule source: its events are ticks');
    const at = out.indexOf('pipelines/orders.yaml (pipeline orders)');
    expect(out[at + 1]).toMatch(/^ {2}✗ fuzz: \d+ of 50 valid event\(s\) dead-lettered by the pipeline$/);
    expect(out[at + 2]).toMatch(/^ {6}\d+× at transform: Unable to cast value to a number: ".*"$/);
    const example = JSON.parse(out[at + 3]!.replace(/^ {8}smallest: /, '')) as { event: string; data: { qty: string } };
    expect(example.event).toBe('order');
    expect(Number.isFinite(Number(example.data.qty)) && example.data.qty.trim() !== '').toBe(false);
    expect(out[out.length - 1]).toBe('1 passed, 1 failed');
    expect(r.code).toBe(1);

    // The same seed gives the same run.
    const again = await synapse(['test', '--fuzz', '50', '--seed', '42'], dir);
    expect(again.stdout).toBe(r.stdout);
  }, CLI_TIMEOUT);

  it('without --seed a random seed is printed; --fuzz needs a positive count', async () => {
    const dir = await dirs.make({ 'schemas/order.json': orderSchema, 'pipelines/good.yaml': pipeline('good', '{ "who": data.customer }') });
    const r = await synapse(['test', '--fuzz', '5'], dir);
    expect(r.stdout).toMatch(/^fuzz: 5 valid event\(s\) per pipeline from its input schema, seed \d+ \(replay: --fuzz 5 --seed \d+\)\n/);
    expect(lines(r.stdout).at(-1)).toBe('1 passed, 0 failed');
    expect(r.code).toBe(0);
    const bad = await synapse(['test', '--fuzz', '0'], dir);
    expect(bad.stderr).toBe("--fuzz takes a number of events (a positive integer), not '0'\n");
    expect(bad.code).toBe(2);
  }, CLI_TIMEOUT);

  it('the shipped catalog: tests and fuzzing pass', async () => {
    const r = await synapse(['test', '--fuzz', '30', '--seed', '7'], ROOT, 2 * CLI_TIMEOUT);
    expect(r.stdout).not.toMatch(/✗/);
    expect(lines(r.stdout).at(-1)).toMatch(/^\d+ passed, 0 failed$/);
    expect(r.code).toBe(0);
  }, 2 * CLI_TIMEOUT);
});
