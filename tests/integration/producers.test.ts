import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { copyCatalog } from '../../scripts/catalog.ts';
import { startEngine, type EngineUnderTest } from '../helpers/in-process-engine.ts';
import { fixtureFields, loadProducerFixtures } from '../helpers/producer-fixtures.ts';
import { startTestRedis, waitFor, type TestRedis } from '../helpers/redis.ts';


/**
 * The producer fixtures (every event type, as Helox, Cyrex and the platform services write it)
 * XADDed to a real Redis, with the engine running the shipped catalog: every entry is settled by
 * every pipeline of its stream, and none reaches a DLQ.
 */
describe('the platform producers\' events, XADDed as written, through the shipped catalog', () => {
  let redis: TestRedis;
  let engine: EngineUnderTest;
  let catalog: Awaited<ReturnType<typeof copyCatalog>> | undefined;
  let runtime: Server;
  const loads: string[] = [];
  const cyrexUrl = process.env.CYREX_URL;

  beforeAll(async () => {
    redis = await startTestRedis({ own: true });
    // cyrex-auto-load calls Cyrex's model runtime; a stand-in answers 200 and records the call.
    runtime = createServer((req, res) => {
      let body = '';
      req.on('data', (c) => (body += c));
      req.on('end', () => {
        loads.push(body);
        res.writeHead(200, { 'content-type': 'application/json' }).end('{"status":"loaded"}');
      });
    });
    await new Promise<void>((r) => runtime.listen(0, '127.0.0.1', r));
    process.env.CYREX_URL = `http://127.0.0.1:${(runtime.address() as AddressInfo).port}`;
    // The catalog's own pipelines and schemas (catalog.json), not whatever else pipelines/ holds.
    catalog = await copyCatalog();
    engine = await startEngine({ redisUrl: redis.url, pipelines: catalog.pipelines, schemas: catalog.schemas });
  });
  afterAll(async () => {
    if (cyrexUrl === undefined) delete process.env.CYREX_URL;
    else process.env.CYREX_URL = cyrexUrl;
    await engine?.stop();
    await catalog?.remove();
    await new Promise((r) => runtime?.close(r));
    await redis?.close();
  });

  it('every entry is sunk or filtered by every pipeline of its stream; no DLQ entry anywhere', async () => {
    const fixtures = await loadProducerFixtures();
    const client = redis.client();
    for (const f of fixtures) await client.xadd(f.stream, '*', ...fixtureFields(f));

    const handles = [...engine.engine.handles.values()].map((h) => h.pipeline);
    const expected = new Map<string, number>();
    for (const p of handles) {
      if (p.source.kind !== 'stream') continue;
      const stream = p.source.stream;
      // Entries the catalog writes itself: route-agent-decisions forwards the agent decisions
      // written to platform-events, and cyrex-auto-load announces each load (model-loaded).
      const forwarded = stream === 'agi-decisions' ? fixtures.filter((f) => f.stream === 'platform-events' && f.name.startsWith('cyrex-agent-decision')).length
        : stream === 'model-events' ? fixtures.filter((f) => f.fields.event === 'model-ready').length : 0;
      expected.set(p.name, fixtures.filter((f) => f.stream === stream).length + forwarded);
    }
    await waitFor(
      () => [...expected].every(([name, n]) => engine.tally(name).total >= n),
      `every pipeline to settle its stream's entries (${[...expected].filter(([name, n]) => engine.tally(name).total < n).map(([name, n]) => `${name} ${engine.tally(name).total}/${n}`).join(', ')})`,
      30_000,
    );

    const dead = [...expected.keys()].flatMap((name) => (engine.outcomes.get(name) ?? [])
      .filter((o) => o.kind === 'dlq' || o.kind === 'dropped')
      .map((o) => `${name}: ${'stage' in o ? o.stage : ''} ${'error' in o ? o.error : ''}`));
    expect(dead).toEqual([]);
    for (const [name, n] of expected) {
      const t = engine.tally(name);
      expect(t.sunk + t.filtered, name).toBe(n);
      expect(t.sunk, `${name} acted on none of the producers' events`).toBeGreaterThan(0);
    }
    const dlqStreams = await client.keys('*:dlq');
    const lengths = await Promise.all(dlqStreams.map(async (k) => [k, await client.xlen(k)] as const));
    expect(lengths.filter(([, n]) => n > 0)).toEqual([]);

    // Helox's model-ready reached Cyrex's runtime as a load request for that version.
    expect(loads.map((b) => JSON.parse(b) as Record<string, unknown>)).toEqual([
      expect.objectContaining({ name: 'helox-sentiment', version: 'v20261201' }),
    ]);
  }, 60_000);
});
