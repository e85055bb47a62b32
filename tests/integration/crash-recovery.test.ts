import { randomUUID } from 'node:crypto';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import type { Redis } from 'ioredis';
import { killEngines, spawnEngine, stopCleanly } from '../helpers/engine-process.ts';
import { FIXTURE_SCHEMAS, orderEvent, ordersPipeline, pipelineDirs, testKey } from '../helpers/pipelines.ts';
import { startTestRedis, waitFor, type TestRedis } from '../helpers/redis.ts';
import { addEvents, countDuplicates, groupConsumers, pendingSummary, readPayloads } from '../helpers/streams.ts';

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
  await server?.close();
});

function range(from: number, to: number): number[] {
  return Array.from({ length: to - from }, (_, i) => from + i);
}

/** Waits until the output holds every seq of [0, n), and returns the seqs it holds (with repeats). */
async function allDelivered(out: string, n: number, timeoutMs = 40_000): Promise<number[]> {
  return waitFor(async () => {
    const seqs = (await readPayloads<{ seq: number }>(redis, out)).map((p) => p.seq);
    return new Set(seqs).size >= n && seqs;
  }, `all ${n} events in the output`, timeoutMs, 200);
}

/** The transform of the suites' pipeline, stamped with the consumer that processed each event. */
const STAMPED = '{ "seq": data.seq, "by": "${SYNAPSE_CONSUMER}" }';

