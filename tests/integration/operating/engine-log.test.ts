import { randomUUID } from 'node:crypto';
import { cp, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Redis } from 'ioredis';
import { stringify } from 'yaml';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { freePort } from '../../../engine/runtime/redis-server.ts';
import { killEngines, spawnEngine, stopCleanly, type LogLine } from '../../helpers/engine-process.ts';
import { FIXTURE_SCHEMAS, orderEvent, ordersPipeline, pipelineDirs, testKey } from '../../helpers/pipelines.ts';
import { startTestRedis, waitFor, type TestRedis } from '../../helpers/redis.ts';
import { addEvents } from '../../helpers/streams.ts';

let server: TestRedis;
let redis: Redis;
const dirs = pipelineDirs();
const temp: string[] = [];

beforeAll(async () => {
  server = await startTestRedis();
  redis = server.client();
});
afterEach(() => killEngines());
afterAll(async () => {
  await dirs.cleanup();
  await Promise.all(temp.map((d) => rm(d, { recursive: true, force: true })));
  redis?.disconnect();
  await server?.close();
});

const WARN = 40;

/** A copy of the fixture schemas the test may add to. */
async function schemaCopy(): Promise<string> {
  const dir = await mkdtemp(join(tmpdir(), 'synapse-it-schemas-'));
  temp.push(dir);
  await cp(FIXTURE_SCHEMAS, dir, { recursive: true });
  return dir;
}

