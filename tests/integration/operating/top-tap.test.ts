import { spawn } from 'node:child_process';
import { randomUUID } from 'node:crypto';
import type { Redis } from 'ioredis';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { SYNAPSE_BIN, killEngines, runCli, spawnEngine, type EngineProcess } from '../../helpers/engine-process.ts';
import { FIXTURE_SCHEMAS, REPO_ROOT, orderEvent, ordersPipeline, pipelineDirs, testKey } from '../../helpers/pipelines.ts';
import { startTestRedis, waitFor, type TestRedis } from '../../helpers/redis.ts';
import { addEvents } from '../../helpers/streams.ts';

// Issue #12, item 8: a live view in the terminal, from the admin API of a running engine.

let server: TestRedis;
let redis: Redis;
const dirs = pipelineDirs();

beforeAll(async () => {
  server = await startTestRedis();
  redis = server.client();
});
afterEach(() => killEngines());
afterAll(async () => {
  await dirs.cleanup();
  redis?.disconnect();
  await server?.close();
});

async function engineWithOrders(): Promise<{ engine: EngineProcess; name: string; stream: string; admin: string }> {
  const stream = testKey('in');
  const doc = ordersPipeline({ stream, out: testKey('out') });
  const engine = await spawnEngine({ pipelines: await dirs.make([doc]), schemas: FIXTURE_SCHEMAS, redisUrl: server.url, consumer: `it-top-${randomUUID().slice(0, 8)}` });
  await engine.waitForLog((l) => l.msg === 'admin API listening', 'the admin API');
  return { engine, name: doc.name, stream, admin: `http://127.0.0.1:${engine.adminPort}` };
}

/** An order event its schema refuses (amount not a number): dead-lettered at validate. */
const invalidOrder = (seq: number) => ({ ...orderEvent(seq), data: { orderId: `o-${seq}`, amount: 'lots', seq } });

describe('synapse top', () => {
  it('--once --json: per pipeline, rates in and out while events flow, filtered, DLQ, lag, p99 stage time, generation', async () => {
    const { name, stream, admin } = await engineWithOrders();
    // Events keep flowing while top takes its two samples.
    let flowing = true;
    let seq = 0;
    const flow = (async () => {
      while (flowing) {
        await addEvents(redis, stream, [orderEvent(seq++), orderEvent(seq++, 'order-cancelled'), invalidOrder(seq++)]);
        await new Promise((r) => setTimeout(r, 50));
      }
    })();
    const r = await runCli(['top', '--once', '--json', '--interval', '2', '--admin', admin], { timeoutMs: 60_000 }).finally(async () => {
      flowing = false;
      await flow;
    });
    expect(r.code, r.stderr).toBe(0);
    const lines = r.stdout.trim().split('\n');
    expect(lines).toHaveLength(1);
    const view = JSON.parse(lines[0]!) as { intervalS: number; pipelines: Record<string, unknown>[] };
    expect(view.intervalS).toBe(2);
    expect(view.pipelines).toEqual([expect.objectContaining({ pipeline: name, status: 'running', generation: 1, lag: expect.any(Number), p99Stage: expect.any(String) })]);
    const row = view.pipelines[0] as { inPerSec: number; outPerSec: number; filtered: number; dlq: number; p99Ms: number };
    expect(row.inPerSec).toBeGreaterThan(0);
    expect(row.outPerSec).toBeGreaterThan(0);
    expect(row.outPerSec).toBeLessThan(row.inPerSec);
    expect(row.filtered).toBeGreaterThan(0);
    expect(row.dlq).toBeGreaterThan(0);
    expect(row.p99Ms).toBeGreaterThan(0);
  }, 90_000);

  it('--once prints a table with a row per pipeline; an engine that is not there is an error that says where it looked', async () => {
    const { name, admin } = await engineWithOrders();
    const r = await runCli(['top', '--once', '--interval', '0.2', '--admin', admin], { timeoutMs: 60_000 });
    expect(r.code, r.stderr).toBe(0);
    const [title, header, row] = r.stdout.trim().split('\n');
    expect(title).toContain(admin);
    expect(header).toMatch(/^PIPELINE\s+STATUS\s+GEN\s+IN\/S\s+OUT\/S\s+FILTERED\s+DLQ\s+LAG\s+P99 STAGE$/);
    expect(row).toMatch(new RegExp(`^${name}\\s+running\\s+1\\s`));

    const away = await runCli(['top', '--once', '--admin', 'http://127.0.0.1:1'], { timeoutMs: 60_000 });
    expect(away.code).toBe(1);
    expect(away.stderr).toContain("cannot reach the engine's admin API at http://127.0.0.1:1");
  }, 90_000);
});

describe('synapse tap', () => {
  it('prints one line per event with its path through the stages, and why it stopped', async () => {
    const { name, stream, admin } = await engineWithOrders();
    const child = spawn(process.execPath, [SYNAPSE_BIN, 'tap', name, '--count', '3', '--admin', admin], { cwd: REPO_ROOT, stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    let err = '';
    child.stdout.setEncoding('utf8').on('data', (d: string) => (out += d));
    child.stderr.setEncoding('utf8').on('data', (d: string) => (err += d));
    const exited = new Promise<number | null>((r) => child.once('exit', r));
    try {
      await waitFor(() => err.includes(`tapping ${name}`), 'tap to connect', 30_000);
      const ids = await addEvents(redis, stream, [orderEvent(1), orderEvent(2, 'order-cancelled'), invalidOrder(3)]);
      expect(await exited).toBe(0);
      const lines = out.trim().split('\n');
      expect(lines).toHaveLength(3);
      expect(lines[0]).toMatch(new RegExp(`^${ids[0]}\\s+sunk\\s+decode ✓ → validate ✓ → filter ✓ → transform ✓ → sink ✓ \\(publish\\)$`));
      expect(lines[1]).toMatch(new RegExp(`^${ids[1]}\\s+filtered\\s+decode ✓ → validate ✓ → filter ✗ \\(filter was falsy: event = "order-placed"\\)$`));
      expect(lines[2]).toMatch(new RegExp(`^${ids[2]}\\s+dlq\\s+decode ✓ → validate ✗ \\(.*amount.*\\)$`));
    } finally {
      child.kill('SIGKILL');
    }
  }, 90_000);

  it('an unknown pipeline: exit 1 with the nearest name', async () => {
    const { name, admin } = await engineWithOrders();
    const r = await runCli(['tap', `${name}x`, '--admin', admin], { timeoutMs: 60_000 });
    expect(r.code).toBe(1);
    expect(r.stderr).toContain(`no pipeline '${name}x' (did you mean '${name}'?)`);
  }, 90_000);
});
