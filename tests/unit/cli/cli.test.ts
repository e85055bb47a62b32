import { execFile } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { mkdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { copyCatalog } from '../../../scripts/catalog.ts';
import { tempDirs } from '../support/temp-dir.ts';

// The real `synapse` bin, run as a child process from the repository root so that paths print
// relative to it (tests/fixtures/...), as a user running it from a checkout would see them.
const ROOT = join(import.meta.dirname, '../../..');
const BIN = join(ROOT, 'bin/synapse.mjs');
const FIXTURES = 'tests/fixtures/cli';
const SCHEMAS = 'tests/fixtures/schemas';
// Generous for a busy machine, but a hang still fails.
const CLI_TIMEOUT = 20_000;

const dirs = tempDirs('synapse-cli-');
afterAll(() => dirs.cleanup());

interface CliResult {
  code: number;
  stdout: string;
  stderr: string;
}

function synapse(args: string[], opts: { stdin?: string; timeoutMs?: number } = {}): Promise<CliResult> {
  // Nothing from the caller's environment may steer the CLI (SYNAPSE_SCHEMAS, SYNAPSE_PLUGINS, ...).
  const env: NodeJS.ProcessEnv = Object.fromEntries(Object.entries(process.env).filter(([k]) => !k.startsWith('SYNAPSE_') && k !== 'REDIS_URL'));
  return new Promise((resolve, reject) => {
    const child = execFile(process.execPath, [BIN, ...args], { cwd: ROOT, env: { ...env, NO_COLOR: '1' }, timeout: (opts.timeoutMs ?? CLI_TIMEOUT) - 2_000 }, (error, stdout, stderr) => {
      if (error && typeof error.code !== 'number') {
        reject(new Error(`synapse ${args.join(' ')} did not exit normally (${error.signal ?? error.code ?? error.message})\n${stderr}`));
        return;
      }
      resolve({ code: error ? (error.code as number) : 0, stdout, stderr });
    });
    if (opts.stdin !== undefined) child.stdin!.end(opts.stdin);
    else child.stdin!.end();
  });
}

const lines = (text: string) => text.replace(/\n$/, '').split('\n');

describe('synapse validate', () => {
  it('a good directory: no errors, exit 0', async () => {
    const r = await synapse(['validate', `${FIXTURES}/good`, '--schemas', SCHEMAS]);
    expect(r.stderr).toBe('');
    expect(lines(r.stdout)).toEqual(['2 pipeline(s), 2 test file(s), 1 schema(s): 0 error(s)']);
    expect(r.code).toBe(0);
  }, CLI_TIMEOUT);

  it('a bad directory: every problem as FILE:LINE:COL, exit 1', async () => {
    const r = await synapse(['validate', `${FIXTURES}/bad`, '--schemas', SCHEMAS]);
    expect(lines(r.stdout)).toEqual([
      `${FIXTURES}/bad/broken.yaml:4:3 unknown key 'grop' in 'source' (did you mean 'group'?)`,
      `${FIXTURES}/bad/expressions.yaml:3:17 filter: invalid JSONata: The symbol "=" cannot be used as a unary operator`,
      `${FIXTURES}/bad/expressions.yaml:6:9 publish sink 'with' is missing required key 'stream'`,
      `${FIXTURES}/bad/expressions.yaml:6:11 unknown key 'strem' in publish sink 'with' (did you mean 'stream'?)`,
      `${FIXTURES}/bad/orphan.test.yaml:1:11 no pipeline named 'no-such-pipeline' in ${join(ROOT, FIXTURES, 'bad')}`,
      '2 pipeline(s), 1 test file(s), 1 schema(s): 5 error(s)',
    ]);
    expect(r.code).toBe(1);
  }, CLI_TIMEOUT);

  it('a single file path is validated on its own', async () => {
    const r = await synapse(['validate', `${FIXTURES}/bad/broken.yaml`, '--schemas', SCHEMAS]);
    expect(lines(r.stdout)).toEqual([
      `${FIXTURES}/bad/broken.yaml:4:3 unknown key 'grop' in 'source' (did you mean 'group'?)`,
      '1 pipeline(s), 0 test file(s), 1 schema(s): 1 error(s)',
    ]);
    expect(r.code).toBe(1);
  }, CLI_TIMEOUT);

  it('a broken schema directory is reported too', async () => {
    const schemas = await dirs.make({ 'a.json': '{\n  "$id": "https://x.test/a.json",\n  "requried": []\n}\n' });
    const r = await synapse(['validate', `${FIXTURES}/good`, '--schemas', schemas]);
    expect(r.stdout).toContain(`${join(schemas, 'a.json')}:3:3 invalid schema: strict mode: unknown keyword: "requried"`);
    expect(r.code).toBe(1);
  }, CLI_TIMEOUT);

  it('a schema file named outside the schema directory is checked too', async () => {
    const extra = await dirs.make({ 'b.json': '{\n  "$id": "https://x.test/b.json",\n  "properties": { "a": { "$ref": "https://x.test/missing.json" } }\n}\n' });
    const r = await synapse(['validate', join(extra, 'b.json'), '--schemas', SCHEMAS]);
    expect(r.stdout).toContain(`${join(extra, 'b.json')}:3:34 invalid schema: can't resolve reference https://x.test/missing.json`);
    expect(r.code).toBe(1);
  }, CLI_TIMEOUT);

  it('the catalog\'s pipelines validate', async () => {
    // The catalog's own files (catalog.json), not whatever else a user keeps in pipelines/.
    const catalog = await copyCatalog();
    const r = await synapse(['validate', catalog.pipelines, '--schemas', catalog.schemas], { timeoutMs: 3 * CLI_TIMEOUT }).finally(() => catalog.remove());
    expect(r.stderr).toBe('');
    expect(lines(r.stdout).at(-1)).toMatch(/^\d+ pipeline\(s\), \d+ test file\(s\), \d+ schema\(s\): 0 error\(s\)$/);
    expect(r.code).toBe(0);
  }, 3 * CLI_TIMEOUT); // the whole catalog, on a busy two-core machine
});

describe('synapse test', () => {
  it('a passing fixture: every case ticked, last line "N passed, 0 failed", exit 0', async () => {
    const r = await synapse(['test', `${FIXTURES}/good`, '--schemas', SCHEMAS]);
    const out = lines(r.stdout);
    expect(out.filter((l) => l.startsWith('  ✓ '))).toEqual([
      '  ✓ a placed order is confirmed',
      '  ✓ other events are filtered',
      '  ✓ an event without an order id goes to the DLQ',
      '  ✓ a payload that is not JSON goes to the DLQ at decode',
      '  ✓ big orders go to both sinks, others only to the audit log',
    ]);
    expect(out.at(-1)).toBe('5 passed, 0 failed');
    expect(r.code).toBe(0);
  }, CLI_TIMEOUT);

  it('a fixture with one failing case: a readable diff, last line "… 1 failed", exit 1', async () => {
    const r = await synapse(['test', `${FIXTURES}/failing`, '--schemas', SCHEMAS]);
    const out = lines(r.stdout);
    expect(out.filter((l) => /^ {2}[✓✗] /.test(l))).toEqual([
      '  ✓ a placed order is confirmed',
      '  ✗ the title is expected to say shipped (it does not)',
      '  ✓ other events are filtered',
    ]);
    // The diff: what was expected (-) against what reached the sink (+), in context.
    const failure = out.indexOf('  ✗ the title is expected to say shipped (it does not)');
    const diff = out.slice(failure + 1, out.indexOf('  ✓ other events are filtered'));
    expect(diff.map((l) => l.trimEnd())).toEqual([
      '      sink publish: what reached it differs (- expected, + actual)',
      '        [',
      '          {',
      '            "userId": "u2",',
      '      -     "title": "Order o2 shipped",',
      '      +     "title": "Order o2 confirmed",',
      '            "amount": 3',
      '          }',
      '        ]',
    ]);
    expect(out.at(-1)).toBe('2 passed, 1 failed');
    expect(r.code).toBe(1);
  }, CLI_TIMEOUT);

  it('--junit FILE also writes the run as JUnit XML (its directory created), with the counts of the last line', async () => {
    const dir = await dirs.make();
    const report = join(dir, 'reports', 'synapse.xml');
    const r = await synapse(['test', `${FIXTURES}/failing`, `${FIXTURES}/bad/orphan.test.yaml`, '--schemas', SCHEMAS, '--junit', report, '--fuzz', '5', '--seed', '1']);
    expect(r.code).toBe(1);
    const xml = readFileSync(report, 'utf8');
    // 3 cases, a file that could not load, and the fuzzed pipeline; the last line counts the same.
    expect(lines(r.stdout).at(-1)).toBe('3 passed, 2 failed');
    expect(xml).toMatch(/<testsuites name="synapse test" tests="5" failures="2" skipped="0" time="\d+\.\d{3}">/);
    expect(xml).toMatch(new RegExp(`<testsuite name="${FIXTURES}/failing/orders.test.yaml \\(pipeline orders\\)" tests="3" failures="1" skipped="0" time="\\d+\\.\\d{3}">`));
    expect(xml).toMatch(new RegExp(`<testcase classname="${FIXTURES}/failing/orders.test.yaml" name="the title is expected to say shipped \\(it does not\\)" time="\\d+\\.\\d{3}">\n      <failure message="sink publish: what reached it differs \\(- expected, \\+ actual\\)">`));
    expect(xml).toContain('-     "title": "Order o2 shipped",\n+     "title": "Order o2 confirmed",');
    // A file that could not run: its errors in its cases' failures (the report is read on its own).
    expect(xml).toContain(`<testcase classname="${FIXTURES}/bad/orphan.test.yaml" name="never runs" time="0.000">\n      <failure message="${FIXTURES}/bad/orphan.test.yaml:1:11 no pipeline named 'no-such-pipeline'`);
    expect(xml).toMatch(/<testsuite name="fuzz \(--fuzz 5 --seed 1\)" tests="1" failures="0" skipped="0" time="\d+\.\d{3}">/);
  }, CLI_TIMEOUT);

  it('--junit: a report that cannot be written is said before anything runs (exit 2); a run without test files writes an empty one', async () => {
    const dir = await dirs.make();
    const r = await synapse(['test', `${FIXTURES}/good`, '--schemas', SCHEMAS, '--junit', dir]);
    expect(r.code).toBe(2);
    expect(r.stdout).toBe('');
    expect(r.stderr).toBe(`--junit: cannot write the report to '${dir}': EISDIR: illegal operation on a directory, open '${dir}'\n`);
    const empty = await synapse(['test', dir, '--junit', join(dir, 'empty.xml')]);
    expect(empty.code).toBe(1);
    expect(readFileSync(join(dir, 'empty.xml'), 'utf8')).toContain('<testsuites name="synapse test" tests="0" failures="0" skipped="0" time="0.000">');
    const unnamed = await synapse(['test', `${FIXTURES}/good`, '--schemas', SCHEMAS, '--junit', '']);
    expect(unnamed.code).toBe(2);
    expect(unnamed.stderr).toBe("--junit: cannot write the report to '': no file named\n");
  }, CLI_TIMEOUT);

  it('a test file naming a missing pipeline fails with FILE:LINE:COL, exit 1', async () => {
    const r = await synapse(['test', `${FIXTURES}/bad/orphan.test.yaml`, '--schemas', SCHEMAS]);
    expect(r.stdout).toContain(`  ${FIXTURES}/bad/orphan.test.yaml:1:11 no pipeline named 'no-such-pipeline'`);
    expect(lines(r.stdout).at(-1)).toBe('0 passed, 1 failed');
    expect(r.code).toBe(1);
  }, CLI_TIMEOUT);

  it('a directory without test files says so and exits 1', async () => {
    const empty = await dirs.make();
    const r = await synapse(['test', empty]);
    expect(lines(r.stdout)).toEqual([`no test files (*.test.yaml) in ${empty}`, '0 passed, 0 failed']);
    expect(r.code).toBe(1);
  }, CLI_TIMEOUT);

  it('the catalog\'s pipeline tests pass', async () => {
    const catalog = await copyCatalog();
    const r = await synapse(['test', catalog.pipelines, '--schemas', catalog.schemas], { timeoutMs: 3 * CLI_TIMEOUT }).finally(() => catalog.remove());
    expect(r.stderr).toBe('');
    expect(lines(r.stdout).at(-1)).toMatch(/^[1-9]\d* passed, 0 failed$/);
    expect(r.code).toBe(0);
  }, 3 * CLI_TIMEOUT); // the whole catalog, on a busy two-core machine
});

describe('synapse dry-run', () => {
  const expected = [
    { id: '0-1', outcome: 'sunk', sinks: { publish: { userId: 'u1', title: 'Order o1 confirmed', amount: 5 } } },
    { id: '0-2', outcome: 'filtered' },
    { id: '0-3', outcome: 'dlq', stage: 'validate', error: "schema https://synapse.test/schemas/order-event.json: data: must have required property 'orderId'" },
    { id: '0-4', outcome: 'dlq', stage: 'decode', error: expect.stringMatching(/^payload is not valid JSON: /) },
  ];

  it('one JSON line per event of the JSONL input (blank lines skipped), with its outcome', async () => {
    const r = await synapse(['dry-run', `${FIXTURES}/good/orders.yaml`, '--input', `${FIXTURES}/dry-run/orders.jsonl`, '--schemas', SCHEMAS]);
    expect(r.stderr).toBe('');
    expect(lines(r.stdout).map((l) => JSON.parse(l))).toEqual(expected);
    expect(r.code).toBe(0);
  }, CLI_TIMEOUT);

  it('finds a pipeline by name in --pipelines and reads events from stdin', async () => {
    const input = '{"event":"order-placed","data":{"orderId":"o9","userId":"u9","amount":1}}\n';
    const r = await synapse(['dry-run', 'orders', '--pipelines', `${FIXTURES}/good`, '--input', '-', '--schemas', SCHEMAS], { stdin: input });
    expect(lines(r.stdout).map((l) => JSON.parse(l))).toEqual([
      { id: '0-1', outcome: 'sunk', sinks: { publish: { userId: 'u9', title: 'Order o9 confirmed', amount: 1 } } },
    ]);
    expect(r.code).toBe(0);
  }, CLI_TIMEOUT);

  it('routes to several sinks, naming each', async () => {
    const input = '{"kind":"big","data":{"orderId":"o1"}}\n{"kind":"small","data":{"orderId":"o2"}}\n';
    const r = await synapse(['dry-run', `${FIXTURES}/good/router.yaml`, '--input', '-', '--schemas', SCHEMAS], { stdin: input });
    expect(lines(r.stdout).map((l) => JSON.parse(l))).toEqual([
      { id: '0-1', outcome: 'sunk', sinks: { big: { kind: 'big', order: 'o1' }, audit: { kind: 'big', order: 'o1' } } },
      { id: '0-2', outcome: 'sunk', sinks: { audit: { kind: 'small', order: 'o2' } } },
    ]);
  }, CLI_TIMEOUT);

  it('an invalid pipeline: its errors as FILE:LINE:COL on stderr, nothing on stdout, exit 1', async () => {
    const r = await synapse(['dry-run', 'broken', '--pipelines', `${FIXTURES}/bad`, '--input', `${FIXTURES}/dry-run/orders.jsonl`, '--schemas', SCHEMAS]);
    expect(r.stdout).toBe('');
    expect(lines(r.stderr)).toEqual([`${FIXTURES}/bad/broken.yaml:4:3 unknown key 'grop' in 'source' (did you mean 'group'?)`]);
    expect(r.code).toBe(1);
  }, CLI_TIMEOUT);

  it('an unknown pipeline name: one line saying what was looked for, exit 1', async () => {
    const r = await synapse(['dry-run', 'nope', '--pipelines', `${FIXTURES}/good`, '--input', `${FIXTURES}/dry-run/orders.jsonl`, '--schemas', SCHEMAS]);
    expect(lines(r.stderr)).toEqual([
      `no pipeline 'nope': not a file, nor a pipeline name in ${join(ROOT, FIXTURES, 'good')} (found: orders, router)`,
    ]);
    expect(r.code).toBe(1);
  }, CLI_TIMEOUT);
});

describe('synapse --version and synapse schema', () => {
  it('--version (and -V, and after other options) prints the version of package.json, exit 0', async () => {
    const { version } = JSON.parse(readFileSync(join(ROOT, 'package.json'), 'utf8')) as { version: string };
    expect(version).toMatch(/^\d+\.\d+\.\d+/);
    for (const args of [['--version'], ['-V'], ['--schemas', 'schemas', '--version']]) {
      const r = await synapse(args);
      expect(r).toEqual({ code: 0, stdout: `${version}\n`, stderr: '' });
    }
  }, CLI_TIMEOUT);

  it('schema of an unknown kind: one line naming the kinds, exit 1', async () => {
    const r = await synapse(['schema', 'pipelines']);
    expect(r).toEqual({ code: 1, stdout: '', stderr: "synapse schema: unknown schema 'pipelines': pipeline or test\n" });
  }, CLI_TIMEOUT);
});

describe('a TypeScript plugin named by SYNAPSE_PLUGINS', () => {
  it('is refused in one line that says how to load it (the command runs built JavaScript), exit 1', async () => {
    const dir = await dirs.make();
    await mkdir(join(dir, 'sinks'));
    await writeFile(join(dir, 'sinks', 'echo.ts'), "const name: string = 'ts-echo';\nexport default { name, description: 'x', configSchema: { type: 'object' }, create() { return {}; } };\n");
    const r = await new Promise<{ code: number | null; stderr: string }>((resolve) => {
      execFile(process.execPath, [BIN, 'validate', FIXTURES + '/good', '--schemas', SCHEMAS], { cwd: ROOT, env: { ...process.env, SYNAPSE_PLUGINS: dir } }, (error, _stdout, stderr) => {
        resolve({ code: error ? (error.code as number) : 0, stderr });
      });
    });
    expect(r.code).toBe(1);
    expect(r.stderr).toBe(`cannot load the TypeScript plugin ${join(dir, 'sinks', 'echo.ts')}: compile it to JavaScript, or run synapse under a TypeScript loader (node --import tsx node_modules/synapse/bin/synapse.mjs ...)\n`);
  }, CLI_TIMEOUT);
});