describe('the engine says what it does', () => {
  it('logs a dead-lettered event at warn (pipeline, stage, reason, source id), a flood as one line per interval with a count, and shows the latest in the admin API', async () => {
    const stream = testKey('in');
    // Nothing listens there: every write fails with ECONNREFUSED.
    const deadPort = await freePort();
    const doc = ordersPipeline({
      stream, out: testKey('out'),
      extra: { sink: { type: 'http', with: { url: `http://127.0.0.1:${deadPort}/hook` } }, retry: { attempts: 2, backoff: 'fixed', delay_ms: 5 } },
    });
    const engine = await spawnEngine({
      pipelines: await dirs.make([doc]), schemas: FIXTURE_SCHEMAS, redisUrl: server.url, consumer: `it-log-${randomUUID().slice(0, 8)}`,
      env: { SYNAPSE_DLQ_LOG_INTERVAL_MS: '60000' },
    });
    await engine.waitForLog((l) => l.msg === 'admin API listening', 'the admin API');
    const dlqLines = () => engine.logs.filter((l) => l.level === WARN && l.pipeline === doc.name && String(l.msg).includes('dead-lettered'));

    const [first] = await addEvents(redis, stream, [orderEvent(1)]);
    const line = await engine.waitForLog((l) => l.level === WARN && l.pipeline === doc.name, 'the dead-lettered event');
    expect(line).toMatchObject({ pipeline: doc.name, stage: 'sink', sink: 'http', id: first, attempts: 2, dlq: `${stream}:dlq` });
    expect(String(line.reason)).toMatch(/ECONNREFUSED/);
    expect(String(line.msg)).toMatch(/dead-lettered at sink \(sink http\): .*ECONNREFUSED/);

    const view = await (await fetch(`http://127.0.0.1:${engine.adminPort}/pipelines/${doc.name}`)).json() as Record<string, unknown>;
    expect(view.counters).toMatchObject({ dlq: 1 });
    expect(view.lastDlq).toMatchObject({ stage: 'sink', sink: 'http', id: first, attempts: 2, reason: expect.stringMatching(/ECONNREFUSED/) });
    expect(Date.parse(String((view.lastDlq as { at: string }).at))).toBeGreaterThan(Date.now() - 60_000);

    // A flood within the interval adds no line until the interval ends (here: at shutdown).
    const flood = await addEvents(redis, stream, Array.from({ length: 40 }, (_, i) => orderEvent(100 + i)));
    await waitFor(async () => (await redis.xlen(`${stream}:dlq`)) === 41, 'all 41 events in the DLQ');
    expect(dlqLines()).toHaveLength(1);
    const latest = await (await fetch(`http://127.0.0.1:${engine.adminPort}/pipelines/${doc.name}`)).json() as { lastDlq: { id: string } };
    expect(latest.lastDlq.id).toBe(flood.at(-1));

    await stopCleanly(engine);
    const lines = dlqLines();
    expect(lines).toHaveLength(2);
    expect(lines[1]).toMatchObject({ pipeline: doc.name, count: 40, intervalMs: 60_000, stage: 'sink', id: flood.at(-1), reason: expect.stringMatching(/ECONNREFUSED/) });
    expect(String(lines[1]!.msg)).toMatch(/^40 more events dead-lettered/);
  }, 60_000);

  it('logs each reload with its cause; a schema no pipeline uses reloads nothing, one a pipeline reaches through $ref reloads only that one', async () => {
    const schemas = await schemaCopy();
    const common = { $schema: 'https://json-schema.org/draft/2020-12/schema', $id: 'https://synapse.test/schemas/it-common.json', $defs: { seq: { type: 'integer' } } };
    const ticket = {
      $schema: 'https://json-schema.org/draft/2020-12/schema', $id: 'https://synapse.test/schemas/it-ticket.json', type: 'object',
      required: ['event', 'data'], properties: { event: { const: 'ticket' }, data: { type: 'object', properties: { seq: { $ref: 'it-common.json#/$defs/seq' } } } },
    };
    await writeFile(join(schemas, 'it-common.json'), JSON.stringify(common));
    await writeFile(join(schemas, 'it-ticket.json'), JSON.stringify(ticket));
    const orders = ordersPipeline({ stream: testKey('in'), out: testKey('out') });
    const tickets = { ...ordersPipeline({ stream: testKey('in'), out: testKey('out') }), validate: { schema: ticket.$id }, filter: 'true' };
    const plain = { ...ordersPipeline({ stream: testKey('in'), out: testKey('out') }) } as Record<string, unknown> & { name: string };
    delete plain.validate;
    const pipelines = await dirs.make([orders, tickets, plain]);
    const engine = await spawnEngine({ pipelines, schemas, redisUrl: server.url, consumer: `it-reload-${randomUUID().slice(0, 8)}` });
    const generations = async () => {
      const body = await (await fetch(`http://127.0.0.1:${engine.adminPort}/pipelines`)).json() as { pipelines: { name: string; generation: number }[] };
      return Object.fromEntries(body.pipelines.map((p) => [p.name, p.generation]));
    };
    // The watcher is ready before the admin API listens.
    await engine.waitForLog((l) => l.msg === 'admin API listening', 'the admin API');
    const reloaded = (from: number) => engine.logs.slice(from).filter((l: LogLine) => l.msg === 'pipeline reloaded');

    // A schema nothing refers to.
    let mark = engine.logs.length;
    await writeFile(join(schemas, 'unrelated.json'), JSON.stringify({ $id: 'https://synapse.test/schemas/unrelated.json', type: 'object' }));
    const noop = await engine.waitForLog((l) => engine.logs.indexOf(l) >= mark && String(l.msg).startsWith('schemas reloaded'), 'the schema reload');
    // A write may be seen as an add and then a change; both are named.
    expect(noop).toMatchObject({ cause: expect.stringMatching(/^schema file unrelated\.json added/), reloading: [], untouched: 3 });
    expect(await generations()).toEqual({ [orders.name]: 1, [tickets.name]: 1, [plain.name]: 1 });

    // A schema the ticket pipeline's schema refers to.
    mark = engine.logs.length;
    await writeFile(join(schemas, 'it-common.json'), JSON.stringify({ ...common, $defs: { seq: { type: 'integer', minimum: 0 } } }));
    const line = await engine.waitForLog((l) => engine.logs.indexOf(l) >= mark && l.msg === 'pipeline reloaded', 'the ticket pipeline reloaded');
    expect(line).toMatchObject({ pipeline: tickets.name, generation: 2, cause: expect.stringMatching(/^schema file it-common\.json changed/) });
    expect(await generations()).toEqual({ [orders.name]: 1, [tickets.name]: 2, [plain.name]: 1 });
    expect(reloaded(mark)).toHaveLength(1);

    // An edit of a pipeline file.
    mark = engine.logs.length;
    await writeFile(join(pipelines, `${plain.name}.yaml`), stringify({ ...plain, description: 'edited' }));
    const edit = await engine.waitForLog((l) => engine.logs.indexOf(l) >= mark && l.msg === 'pipeline reloaded', 'the edited pipeline reloaded');
    expect(edit).toMatchObject({ pipeline: plain.name, generation: 2, cause: 'file changed' });
    await stopCleanly(engine);
  }, 60_000);
});
