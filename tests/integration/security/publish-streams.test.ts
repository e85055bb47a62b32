import { describe, expect, it } from 'vitest';
import { key, metricValue, ping, pipelineYaml, useEngines } from '../../helpers/engine.ts';

// Issue #10, items 11 and 12: POST /events/:stream wrote to any key — the broadcast channel's
// neighbours, BullMQ's keys, DLQs (forging DLQ entries a redrive would then run) — and answered
// 500 for a key that is no stream.

const { start } = useEngines();

describe('POST /events/:stream', () => {
  it.each([
    ['the DLQ of a pipeline', (stream: string) => `${stream}:dlq`, 'is a DLQ'],
    ['an engine key', () => 'synapse:broadcast', 'internal key'],
    ['a BullMQ key', () => 'bull:notifications:wait', 'internal key'],
    ['__proto__', () => '__proto__', 'no pipeline reads'],
    ['a stream no pipeline reads', () => key('elsewhere'), 'no pipeline reads'],
  ])('refuses %s with 403, writing nothing', async (_title, target, message) => {
    const name = key('p');
    const stream = key('in');
    const f = await start({ pipelines: { [name]: pipelineYaml({ name, stream, out: key('out') }) } });
    const to = target(stream);
    const before = await f.client.exists(to);
    const res = await f.inject({ method: 'POST', url: `/events/${encodeURIComponent(to)}`, payload: ping(1) });
    expect(res.statusCode, res.body).toBe(403);
    expect(JSON.parse(res.body)).toMatchObject({ error: 'stream_not_allowed', message: expect.stringContaining(message) });
    expect(await f.client.exists(to)).toBe(before);
    expect(metricValue(await f.engine.metrics.registry.metrics(), 'synapse_refused_total', { limit: 'admin.publish_stream' })).toBe(1);
  });

  it('writes to a pipeline\'s source stream, and to SYNAPSE_ADMIN_PUBLISH_STREAMS names and prefixes', async () => {
    const name = key('p');
    const stream = key('in');
    const f = await start({ pipelines: { [name]: pipelineYaml({ name, stream, out: key('out') }) }, admin: { publishStreams: ['exact-stream', 'ingest:*'] } });
    for (const to of [stream, 'exact-stream', `ingest:${key()}`]) {
      const res = await f.inject({ method: 'POST', url: `/events/${encodeURIComponent(to)}`, payload: ping(1) });
      expect(res.statusCode, `${to}: ${res.body}`).toBe(201);
    }
    expect((await f.inject({ method: 'POST', url: '/events/exact-stream2', payload: ping(1) })).statusCode).toBe(403);
  });

  it('answers 409 for an allowed name whose key is not a stream', async () => {
    const to = `ingest:${key()}`;
    const f = await start({ admin: { publishStreams: ['ingest:*'] } });
    await f.client.set(to, 'a string');
    const res = await f.inject({ method: 'POST', url: `/events/${encodeURIComponent(to)}`, payload: ping(1) });
    expect(res.statusCode, res.body).toBe(409);
    expect(JSON.parse(res.body).error).toBe('not_a_stream');
    expect(await f.client.get(to)).toBe('a string');
  });
});
