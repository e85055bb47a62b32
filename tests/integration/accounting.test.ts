import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Redis } from 'ioredis';
import { startEngine } from '../helpers/in-process-engine.ts';
import { orderEvent, ordersPipeline, pipelineDirs, testKey } from '../helpers/pipelines.ts';
import { startTestRedis, waitFor, type TestRedis } from '../helpers/redis.ts';
import { addEvents, pendingSummary, readPayloads, readStream } from '../helpers/streams.ts';

let server: TestRedis;
let redis: Redis;
const dirs = pipelineDirs();

beforeAll(async () => {
  server = await startTestRedis();
  redis = server.client();
});
afterAll(async () => {
  await dirs.cleanup();
  await server?.close();
});

/** What the i-th of the 10,000 events is, and so where it must end up. */
type Fate = 'decode' | 'validate' | 'filtered' | 'sunk';
function fateOf(i: number): Fate {
  const r = i % 20;
  if (r === 0) return 'decode';
  if (r === 1) return 'validate';
  if (r <= 5) return 'filtered';
  return 'sunk';
}

function eventFor(i: number): Record<string, unknown> | string {
  switch (fateOf(i)) {
    case 'decode': return `{"event": "order-placed", "data": {"seq": ${i}`;
    case 'validate': return { ...orderEvent(i), data: { orderId: `o-${i}`, amount: 'lots', seq: i } };
    case 'filtered': return orderEvent(i, 'order-cancelled');
    case 'sunk': return orderEvent(i);
  }
}

describe('accounting under load', () => {
  it('accounts for each of 10,000 events exactly once: sunk + filtered + DLQ = input, nothing left pending', async () => {
    const N = 10_000;
    const stream = testKey('in');
    const out = testKey('out');
    const doc = ordersPipeline({ stream, out, source: { batch: 500 } });
    const eut = await startEngine({ redisUrl: server.url, pipelines: await dirs.make([doc]) });
    try {
      const fates = Array.from({ length: N }, (_, i) => fateOf(i));
      const ids = await addEvents(redis, stream, fates.map((_, i) => eventFor(i)));
      const expected = { sunk: 0, filtered: 0, decode: 0, validate: 0 };
      for (const f of fates) expected[f]++;

      await waitFor(() => eut.tally(doc.name).total >= N, `${N} settled outcomes`, 50_000);

      // The DLQ holds each bad entry once, under the right stage, and nothing else.
      const dlq = await readStream(redis, `${stream}:dlq`);
      const fateById = new Map(ids.map((id, i) => [id, fates[i]!]));
      const misplaced = dlq.filter((e) => fateById.get(e.fields.source_id!) !== e.fields.stage)
        .map((e) => ({ source_id: e.fields.source_id, fate: fateById.get(e.fields.source_id!), stage: e.fields.stage, error: e.fields.error }));
      expect(misplaced, 'DLQ entries that should not be there').toEqual([]);
      expect(dlq).toHaveLength(expected.decode + expected.validate);
      expect(new Set(dlq.map((e) => e.fields.source_id)).size).toBe(dlq.length);

      const tally = eut.tally(doc.name);
      expect(tally).toEqual({ sunk: expected.sunk, filtered: expected.filtered, dlq: expected.decode + expected.validate, dropped: 0, deferred: 0, total: N });
      // Exactly one outcome per entry read: no entry settled twice, none missing.
      const settledIds = eut.outcomes.get(doc.name)!.map((o) => o.id);
      expect(new Set(settledIds).size).toBe(N);
      expect([...settledIds].sort()).toEqual([...ids].sort());

      // The output holds each kept order once.
      expect(await redis.xlen(out)).toBe(expected.sunk);
      const sunkSeqs = (await readPayloads<{ seq: number }>(redis, out)).map((p) => p.seq).sort((a, b) => a - b);
      expect(sunkSeqs).toEqual(fates.flatMap((f, i) => (f === 'sunk' ? [i] : [])));

      expect(await pendingSummary(redis, stream, doc.name)).toEqual({ count: 0, consumers: {} });
    } finally {
      await eut.stop();
    }
  }, 60_000);
});
