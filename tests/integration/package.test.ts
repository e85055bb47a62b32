import { execFile, spawn } from 'node:child_process';
import { cpSync, mkdirSync, mkdtempSync, readFileSync, readdirSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, relative, resolve } from 'node:path';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { freePort } from '../../engine/runtime/redis-server.ts';
import { startTestRedis, waitFor, type TestRedis } from '../helpers/redis.ts';

// Synapse as a user gets it: `npm pack` of a copy of the working tree (so the pack's own build
// runs, and dist/ here is left alone for the other suites), the tarball installed with plain npm
// into an empty folder, then used from plain JavaScript: `synapse/publisher` publishing to a real
// Redis, and the installed `synapse` command.
const ROOT = resolve(import.meta.dirname, '../..');
const run = promisify(execFile);
const pkg = JSON.parse(readFileSync(join(ROOT, 'package.json'), 'utf8')) as { name: string; version: string };

/** Working-tree entries that are not part of a clone's sources. */
const NOT_SOURCES = new Set(['node_modules', 'dist', '.git', '.synapse', '.stryker-tmp', 'reports', 'coverage']);

const npmEnv = (): NodeJS.ProcessEnv => ({
  ...Object.fromEntries(Object.entries(process.env).filter(([k]) => !k.startsWith('SYNAPSE_') && !k.startsWith('npm_') && k !== 'REDIS_URL')),
  NO_COLOR: '1',
});

