import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { key, ping, pipelineYaml, publish, startEngine, type EngineFixture } from '../../helpers/engine.ts';
import { startTestRedis, waitFor, type TestRedis } from '../../helpers/redis.ts';

let redis: TestRedis;
let open: EngineFixture[] = [];
let aborts: AbortController[] = [];

beforeAll(async () => {
  redis = await startTestRedis();
});
afterEach(async () => {
  for (const a of aborts.splice(0)) a.abort();
  await Promise.all(open.splice(0).map((f) => f.close()));
});
afterAll(async () => {
  await redis?.close();
});

async function start(opts: Parameters<typeof startEngine>[0] = {}): Promise<EngineFixture> {
  const f = await startEngine({ redis, ...opts });
  open.push(f);
  return f;
}

interface SseEvent { event?: string; id?: string; data?: string; comment?: string }

/** Opens a server-sent event stream over real HTTP and collects what arrives. */
async function openSse(url: string, headers: Record<string, string> = {}) {
  const abort = new AbortController();
  aborts.push(abort);
  const res = await fetch(url, { headers: { accept: 'text/event-stream', ...headers }, signal: abort.signal });
  const events: SseEvent[] = [];
  let buffer = '';
  const reading = (async () => {
    const decoder = new TextDecoder();
    try {
      for await (const chunk of res.body as unknown as AsyncIterable<Uint8Array>) {
        buffer += decoder.decode(chunk, { stream: true });
        let end: number;
        while ((end = buffer.indexOf('\n\n')) >= 0) {
          const block = buffer.slice(0, end);
          buffer = buffer.slice(end + 2);
          const e: SseEvent = {};
          for (const line of block.split('\n')) {
            if (line.startsWith(':')) e.comment = line.slice(1).trim();
            else {
              const i = line.indexOf(':');
              const field = line.slice(0, i) as 'event' | 'id' | 'data';
              const value = line.slice(i + 1).replace(/^ /, '');
              e[field] = e[field] === undefined ? value : `${e[field]}\n${value}`;
            }
          }
          events.push(e);
        }
      }
    } catch {
      // aborted at the end of the test
    }
  })();
  return { res, events, abort, reading };
}

