import { readdir, readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { MAX_NESTING_DEPTH, nestingBeyond, SourceDocument } from '../../../engine/config/source-document.ts';
import { ConfigInvalidError } from '../../../engine/errors.ts';
import { REPO_ROOT } from '../../helpers/pipelines.ts';
import { key, useEngines } from '../../helpers/engine.ts';

// Issue #10, item 13: 1 MiB of deeply nested YAML blocked the engine for seconds, then failed with
// "Maximum call stack size exceeded". A nesting limit answers first, with FILE:LINE:COL.

const { start } = useEngines();

function diagnosticsOf(fn: () => unknown) {
  try {
    fn();
  } catch (err) {
    if (err instanceof ConfigInvalidError) return err.diagnostics;
    throw err;
  }
  return undefined;
}

const ONE_MIB = 1024 * 1024;

describe('nesting limit of configuration files', () => {
  it('PUT of 1 MiB of nested flow sequences: 422 pointing where the limit is passed', async () => {
    const f = await start();
    const half = Math.floor((ONE_MIB - 100) / 2);
    const body = `${'['.repeat(half)}${']'.repeat(half)}`;
    const res = await f.inject({ method: 'PUT', url: `/pipelines/${key('p')}`, headers: { 'content-type': 'application/yaml' }, payload: body });
    expect(res.statusCode, res.body.slice(0, 300)).toBe(422);
    expect(JSON.parse(res.body).diagnostics).toEqual([
      { file: expect.stringMatching(/\.yaml$/), line: 1, col: MAX_NESTING_DEPTH + 1, message: expect.stringContaining(`nesting deeper than ${MAX_NESTING_DEPTH} levels`) },
    ]);
  });

  it.each([
    ['flow mappings', `${'{a: '.repeat(200_000)}1${'}'.repeat(200_000)}`, 1, 4 * MAX_NESTING_DEPTH + 1],
    ['compact block sequences', `${'- '.repeat(300_000)}x\n`, 1, 2 * MAX_NESTING_DEPTH + 1],
    ['indented block mappings', Array.from({ length: 3000 }, (_, i) => `${' '.repeat(i)}k:`).join('\n') + ' x\n', MAX_NESTING_DEPTH + 1, MAX_NESTING_DEPTH + 1],
    ['JSON objects', `${'{"a":'.repeat(5000)}1${'}'.repeat(5000)}`, 1, 5 * MAX_NESTING_DEPTH + 1],
  ])('%s: refused with the location of the level past the limit', (_title, text, line, col) => {
    expect(diagnosticsOf(() => SourceDocument.parse('deep.yaml', text))).toEqual([
      { file: 'deep.yaml', line, col, message: expect.stringContaining('SYNAPSE_CONFIG_MAX_DEPTH') },
    ]);
  });

  it('nesting up to the limit parses; brackets in quoted and block scalars and comments do not count', () => {
    const nested = `${'['.repeat(MAX_NESTING_DEPTH - 1)}1${']'.repeat(MAX_NESTING_DEPTH - 1)}`;
    expect(SourceDocument.parse('ok.yaml', `x: ${nested}\n`).value).toBeTruthy();
    const tricky = [
      `a: "${'['.repeat(500)}"`,
      `b: '${'{'.repeat(500)}'`,
      `# ${'['.repeat(500)}`,
      'c: |',
      `  ${'['.repeat(500)}`,
      `  ${'{'.repeat(500)}`,
      `d: it's [not] "a" {problem}`,
      '',
    ].join('\n');
    expect(nestingBeyond(tricky, 10)).toBeUndefined();
    expect((SourceDocument.parse('tricky.yaml', tricky).value as Record<string, string>).d).toBe(`it's [not] "a" {problem}`);
  });

  it('every pipeline, test and schema of the repository is within the limit', async () => {
    for (const dir of ['pipelines', 'schemas']) {
      for (const name of await readdir(join(REPO_ROOT, dir))) {
        const text = await readFile(join(REPO_ROOT, dir, name), 'utf8');
        expect(nestingBeyond(text, 20), `${dir}/${name}`).toBeUndefined();
      }
    }
  });
});
