/**
 * `synapse test --coverage`, run as the real bin: on a temp pipeline directory (exactly what is
 * reported) and on the shipped catalog (it runs without errors, every pipeline reported).
 */
import { execFile } from 'node:child_process';
import { readFileSync, readdirSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { tempDirs } from '../support/temp-dir.ts';

const ROOT = join(import.meta.dirname, '../../..');
const BIN = join(ROOT, 'bin/synapse.mjs');
const CLI_TIMEOUT = 60_000;

const dirs = tempDirs('synapse-coverage-cli-');
afterAll(() => dirs.cleanup());

function synapse(args: string[], cwd: string): Promise<{ code: number; stdout: string; stderr: string }> {
  const env = Object.fromEntries(Object.entries(process.env).filter(([k]) => !k.startsWith('SYNAPSE_') && k !== 'REDIS_URL'));
  return new Promise((resolve, reject) => {
    execFile(process.execPath, [BIN, ...args], { cwd, env: { ...env, NO_COLOR: '1' }, timeout: CLI_TIMEOUT - 5_000 }, (error, stdout, stderr) => {
      if (error && typeof error.code !== 'number') reject(new Error(`synapse ${args.join(' ')}: ${error.message}\n${stderr}`));
      else resolve({ code: error ? (error.code as number) : 0, stdout, stderr });
    }).stdin!.end();
  });
}

const PIPELINE = [
  'name: orders',
  'source: { stream: orders }',
  'transform: |',
  '  { "size": total > 100 ? "big" : "small" }',
  'sinks:',
  '  - { type: log, id: all }',
  '  - { type: log, id: big, when: size = "big" }',
  '',
].join('\n');

const TESTS = [
  'pipeline: orders',
  'cases:',
  '  - name: a small order',
  '    input: [ { total: 5 } ]',
  '    expect: { sinks: { all: [ { size: small } ], big: [] } }',
  '',
].join('\n');

describe('synapse test --coverage', () => {
  it('says per pipeline which outcomes and branches the cases reach; the last line is unchanged', async () => {
    const dir = await dirs.make({
      'pipelines/orders.yaml': PIPELINE,
      'pipelines/orders.test.yaml': TESTS,
      'pipelines/untested.yaml': 'name: untested\nsource: { stream: other }\nsink: { type: log }\n',
    });
    const r = await synapse(['test', '--coverage'], dir);
    expect(r.stderr).toBe('');
    expect(r.code).toBe(0);
    const col = PIPELINE.split('\n')[3]!.indexOf('total > 100') + 1;
    expect(r.stdout).toBe([
      'pipelines/orders.test.yaml (pipeline orders)',
      '  ✓ a small order',
      '',
      'coverage: what the test cases reach, per pipeline',
      'pipelines/orders.yaml (pipeline orders)',
      '  outcomes: 2 of 7 reached',
      '    ✓ sunk at all (1 event)',
      '    ✓ when of big: false (1 event)',
      '    ✗ sunk at big',
      '    ✗ dlq at decode',
      '    ✗ dlq at transform',
      '    ✗ when of big: true',
      '    ✗ dlq at sink big (its when failed)',
      '  branches: 1 of 2 taken; not taken:',
      `    pipelines/orders.yaml:4:${col} transform: total > 100 ? → then`,
      'pipelines/untested.yaml (pipeline untested)',
      '  no test file: nothing reached',
      '',
      '1 passed, 0 failed',
      '',
    ].join('\n'));
    // Given one test file, only its pipeline is reported.
    const one = await synapse(['test', '--coverage', 'pipelines/orders.test.yaml'], dir);
    expect(one.code).toBe(0);
    expect(one.stdout).toContain('pipelines/orders.yaml (pipeline orders)');
    expect(one.stdout).not.toContain('untested');
    // Without --coverage, no report.
    const plain = await synapse(['test'], dir);
    expect(plain.stdout).not.toContain('coverage');
    expect(plain.stdout.endsWith('1 passed, 0 failed\n')).toBe(true);
  }, CLI_TIMEOUT);

  it('runs on the shipped catalog: every pipeline reported, nothing fails', async () => {
    const r = await synapse(['test', '--coverage'], ROOT);
    expect(r.stderr).toBe('');
    expect(r.code).toBe(0);
    const names = readdirSync(join(ROOT, 'pipelines')).filter((n) => /\.ya?ml$/.test(n) && !/\.test\.ya?ml$/.test(n));
    const report = r.stdout.slice(r.stdout.indexOf('coverage: what the test cases reach'));
    for (const n of names) expect(report).toContain(`pipelines/${n} (pipeline `);
    expect(report).not.toContain('no test file');
    expect(report).not.toContain('not measured');
    expect(r.stdout).toMatch(/\n\d+ passed, 0 failed\n$/);
  }, CLI_TIMEOUT);

  it('prints for the shipped task-outcomes exactly the report docs/checks.md shows', async () => {
    const r = await synapse(['test', '--coverage', 'pipelines/task-outcomes.test.yaml'], ROOT);
    expect(r.code).toBe(0);
    const docs = readFileSync(join(ROOT, 'docs/checks.md'), 'utf8');
    expect(docs).toContain(`\n\`\`\`\n${r.stdout}\`\`\`\n`);
  }, CLI_TIMEOUT);
});
