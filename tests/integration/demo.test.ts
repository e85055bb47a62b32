import { spawn } from 'node:child_process';
import { resolve } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { copyCatalog } from '../../scripts/catalog.ts';
import { startEngine, type EngineUnderTest } from '../helpers/in-process-engine.ts';
import { freePort } from '../../engine/runtime/redis-server.ts';
import { startTestRedis, waitFor, type TestRedis } from '../helpers/redis.ts';

const root = resolve(import.meta.dirname, '../..');

/** `npm run demo` promises a newcomer sees every pipeline act; this holds it to that. */
describe('npm run demo', () => {
  let redis: TestRedis;
  let engine: EngineUnderTest;
  let catalog: Awaited<ReturnType<typeof copyCatalog>> | undefined;
  let runtimePort: number;
  const cyrexUrl = process.env.CYREX_URL;

  beforeAll(async () => {
    redis = await startTestRedis({ own: true });
    // cyrex-auto-load reads CYREX_URL at load; point it at the demo's stand-in model runtime.
    runtimePort = await freePort();
    process.env.CYREX_URL = `http://127.0.0.1:${runtimePort}`;
    // The catalog's own pipelines and schemas (catalog.json), not whatever else pipelines/ holds.
    catalog = await copyCatalog();
    engine = await startEngine({ redisUrl: redis.url, pipelines: catalog.pipelines, schemas: catalog.schemas });
  });
  afterAll(async () => {
    if (cyrexUrl === undefined) delete process.env.CYREX_URL;
    else process.env.CYREX_URL = cyrexUrl;
    await engine?.stop();
    await catalog?.remove();
    await redis?.close();
  });

  it('publishes only valid events, and every shipped pipeline sinks some of them', async () => {
    const demo = spawn('node', ['bin/run-ts.mjs', 'scripts/demo.ts', '--redis', redis.url, '--speed', '500', '--inferences', '12', '--model-runtime-port', String(runtimePort)], { cwd: root });
    let out = '';
    demo.stdout.on('data', (d) => (out += d));
    demo.stderr.on('data', (d) => (out += d));
    const code = await new Promise<number | null>((r) => demo.on('close', r));
    expect({ code, out: code === 0 ? '' : out }).toEqual({ code: 0, out: '' });
    expect(out).toMatch(/published \d+ events/);

    const names = [...engine.engine.handles.keys()];
    await waitFor(() => names.every((n) => engine.tally(n).sunk > 0), `every pipeline to sink an event (${names.filter((n) => engine.tally(n).sunk === 0).join(', ')} had none)`, 30_000);
    for (const n of names) expect(engine.tally(n).dlq, `${n} sent demo events to the DLQ`).toBe(0);
  }, 90_000);
});
