import { afterEach, describe, expect, it } from 'vitest';
import type { WsLimits } from '../../../engine/admin/ws-hub.ts';
import { metricValue, useEngines, type EngineFixture } from '../../helpers/engine.ts';
import { waitFor } from '../../helpers/redis.ts';
import { closeAllWs, connectWs, openWs } from '../../helpers/ws-client.ts';

// Issue #10, item 8: a WebSocket client sending subscribes with 60 KB channel names and never
// reading took the engine from 150 MB to 2 GB. Subscriptions per client, channel-name length,
// queued replies and connections (per IP and in total) are bounded, with metrics.

const { start } = useEngines();
afterEach(closeAllWs);

async function listening(limits: Partial<WsLimits>): Promise<{ f: EngineFixture; url: string }> {
  const f = await start({ admin: { wsLimits: limits } });
  await f.app.listen({ host: '127.0.0.1', port: 0 });
  const address = f.app.server.address();
  if (!address || typeof address === 'string') throw new Error('no port');
  return { f, url: `ws://127.0.0.1:${address.port}/ws` };
}

async function metric(f: EngineFixture, name: string, labels: Record<string, string> = {}) {
  return metricValue(await f.engine.metrics.registry.metrics(), name, labels);
}

describe('/ws limits', () => {
  it('a channel name over the limit is refused, and the reply does not echo it', async () => {
    const { f, url } = await listening({ maxChannelLength: 200 });
    const ws = await connectWs(url);
    ws.messages.length = 0;
    ws.send({ subscribe: 'c'.repeat(60 * 1024) });
    const reply = await ws.waitFor((m) => typeof m.error === 'string', 'the refusal');
    expect(reply.error).toContain('channel names are limited to 200 characters (SYNAPSE_WS_MAX_CHANNEL_LENGTH)');
    expect(JSON.stringify(reply).length).toBeLessThan(1024);
    expect(await ws.subscribe('c'.repeat(200))).toMatchObject({ subscribed: 'c'.repeat(200) });
    expect(await metric(f, 'synapse_refused_total', { limit: 'ws.channel_length' })).toBe(1);
  });

  it('subscriptions per client are capped; resubscribing or unsubscribing first is fine', async () => {
    const { f, url } = await listening({ maxSubscriptions: 3 });
    const ws = await connectWs(url);
    for (const c of ['a', 'b', 'c']) await ws.subscribe(c);
    expect(await metric(f, 'synapse_ws_subscriptions')).toBe(3);
    ws.messages.length = 0;
    await ws.subscribe('a');
    ws.send({ subscribe: 'd' });
    const refusal = await ws.waitFor((m) => m.channel === 'd' && typeof m.error === 'string', 'the refusal of a fourth channel');
    expect(refusal.error).toContain('at most 3 channels (SYNAPSE_WS_MAX_SUBSCRIPTIONS)');
    expect(ws.messages.some((m) => m.subscribed === 'd')).toBe(false);
    ws.send({ unsubscribe: 'c' });
    expect(await ws.subscribe('d')).toMatchObject({ subscribed: 'd' });
    expect(await metric(f, 'synapse_ws_subscriptions')).toBe(3);
    await ws.close();
    await waitFor(async () => (await metric(f, 'synapse_ws_subscriptions')) === 0, 'the closed client\'s subscriptions released');
  });

  it('connections per IP and in total are capped before the upgrade (429)', async () => {
    const perIp = await listening({ maxConnectionsPerIp: 2 });
    const a = await connectWs(perIp.url);
    await connectWs(perIp.url);
    await expect(openWs(perIp.url)).rejects.toThrow(/429/);
    expect(await metric(perIp.f, 'synapse_refused_total', { limit: 'ws.connections_per_ip' })).toBe(1);
    await a.close();
    await waitFor(async () => (await metric(perIp.f, 'synapse_ws_connections')) === 1, 'the hub to let the closed client go');
    await connectWs(perIp.url);
    expect(await metric(perIp.f, 'synapse_ws_connections')).toBe(2);

    const total = await listening({ maxConnections: 1 });
    await connectWs(total.url);
    await expect(openWs(total.url)).rejects.toThrow(/429/);
    expect(await metric(total.f, 'synapse_refused_total', { limit: 'ws.connections' })).toBe(1);
  });

  it('a client that sends without reading its replies is disconnected', async () => {
    const { f, url } = await listening({ maxBufferedBytes: 64 * 1024 });
    const ws = await connectWs(url);
    ws.pause();
    const message = { subscribe: 'flood', filter: { note: 'x'.repeat(900) } };
    let closed = false;
    void ws.closed.then(() => (closed = true));
    // Each reply echoes the ~1 KB filter: 40 MB of replies, far more than kernel buffers and the
    // limit hold.
    for (let i = 0; i < 40_000 && !closed; i++) {
      ws.send(message);
      if (i % 500 === 0) await new Promise((r) => setImmediate(r));
    }
    await waitFor(async () => (await metric(f, 'synapse_ws_connections')) === 0, 'the server to drop the client');
    expect(await metric(f, 'synapse_refused_total', { limit: 'ws.send_buffer' })).toBe(1);
  });
});
