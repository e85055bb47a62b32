import { createHash } from 'node:crypto';
import { afterEach, describe, expect, it } from 'vitest';
import { entries, key, metricValue, ping, pipelineYaml, publish, useEngines } from '../../helpers/engine.ts';
import { waitFor } from '../../helpers/redis.ts';

// Issue #10, item 15: the DLQ kept oversized events whole and had no length cap; GET /dlq of
// 31 × 5 MB entries answered 163 MB. What is stored per entry is capped (with size and hash),
// the DLQ is trimmed to a length, and the listing is paged by bytes.

const { start } = useEngines();
const saved = { ...process.env };
afterEach(() => {
  for (const k of ['SYNAPSE_DLQ_MAX_PAYLOAD_BYTES', 'SYNAPSE_DLQ_MAXLEN', 'SYNAPSE_DLQ_LIST_MAX_BYTES']) {
    if (saved[k] === undefined) delete process.env[k];
    else process.env[k] = saved[k];
  }
});

async function pipelineWithDlq(extra?: string) {
  const name = key('p');
  const stream = key('in');
  const f = await start({ pipelines: { [name]: pipelineYaml({ name, stream, out: key('out'), extra }) } });
  return { f, name, stream, dlq: `${stream}:dlq` };
}

describe('DLQ limits', () => {
  it('an oversized payload is stored cut to SYNAPSE_DLQ_MAX_PAYLOAD_BYTES, with its size and sha256; redrive skips it', async () => {
    process.env.SYNAPSE_DLQ_MAX_PAYLOAD_BYTES = '4096';
    const { f, stream, dlq } = await pipelineWithDlq('max_event_bytes: 1024');
    const payload = JSON.stringify(ping(1, { tag: 'é'.repeat(10_000) }));
    const [id] = await publish(f.client, stream, [payload]);
    await waitFor(async () => (await f.client.xlen(dlq)) === 1, 'the DLQ entry');
    const [stored] = await entries(f.client, dlq);
    expect(Buffer.byteLength(stored!.fields.payload!)).toBeLessThanOrEqual(4096);
    expect(Buffer.byteLength(stored!.fields.payload!)).toBeGreaterThan(4090);
    expect(payload.startsWith(stored!.fields.payload!)).toBe(true);
    expect(stored!.fields).toMatchObject({
      stage: 'decode', source_id: id, payload_truncated: 'true', payload_bytes: String(Buffer.byteLength(payload)),
      payload_sha256: createHash('sha256').update(payload).digest('hex'),
    });
    const listed = JSON.parse((await f.inject({ method: 'GET', url: `/dlq/${dlq}` })).body);
    expect(listed.entries[0]).toEqual({
      id: stored!.id, payload: stored!.fields.payload, error: stored!.fields.error, stage: 'decode', pipeline: stored!.fields.pipeline,
      source_stream: stream, source_id: id, attempts: 1, failed_at: stored!.fields.failed_at,
      payload_truncated: true, payload_bytes: Buffer.byteLength(payload), payload_sha256: createHash('sha256').update(payload).digest('hex'),
    });
    const redrive = JSON.parse((await f.inject({ method: 'POST', url: `/dlq/${dlq}/redrive`, payload: {} })).body);
    expect(redrive.skipped).toEqual([{ dlqId: stored!.id, reason: expect.stringContaining('stored truncated') }]);
  });

  it('GET /dlq pages by bytes: every entry once, in order, no page far over the budget', async () => {
    process.env.SYNAPSE_DLQ_LIST_MAX_BYTES = String(50_000);
    const { f, stream, dlq } = await pipelineWithDlq();
    const big = Array.from({ length: 31 }, (_, i) => ({ event: 'ping', data: { n: 'x', i, pad: 'p'.repeat(10_000) } }));
    await publish(f.client, stream, big);
    await waitFor(async () => (await f.client.xlen(dlq)) === 31, '31 DLQ entries');
    const all = (await entries(f.client, dlq)).map((e) => e.id);
    const seen: string[] = [];
    let from: string | null = '-';
    let pages = 0;
    while (from !== null) {
      const res = await f.inject({ method: 'GET', url: `/dlq/${dlq}?from=${encodeURIComponent(from)}&count=1000` });
      expect(res.statusCode).toBe(200);
      expect(res.body.length).toBeLessThan(50_000 + 15_000);
      const body = JSON.parse(res.body) as { entries: { id: string }[]; next: string | null; length: number };
      expect(body.length).toBe(31);
      seen.push(...body.entries.map((e) => e.id));
      from = body.next;
      pages++;
    }
    expect(seen).toEqual(all);
    expect(pages).toBeGreaterThan(5);
  });

  it('a DLQ is trimmed to SYNAPSE_DLQ_MAXLEN, oldest first, and the cut is counted', async () => {
    process.env.SYNAPSE_DLQ_MAXLEN = '5';
    const { f, stream, dlq } = await pipelineWithDlq();
    const ids = await publish(f.client, stream, Array.from({ length: 20 }, (_, i) => ({ event: 'ping', data: { n: `bad-${i}` } })));
    await waitFor(async () => f.engine.handles.values().next().value!.counters.dlq === 20, 'twenty entries dead-lettered');
    await waitFor(async () => (await f.client.xlen(dlq)) === 5, 'the DLQ trimmed to 5');
    expect((await entries(f.client, dlq)).map((e) => e.fields.source_id)).toEqual(ids.slice(-5));
    expect(metricValue(await f.engine.metrics.registry.metrics(), 'synapse_refused_total', { limit: 'dlq.maxlen' })).toBe(15);
  });
});