describe('GET /tap/:pipeline', () => {
  it("streams each event's path through the stages as server-sent `trace` events", async () => {
    const name = key('p');
    const stream = key('in');
    const other = key('other');
    const otherStream = key('other-in');
    const f = await start({
      pipelines: {
        [name]: pipelineYaml({ name, stream, out: key('out') }),
        [other]: pipelineYaml({ name: other, stream: otherStream, out: key('out') }),
      },
    });
    const address = await f.app.listen({ host: '127.0.0.1', port: 0 });
    const tap = await openSse(`${address}/tap/${name}`);
    expect(tap.res.status).toBe(200);
    expect(tap.res.headers.get('content-type')).toMatch(/^text\/event-stream/);
    await waitFor(() => tap.events.some((e) => e.comment?.startsWith('tap on')), 'the tap greeting');

    const invalid = { event: 'ping', data: { n: 'x' } };
    const ids = await publish(f.client, stream, [ping(1), ping(2, { keep: false }), invalid, ping(13)]);
    const traces = await waitFor(() => {
      const t = tap.events.filter((e) => e.event === 'trace');
      return t.length >= 4 && t;
    }, 'four trace events');
    expect(traces.map((t) => t.id)).toEqual(ids);
    const [sunk, filtered, badEvent, badTransform] = traces.map((t) => JSON.parse(t.data!));

    expect(sunk).toEqual({
      pipeline: name, id: ids[0], outcome: 'sunk', event: ping(1), value: { n: 1, version: 1 },
      path: [
        { stage: 'decode', result: 'passed' },
        { stage: 'validate', result: 'passed' },
        { stage: 'filter', result: 'passed' },
        { stage: 'transform', result: 'passed' },
        { stage: 'sink', result: 'passed', detail: 'publish' },
      ],
    });
    expect(filtered).toMatchObject({ outcome: 'filtered', path: [{ stage: 'decode' }, { stage: 'validate' }, { stage: 'filter', result: 'filtered', detail: expect.stringContaining('data.keep = true') }] });
    expect(filtered.path).toHaveLength(3);
    expect(badEvent).toMatchObject({ outcome: 'dlq', path: [{ stage: 'decode', result: 'passed' }, { stage: 'validate', result: 'failed', detail: expect.stringContaining('data.n') }] });
    expect(badEvent.path).toHaveLength(2);
    expect(badTransform).toMatchObject({
      outcome: 'dlq',
      path: [{ stage: 'decode' }, { stage: 'validate' }, { stage: 'filter', result: 'passed' }, { stage: 'transform', result: 'failed', detail: expect.stringContaining('thirteen') }],
    });

    // Nothing of the other pipeline shows up on this tap.
    const [otherId] = await publish(f.client, otherStream, [ping(3)]);
    await waitFor(() => f.engine.handles.get(other)!.counters.sunk === 1, 'the other pipeline to settle');
    await publish(f.client, stream, [ping(4)]);
    await waitFor(() => tap.events.filter((e) => e.event === 'trace').length >= 5, 'the fifth trace');
    expect(tap.events.filter((e) => e.event === 'trace').every((e) => JSON.parse(e.data!).pipeline === name)).toBe(true);
    expect(tap.events.map((e) => e.id)).not.toContain(otherId);

    // A client going away unsubscribes it.
    const listeners = f.engine.listenerCount('settled');
    tap.abort.abort();
    await tap.reading;
    await waitFor(() => f.engine.listenerCount('settled') === listeners - 1, 'the tap to unsubscribe');
  });

  it('404s an unknown pipeline, as JSON', async () => {
    const f = await start();
    const address = await f.app.listen({ host: '127.0.0.1', port: 0 });
    const res = await fetch(`${address}/tap/${key('nope')}`);
    expect(res.status).toBe(404);
    expect(await res.json()).toMatchObject({ error: 'not_found' });
    const injected = await f.inject({ method: 'GET', url: `/tap/${key('nope')}` });
    expect(injected.statusCode).toBe(404);
  });

  it('needs the token when one is set', async () => {
    const name = key('p');
    const token = key('token');
    const f = await start({ token, pipelines: { [name]: pipelineYaml({ name, stream: key('in'), out: key('out') }) } });
    const address = await f.app.listen({ host: '127.0.0.1', port: 0 });
    const denied = await fetch(`${address}/tap/${name}`);
    expect(denied.status).toBe(401);
    await denied.body?.cancel();
    const tap = await openSse(`${address}/tap/${name}`, { authorization: `Bearer ${token}` });
    expect(tap.res.status).toBe(200);
  });

  it('a hostile event (nested deeper than JSON.stringify can go, or with __proto__ keys) neither stops the engine nor the tap', async () => {
    const name = key('p');
    const stream = key('in');
    const f = await start({ pipelines: { [name]: pipelineYaml({ name, stream, out: key('out') }) } });
    const address = await f.app.listen({ host: '127.0.0.1', port: 0 });
    const tap = await openSse(`${address}/tap/${name}`);
    await waitFor(() => tap.events.some((e) => e.comment?.startsWith('tap on')), 'the tap greeting');
    const deep = `${'['.repeat(200_000)}${']'.repeat(200_000)}`;
    const proto = '{"event":"ping","data":{"n":1,"__proto__":{"polluted":true}},"__proto__":{"polluted":true}}';
    // A huge event comes cut, and the traces behind it are not dropped for it.
    const huge = ping(2, { tag: '<img src=x onerror=alert(1)>'.repeat(20_000) });
    const ids = await publish(f.client, stream, [deep, proto, huge, ping(1)]);
    const traces = await waitFor(() => {
      const t = tap.events.filter((e) => e.event === 'trace');
      return t.length >= 4 && t;
    }, 'four trace events');
    expect(traces.map((t) => t.id)).toEqual(ids);
    const cut = JSON.parse(traces[2]!.data!);
    expect(cut).toMatchObject({ outcome: 'sunk', eventCut: JSON.stringify(huge).length });
    expect(cut.event).toBe(JSON.stringify(huge).slice(0, 4096));
    expect(traces[2]!.data!.length).toBeLessThan(20_000);
    expect(JSON.parse(traces[0]!.data!).outcome).toBe('dlq');
    expect(({} as Record<string, unknown>).polluted).toBeUndefined();
    expect(f.engine.handles.get(name)!.status).not.toBe('failed');
  });
});