describe('the packed package, installed into an empty folder', () => {
  let work: string;
  let app: string;
  let tarball: string;
  let packed: string[];
  let redis: TestRedis;

  beforeAll(async () => {
    redis = await startTestRedis({ own: true });
    work = mkdtempSync(join(tmpdir(), 'synapse-package-'));
    const clone = join(work, 'clone');
    cpSync(ROOT, clone, { recursive: true, filter: (src) => !NOT_SOURCES.has(relative(ROOT, src).split('/')[0]!) });
    symlinkSync(join(ROOT, 'node_modules'), join(clone, 'node_modules'));
    const { stdout } = await run('npm', ['pack', '--json', '--pack-destination', work], { cwd: clone, env: npmEnv(), maxBuffer: 64 << 20 });
    const [info] = JSON.parse(stdout.slice(stdout.indexOf('['))) as { filename: string; files: { path: string }[] }[];
    tarball = join(work, info!.filename);
    packed = info!.files.map((f) => f.path).sort();

    app = join(work, 'app');
    mkdirSync(app);
    writeFileSync(join(app, 'package.json'), JSON.stringify({ name: 'a-service', private: true, type: 'module' }));
    await run('npm', ['install', tarball, '--prefer-offline', '--no-audit', '--no-fund', '--loglevel=error'], { cwd: app, env: npmEnv(), maxBuffer: 64 << 20 });
  }, 420_000); // about a minute on an idle two-core machine; two and a half under a load of 15

  afterAll(async () => {
    await redis?.close();
    if (work) rmSync(work, { recursive: true, force: true });
  });

  it('ships the built JavaScript, declarations, the console, docs, editor schemas, the monitoring dashboard and alerting rules, and LICENSE, and no tests, bench, CI, scripts, sources or local pipelines', () => {
    for (const f of ['package.json', 'LICENSE', 'README.md', 'bin/synapse.mjs', 'dist/engine/index.js', 'dist/engine/index.d.ts', 'dist/engine/index.js.map',
      'dist/engine/publish/index.js', 'dist/engine/publish/index.d.ts', 'dist/engine/expr/compiler/evaluator.js', 'dist/plugins/sinks/http.js',
      'editor/pipeline.schema.json', 'editor/pipeline-test.schema.json', 'docs/pipelines.md', 'docs/monitoring.md', 'dist/console/index.html',
      'monitoring/grafana/synapse.json', 'monitoring/prometheus/alerts.yml', 'monitoring/prometheus/alerts.test.yml']) {
      expect(packed).toContain(f);
    }
    expect(packed.some((f) => /^dist\/console\/assets\/index-[\w-]+\.js$/.test(f))).toBe(true);
    const outside = packed.filter((f) => !/^(package\.json|LICENSE|README\.md|bin\/synapse\.mjs|dist\/(engine|plugins)\/.*\.(js|d\.ts|map)|dist\/console\/(index\.html|assets\/[\w-]+\.(js|css))|editor\/[^/]+\.json|docs\/[^/]+\.md|docs\/images\/[\w-]+\.png|monitoring\/(grafana\/[^/]+\.json|prometheus\/[^/]+\.yml))$/.test(f));
    expect(outside).toEqual([]);
  });

  it('installs without tsx or TypeScript: the library and the command run plain JavaScript', () => {
    const installed = readdirSync(join(app, 'node_modules'));
    expect(installed).toContain('synapse');
    expect(installed).not.toContain('tsx');
    expect(installed).not.toContain('typescript');
  });

  it("a plain .mjs imports { Publisher } from 'synapse/publisher' and publishes a schema-checked event to Redis, loading no Fastify, BullMQ or admin code", async () => {
    mkdirSync(join(app, 'schemas'), { recursive: true });
    writeFileSync(join(app, 'schemas', 'order-placed.json'), JSON.stringify({
      $id: 'https://example.com/schemas/order-placed.json',
      type: 'object',
      required: ['event', 'source', 'timestamp', 'data'],
      properties: { event: { const: 'order-placed' }, source: { type: 'string' }, timestamp: { type: 'string' }, data: { type: 'object', required: ['orderId'] } },
    }));
    // Every module the process loads, written down by a loader hook (ESM) and from require's cache (CommonJS).
    writeFileSync(join(app, 'hooks.mjs'), `import { appendFileSync } from 'node:fs';
export async function load(url, context, next) { appendFileSync(process.env.LOADED, url + '\\n'); return next(url, context); }
`);
    writeFileSync(join(app, 'record.mjs'), `import { register, createRequire } from 'node:module';
import { appendFileSync } from 'node:fs';
register(new URL('./hooks.mjs', import.meta.url));
const require = createRequire(import.meta.url);
process.on('exit', () => appendFileSync(process.env.LOADED, Object.keys(require.cache).map((f) => 'file://' + f + '\\n').join('')));
`);
    writeFileSync(join(app, 'publish.mjs'), `import { Publisher, EventInvalidError } from 'synapse/publisher';
const publisher = await Publisher.connect({ redis: process.argv[2], schemas: './schemas', source: 'a-service' });
try {
  const id = await publisher.publish('orders', { event: 'order-placed', data: { orderId: 'o-1' } });
  let refused = '';
  try { await publisher.publish('orders', { event: 'order-placed', data: {} }); } catch (err) { refused = err instanceof EventInvalidError ? err.code : String(err); }
  console.log(JSON.stringify({ id, refused }));
} finally {
  await publisher.close();
}
`);
    const loaded = join(app, 'loaded.txt');
    writeFileSync(loaded, '');
    const { stdout } = await run(process.execPath, ['--import', './record.mjs', 'publish.mjs', redis.url], { cwd: app, env: { ...npmEnv(), LOADED: loaded } });
    const { id, refused } = JSON.parse(stdout) as { id: string; refused: string };
    expect(refused).toBe('SYN_EVENT_INVALID');
    const rows = await redis.client().xrange('orders', '-', '+');
    expect(rows.map(([rowId]) => rowId)).toEqual([id]);
    expect(JSON.parse(rows[0]![1][1]!)).toMatchObject({ event: 'order-placed', source: 'a-service', data: { orderId: 'o-1' } });

    const urls = [...new Set(readFileSync(loaded, 'utf8').split('\n').filter((u) => u.startsWith('file://')))];
    expect(urls.some((u) => u.includes('/node_modules/synapse/dist/engine/publish/'))).toBe(true);
    expect(urls.some((u) => u.includes('/node_modules/ioredis/'))).toBe(true);
    expect(urls.filter((u) => /\/node_modules\/(fastify|@fastify\/[^/]+|bullmq|jsonata|prom-client|pino|ws|commander)\/|\/synapse\/dist\/engine\/(admin|runtime\/engine|cli)\//.test(u))).toEqual([]);
  }, 30_000);

  it("import 'synapse' gives the engine's library: compileExpression evaluates", async () => {
    writeFileSync(join(app, 'expr.mjs'), `import { compileExpression, defineSink, Engine } from 'synapse';
console.log(JSON.stringify([compileExpression('$sum(items.price)').evaluate({ items: [{ price: 2 }, { price: 3 }] }), typeof defineSink, typeof Engine]));
`);
    const { stdout } = await run(process.execPath, ['expr.mjs'], { cwd: app, env: npmEnv() });
    expect(JSON.parse(stdout)).toEqual([5, 'function', 'function']);
  }, 30_000);

  it('the installed synapse command answers --version and validates a pipeline (exit 1 with FILE:LINE:COL for a bad one)', async () => {
    const bin = join(app, 'node_modules', '.bin', 'synapse');
    expect((await run(bin, ['--version'], { cwd: app, env: npmEnv() })).stdout).toBe(`${pkg.version}\n`);

    mkdirSync(join(app, 'pipelines'), { recursive: true });
    writeFileSync(join(app, 'pipelines', 'orders.yaml'), [
      '# yaml-language-server: $schema=../node_modules/synapse/editor/pipeline.schema.json',
      'source: { stream: orders }',
      'validate: { schema: https://example.com/schemas/order-placed.json }',
      'transform: \'{ "order": data.orderId }\'',
      'sink: { type: log }',
      '',
    ].join('\n'));
    const ok = await run(bin, ['validate'], { cwd: app, env: npmEnv() });
    expect(ok.stdout).toBe('1 pipeline(s), 0 test file(s), 1 schema(s): 0 error(s)\n');

    writeFileSync(join(app, 'pipelines', 'broken.yaml'), 'source: { stream: other }\nfiltr: data.x\nsink: { type: log }\n');
    const bad = await run(bin, ['validate'], { cwd: app, env: npmEnv() }).then(() => undefined, (err: { code: number; stdout: string }) => err);
    expect(bad?.code).toBe(1);
    expect(bad?.stdout).toMatch(/pipelines\/broken\.yaml:2:1 .*filtr/);
  }, 30_000);

  it('the installed synapse run serves the web console at /ui/ (a browser at / is sent there)', async () => {
    const bin = join(app, 'node_modules', '.bin', 'synapse');
    const dir = join(app, 'console-pipelines');
    mkdirSync(dir, { recursive: true });
    writeFileSync(join(dir, 'orders.yaml'), 'source: { stream: orders }\nsink: { type: log }\n');
    const port = await freePort();
    const child = spawn(bin, ['run', '--pipelines', dir, '--schemas', join(app, 'schemas'), '--redis', redis.url, '--port', String(port), '--no-watch'], { cwd: app, env: npmEnv(), stdio: 'ignore' });
    try {
      const base = `http://127.0.0.1:${port}`;
      const page = await waitFor(async () => {
        const res = await fetch(`${base}/ui/`).catch(() => undefined);
        return res?.ok ? res : undefined;
      }, 'the installed engine to serve /ui/', 60_000);
      const html = await page.text();
      expect(page.headers.get('content-security-policy')).toMatch(/script-src 'self'/);
      const src = /<script[^>]*src="([^"]+)"/.exec(html)![1]!;
      expect((await fetch(`${base}${src}`)).status).toBe(200);
      const root = await fetch(`${base}/`, { headers: { accept: 'text/html' }, redirect: 'manual' });
      expect(root.headers.get('location')).toBe('/ui/');
      expect((await (await fetch(`${base}/`)).json()).console).toBe('/ui/');
    } finally {
      child.kill('SIGTERM');
      await new Promise((r) => (child.exitCode !== null ? r(undefined) : child.once('exit', r)));
    }
  }, 90_000);
});
