/**
 * `node bin/run-ts.mjs bench/catalog-reload.ts [ROOT]`: how long reloads of the shipped catalog
 * take in a running engine. Starts a non-persistent redis-server on a free port, an engine over
 * ROOT/pipelines and ROOT/schemas (default: this repository; pass another checkout to compare),
 * then times, each `--rounds` times (default 3):
 *
 * - every pipeline file reloaded at once (forced, as after an edit of each);
 * - a schema reload after adding a schema no pipeline uses;
 * - a schema reload after changing the schema most pipelines reach (common.json).
 *
 * Prints the median of each in ms and how many pipelines each reloaded. The schema directory is
 * a temporary copy, so the repository is never written.
 */
import { cp, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { performance } from 'node:perf_hooks';
import { pino } from 'pino';
import { startRedisServer, freePort } from '../engine/runtime/redis-server.ts';

const root = resolve(process.argv.find((a, i) => i >= 2 && !a.startsWith('--')) ?? '.');
const rounds = Number(process.argv.find((a) => a.startsWith('--rounds='))?.slice(9) ?? 3);
const { Engine } = await import(join(root, 'engine/runtime/engine.ts')) as typeof import('../engine/runtime/engine.ts');

const work = await mkdtemp(join(tmpdir(), 'synapse-reload-bench-'));
const schemasDir = join(work, 'schemas');
await cp(join(root, 'schemas'), schemasDir, { recursive: true });
const redis = await startRedisServer({ port: await freePort(), dir: work });
const engine = new Engine({ redisUrl: redis.url, pipelinesDir: join(root, 'pipelines'), schemasDir, logger: pino({ level: 'silent' }), consumer: 'reload-bench' });

const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;
const time = async (what: () => Promise<unknown[]>) => {
  const t = performance.now();
  const results = await what();
  return { ms: performance.now() - t, count: results.filter((r) => (r as { change?: string }).change === 'updated').length };
};

try {
  await engine.start();
  const files = [...engine.handles.values()].map((h) => h.pipeline.file);
  const commonFile = join(schemasDir, 'common.json');
  const common = await readFile(commonFile, 'utf8');
  const rows: Record<string, { ms: number[]; count: number }> = {};
  const note = (name: string, r: { ms: number; count: number }) => {
    (rows[name] ??= { ms: [], count: r.count }).ms.push(r.ms);
    rows[name]!.count = r.count;
  };
  for (let i = 0; i < rounds; i++) {
    // An engine reloading one file at a time chains these itself; one that runs them side by side does not.
    note('every pipeline file', await time(() => Promise.all(files.map((f) => engine.reloadFile(f, { force: true })))));
    await writeFile(join(schemasDir, `unrelated-${i}.json`), JSON.stringify({ $id: `https://synapse.dev/schemas/unrelated-${i}.json`, type: 'object' }));
    note('schemas: one unrelated schema added', await time(() => engine.reloadSchemas()));
    await writeFile(commonFile, common.replace(/\n?$/, `\n${' '.repeat(i + 1)}`).replace('{', `{ "$comment": "round ${i}",`));
    note('schemas: common.json changed', await time(() => engine.reloadSchemas()));
  }
  console.log(`catalog reload (${root}, ${files.length} pipelines, median of ${rounds}):`);
  for (const [name, r] of Object.entries(rows)) console.log(`  ${name.padEnd(38)} ${median(r.ms).toFixed(0).padStart(6)} ms   ${r.count} pipelines reloaded`);
} finally {
  await engine.stop();
  await redis.stop();
  await rm(work, { recursive: true, force: true });
}
