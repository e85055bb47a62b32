import { once } from 'node:events';
import { describe, expect, it } from 'vitest';
import { entries, hasStackTrace, key, ping, PING_ID, pipelineYaml, publish, useEngines } from '../../helpers/engine.ts';
import { waitFor } from '../../helpers/redis.ts';

const { start } = useEngines();

describe('GET /streams', () => {
  it('shows each stream the pipelines use, with its length, groups, pending and lag', async () => {
    const name = key('p');
    const stream = key('in');
    const out = key('out');
    const f = await start({ pipelines: { [name]: pipelineYaml({ name, stream, out }) } });
    // 2 sunk, 1 to the DLQ.
    await publish(f.client, stream, [ping(1), ping(2), { event: 'ping', data: {} }]);
    await waitFor(async () => (await f.client.xlen(out)) === 2 && (await f.client.xlen(`${stream}:dlq`)) === 1, 'outputs and the DLQ entry');
    const consumer = f.engine.handles.get(name)!.consumer!;
    const parked = Promise.race([once(consumer, 'idle'), once(consumer, 'settled')]);
    await f.inject({ method: 'POST', url: `/pipelines/${name}/pause` });
    await parked;
    // Two more the group has not read (lag), one read by another consumer and not acked (pending).
    await publish(f.client, stream, [ping(3), ping(4)]);
    await f.client.xreadgroup('GROUP', name, 'ghost', 'COUNT', 1, 'STREAMS', stream, '>');

    const res = await f.inject({ method: 'GET', url: '/streams' });
    expect(res.statusCode).toBe(200);
    const streams = JSON.parse(res.body).streams as { stream: string; role: string; length: number; groups: Record<string, unknown>[] }[];
    const byName = new Map(streams.map((s) => [s.stream, s]));
    expect(byName.get(stream)).toEqual({
      stream, role: 'source', length: 5,
      groups: [{ name, consumers: 2, pending: 1, lag: 1, lastDeliveredId: expect.stringMatching(/^\d+-\d+$/) }],
    });
    expect(byName.get(`${stream}:dlq`)).toEqual({ stream: `${stream}:dlq`, role: 'dlq', length: 1, groups: [] });
    expect(byName.get(out)).toEqual({ stream: out, role: 'output', length: 2, groups: [] });
  });

  it('shows a source stream nobody has written to yet with length 0', async () => {
    const name = key('p');
    const stream = key('in');
    const f = await start({ pipelines: { [name]: pipelineYaml({ name, stream, out: key('out') }) } });
    await waitFor(async () => (await f.client.exists(stream)) === 1, 'the group (MKSTREAM)');
    const streams = JSON.parse((await f.inject({ method: 'GET', url: '/streams' })).body).streams;
    expect(streams.find((s: { stream: string }) => s.stream === stream)).toMatchObject({ length: 0, groups: [{ name, pending: 0, lag: 0 }] });
  });
});

/** Lets POST /events write to the tests' fresh streams, which no pipeline reads. */
const ANY_TEST_STREAM = { admin: { publishStreams: ['test-*'] } };