describe('crash recovery', () => {
  it('an engine SIGKILLed mid-stream and restarted under the same name delivers every event at least once', async () => {
    const N = 8000;
    const stream = testKey('in');
    const out = testKey('out');
    const consumer = `it-kill-${randomUUID().slice(0, 8)}`;
    // No reclaim within the test's time: the restarted consumer must re-read its own pending entries.
    const doc = ordersPipeline({ stream, out, source: { batch: 50, claim_idle_ms: 600_000 } });
    const pipelines = await dirs.make([doc]);
    const engine = () => spawnEngine({ pipelines, schemas: FIXTURE_SCHEMAS, redisUrl: server.url, consumer });

    const first = await engine();
    await addEvents(redis, stream, range(0, N / 2).map((i) => orderEvent(i)));
    // Mid-stream: some output written, a batch in hand (pending under its name).
    await waitFor(async () => (await redis.xlen(out)) >= 300 && ((await pendingSummary(redis, stream, doc.name)).consumers[consumer] ?? 0) > 0,
      'the engine mid-stream, with a batch pending', 20_000, 10);
    const killed = await first.stop('SIGKILL');
    expect(killed.signal).toBe('SIGKILL');
    const pendingAtKill = (await pendingSummary(redis, stream, doc.name)).consumers[consumer] ?? 0;
    const outputAtKill = await redis.xlen(out);

    await addEvents(redis, stream, range(N / 2, N).map((i) => orderEvent(i)));
    const second = await engine();
    const seqs = await allDelivered(out, N);
    expect(new Set(seqs)).toEqual(new Set(range(0, N)));
    const { duplicates } = countDuplicates(seqs);
    console.log(`SIGKILL + restart: ${N} events, ${seqs.length} outputs, ${duplicates} duplicated ` +
      `(killed with ${pendingAtKill} entries pending, ${outputAtKill} outputs written)`);
    expect(duplicates).toBeLessThanOrEqual(pendingAtKill);

    await waitFor(async () => (await pendingSummary(redis, stream, doc.name)).count === 0, 'nothing pending');
    await stopCleanly(second);
  }, 60_000);

  it('two engine processes share one group: both get work and nothing is lost', async () => {
    const N = 3000;
    const stream = testKey('in');
    const out = testKey('out');
    const doc = ordersPipeline({ stream, out, source: { batch: 20 }, extra: { transform: STAMPED } });
    const pipelines = await dirs.make([doc]);
    const names = [`it-a-${randomUUID().slice(0, 8)}`, `it-b-${randomUUID().slice(0, 8)}`];
    const engines = await Promise.all(names.map((consumer) => spawnEngine({ pipelines, schemas: FIXTURE_SCHEMAS, redisUrl: server.url, consumer })));

    // Written a chunk at a time, as a live producer would; each chunk once the last is through,
    // so both engines are waiting on the group when it lands.
    for (let i = 0; i < N; i += 100) {
      await addEvents(redis, stream, range(i, i + 100).map((s) => orderEvent(s)));
      await waitFor(async () => (await redis.xlen(out)) >= i + 100, `chunk ${i / 100 + 1} through`, 20_000, 10);
    }
    await allDelivered(out, N);

    const outputs = await readPayloads<{ seq: number; by: string }>(redis, out);
    expect(new Set(outputs.map((o) => o.seq))).toEqual(new Set(range(0, N)));
    const share = Object.fromEntries(names.map((n) => [n, outputs.filter((o) => o.by === n).length]));
    console.log(`two consumers on one group: ${JSON.stringify(share)}; ${outputs.length - N} duplicated`);
    for (const n of names) expect(share[n], `events processed by ${n}`).toBeGreaterThan(0);
    expect(outputs.length).toBe(N);
    expect((await groupConsumers(redis, stream, doc.name)).map((c) => c.name).sort()).toEqual([...names].sort());
    await waitFor(async () => (await pendingSummary(redis, stream, doc.name)).count === 0, 'nothing pending');

    for (const e of engines) await stopCleanly(e);
  }, 60_000);

  it("a SIGKILLed engine's pending entries are reclaimed by the other one after claim_idle_ms", async () => {
    const stream = testKey('in');
    const out = testKey('out');
    // Until the test deletes it, the output key is a string: every publish fails (WRONGTYPE) and
    // is retried, so each engine holds its batch pending for as long as the test needs.
    await redis.set(out, 'blocked');
    const doc = ordersPipeline({
      stream, out,
      source: { batch: 20, claim_idle_ms: 1000 },
      extra: { transform: STAMPED, retry: { attempts: 100, backoff: 'fixed', delay_ms: 100 } },
    });
    const pipelines = await dirs.make([doc]);
    const [survivorName, victimName] = [`it-survivor-${randomUUID().slice(0, 8)}`, `it-victim-${randomUUID().slice(0, 8)}`];
    const [survivor, victim] = await Promise.all([survivorName, victimName].map((consumer) =>
      spawnEngine({ pipelines, schemas: FIXTURE_SCHEMAS, redisUrl: server.url, consumer })));

    // Feed a chunk at a time until each engine holds a batch.
    let produced = 0;
    const held = await waitFor(async () => {
      const { consumers } = await pendingSummary(redis, stream, doc.name);
      if ((consumers[survivorName!] ?? 0) > 0 && (consumers[victimName!] ?? 0) > 0) return consumers;
      await addEvents(redis, stream, range(produced, produced + 20).map((s) => orderEvent(s)));
      produced += 20;
      return undefined;
    }, 'both engines holding pending entries', 20_000, 100);

    await victim!.stop('SIGKILL');
    await redis.del(out);
    await addEvents(redis, stream, range(produced, produced + 200).map((s) => orderEvent(s)));
    produced += 200;

    await allDelivered(out, produced);
    const outputs = await readPayloads<{ seq: number; by: string }>(redis, out);
    expect(new Set(outputs.map((o) => o.seq))).toEqual(new Set(range(0, produced)));
    // The victim never published anything: whatever it held, the survivor reclaimed and delivered.
    expect(outputs.every((o) => o.by === survivorName)).toBe(true);
    const reclaimed = await survivor!.waitForLog((l) => l.msg === 'reclaimed entries left pending by another consumer', 'a reclaim');
    expect(reclaimed).toMatchObject({ stream, count: expect.any(Number) });
    // Only a reclaim that found entries says so (the survivor's other passes found none).
    const counts = survivor!.logs.filter((l) => l.msg === reclaimed.msg).map((l) => l.count as number);
    expect(counts.every((n) => n >= 1 && n <= 20), counts.join(',')).toBe(true);
    console.log(`reclaim: victim held ${held[victimName!]} entries at SIGKILL; ${produced} events, ${outputs.length - produced} duplicated`);
    await waitFor(async () => (await pendingSummary(redis, stream, doc.name)).count === 0, 'nothing pending');
    await stopCleanly(survivor!);
  }, 60_000);
});