describe('POST /events/:stream', () => {
  it('publishes a valid event (201): XADDed as its payload', async () => {
    const f = await start(ANY_TEST_STREAM);
    const stream = key('events');
    const event = ping(1);
    const res = await f.inject({ method: 'POST', url: `/events/${stream}`, payload: event });
    expect(res.statusCode, res.body).toBe(201);
    const { id } = JSON.parse(res.body);
    expect(JSON.parse(res.body)).toEqual({ id: expect.stringMatching(/^\d+-\d+$/), stream });
    const written = await entries(f.client, stream);
    expect(written).toEqual([{ id, fields: { payload: JSON.stringify(event) } }]);
  });

  it('fills a missing timestamp (now) and source (?source=, else synapse-admin), as the Publisher does', async () => {
    const f = await start(ANY_TEST_STREAM);
    const stream = key('events');
    const before = Date.now();
    const bare = { event: 'ping', data: { n: 1 } };
    expect((await f.inject({ method: 'POST', url: `/events/${stream}`, payload: bare })).statusCode).toBe(201);
    expect((await f.inject({ method: 'POST', url: `/events/${stream}?source=billing`, payload: bare })).statusCode).toBe(201);
    const [first, second] = (await entries(f.client, stream)).map((e) => JSON.parse(e.fields.payload!) as { source: string; timestamp: string });
    expect(first).toMatchObject({ ...bare, source: 'synapse-admin' });
    expect(second).toMatchObject({ ...bare, source: 'billing' });
    expect(Date.parse(first!.timestamp)).toBeGreaterThanOrEqual(before - 1000);
    expect(Date.parse(first!.timestamp)).toBeLessThanOrEqual(Date.now() + 1000);
    // Given ones are kept.
    expect((await f.inject({ method: 'POST', url: `/events/${stream}?source=billing`, payload: ping(2) })).statusCode).toBe(201);
    expect(JSON.parse((await entries(f.client, stream))[2]!.fields.payload!)).toEqual(ping(2));
  });

  it('a running pipeline picks up what was published', async () => {
    const name = key('p');
    const stream = key('in');
    const out = key('out');
    const f = await start({ pipelines: { [name]: pipelineYaml({ name, stream, out }) } });
    expect((await f.inject({ method: 'POST', url: `/events/${stream}`, payload: ping(5) })).statusCode).toBe(201);
    await waitFor(async () => (await f.client.xlen(out)) === 1, 'the output');
  });

  const invalid: { title: string; body: unknown; query?: string; message: RegExp }[] = [
    { title: 'an event its schema rejects', body: { event: 'ping', data: { n: 'one' } }, message: new RegExp(`invalid against ${PING_ID.replace(/[.]/g, '\\.')}.*data\\.n`) },
    { title: 'an event missing a required field', body: { event: 'ping' }, message: /data/ },
    { title: 'an event type no schema declares', body: { event: 'nobody-knows', data: {} }, message: /no schema declares event type 'nobody-knows'/ },
    { title: 'an event without a type', body: { data: { n: 1 } }, message: /no 'event' type/ },
    { title: 'an event failing the schema named in ?schema=', body: { event: 'pong', data: {} }, query: `?schema=${encodeURIComponent(PING_ID)}`, message: /invalid against/ },
    { title: 'an unknown ?schema=', body: ping(1), query: '?schema=https%3A%2F%2Fnope.test%2Fx.json', message: /unknown schema/ },
  ];

  it.each(invalid)('422 for $title; nothing is written', async ({ body, query, message }) => {
    const f = await start(ANY_TEST_STREAM);
    const stream = key('events');
    const res = await f.inject({ method: 'POST', url: `/events/${stream}${query ?? ''}`, payload: body as Record<string, unknown> });
    expect(res.statusCode, res.body).toBe(422);
    const reply = JSON.parse(res.body);
    expect(reply.error).toBe('event_invalid');
    expect(reply.message).toMatch(message);
    expect(hasStackTrace(res.body)).toBe(false);
    expect(await f.client.exists(stream)).toBe(0);
  });

  it('validates against ?schema= instead of the type when asked', async () => {
    const f = await start(ANY_TEST_STREAM);
    const stream = key('events');
    const res = await f.inject({ method: 'POST', url: `/events/${stream}?schema=${encodeURIComponent(PING_ID)}`, payload: ping(2) });
    expect(res.statusCode, res.body).toBe(201);
    expect(await f.client.xlen(stream)).toBe(1);
  });

  it('400 for a body that is not a JSON object', async () => {
    const f = await start(ANY_TEST_STREAM);
    const stream = key('events');
    const res = await f.inject({ method: 'POST', url: `/events/${stream}`, headers: { 'content-type': 'application/json' }, payload: '[1,2]' });
    expect([400, 422]).toContain(res.statusCode);
    expect(hasStackTrace(res.body)).toBe(false);
    expect(await f.client.exists(stream)).toBe(0);
  });
});
