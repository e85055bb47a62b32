import { describe, expect, it } from 'vitest';
import { type EngineFixture, hasStackTrace, key, useEngines } from '../../helpers/engine.ts';
import { waitFor } from '../../helpers/redis.ts';

const { start } = useEngines();

async function servicesWith(f: EngineFixture, capability: string): Promise<{ name: string }[]> {
  const res = await f.inject({ method: 'GET', url: `/services?capability=${encodeURIComponent(capability)}` });
  expect(res.statusCode).toBe(200);
  return JSON.parse(res.body).services;
}

describe('the service registry', () => {
  it('finds a registered service by capability until its TTL runs out', async () => {
    const f = await start();
    const name = key('svc');
    const capability = key('cap');
    const res = await f.inject({
      method: 'POST', url: '/services',
      payload: { name, url: 'http://127.0.0.1:9999', capabilities: [capability, 'gpu', capability], metadata: { zone: 'a' }, ttlSeconds: 1 },
    });
    expect(res.statusCode, res.body).toBe(200);
    const record = JSON.parse(res.body);
    expect(record).toMatchObject({ name, url: 'http://127.0.0.1:9999', capabilities: [capability, 'gpu'].sort(), metadata: { zone: 'a' }, ttlSeconds: 1 });
    expect(record.registeredAt).toBe(record.lastHeartbeat);

    expect(await servicesWith(f, capability)).toEqual([expect.objectContaining({ name, capabilities: [capability, 'gpu'].sort() })]);
    expect(await servicesWith(f, key('other-cap'))).toEqual([]);
    const all = JSON.parse((await f.inject({ method: 'GET', url: '/services' })).body).services;
    expect(all.map((s: { name: string }) => s.name)).toContain(name);

    // No heartbeat: gone once the TTL has run out.
    await waitFor(async () => (await servicesWith(f, capability)).length === 0, 'the service to expire', 10_000);
  });

  it('a key under the registry\'s prefix that holds no record is skipped, not a 500; a heartbeat over it starts afresh', async () => {
    const f = await start();
    const name = key('svc');
    const capability = key('cap');
    const junk = key('junk');
    await f.client.set(`synapse:service:${junk}`, 'not json', 'EX', 60);
    await f.client.set(`synapse:service:${key('wrong')}`, '{"hello": 1}', 'EX', 60);
    // Almost records: capabilities that are no list, a name that is no string, no name at all.
    const nearly = key('nearly');
    await f.client.set(`synapse:service:${nearly}`, JSON.stringify({ name: nearly, capabilities: capability }), 'EX', 60);
    await f.client.set(`synapse:service:${key('numbered')}`, JSON.stringify({ name: 5, capabilities: [capability] }), 'EX', 60);
    await f.client.set(`synapse:service:${key('nameless')}`, JSON.stringify({ capabilities: [capability] }), 'EX', 60);
    expect((await f.inject({ method: 'POST', url: '/services', payload: { name, capabilities: [capability] } })).statusCode).toBe(200);
    const res = await f.inject({ method: 'GET', url: '/services' });
    expect(res.statusCode, res.body).toBe(200);
    const names = JSON.parse(res.body).services.map((s: { name: string }) => s.name);
    expect(names).toContain(name);
    expect(names).not.toContain(junk);
    expect(names).not.toContain(nearly);
    expect(await servicesWith(f, capability)).toEqual([expect.objectContaining({ name })]);
    const over = await f.inject({ method: 'POST', url: '/services', payload: { name: junk, capabilities: [capability] } });
    expect(over.statusCode, over.body).toBe(200);
    expect(JSON.parse(over.body).registeredAt).toBe(JSON.parse(over.body).lastHeartbeat);
  });

  it('lists services by name; one registered without capabilities has none', async () => {
    const f = await start();
    const capability = key('cap');
    const [first, second, third] = ['b', 'c', 'a'].map((p) => `${p}-${key('svc')}`);
    for (const name of [first, second, third]) {
      expect((await f.inject({ method: 'POST', url: '/services', payload: { name, capabilities: [capability] } })).statusCode).toBe(200);
    }
    expect((await servicesWith(f, capability)).map((s) => s.name)).toEqual([third, first, second]);
    const bare = JSON.parse((await f.inject({ method: 'POST', url: '/services', payload: { name: key('bare') } })).body);
    expect(bare.capabilities).toEqual([]);
  });

  it('a heartbeat keeps the first registration time and refreshes the record', async () => {
    const f = await start();
    const name = key('svc');
    const capability = key('cap');
    const first = JSON.parse((await f.inject({ method: 'POST', url: '/services', payload: { name, capabilities: [capability] } })).body);
    expect(first.ttlSeconds).toBe(30);
    const second = await waitFor(async () => {
      const r = JSON.parse((await f.inject({ method: 'POST', url: '/services', payload: { name, capabilities: [capability, 'more'], ttlSeconds: 60 } })).body);
      return r.lastHeartbeat !== first.lastHeartbeat && r;
    }, 'a later heartbeat');
    expect(second.registeredAt).toBe(first.registeredAt);
    expect(await servicesWith(f, 'more')).toEqual(expect.arrayContaining([expect.objectContaining({ name, ttlSeconds: 60 })]));
    expect(await f.client.ttl(`synapse:service:${name}`)).toBeGreaterThan(30);
  });

  it('DELETE removes a service at once (204); an unknown one is 404', async () => {
    const f = await start();
    const name = key('svc');
    const capability = key('cap');
    await f.inject({ method: 'POST', url: '/services', payload: { name, capabilities: [capability], ttlSeconds: 600 } });
    expect(await servicesWith(f, capability)).toHaveLength(1);
    const del = await f.inject({ method: 'DELETE', url: `/services/${name}` });
    expect(del.statusCode).toBe(204);
    expect(del.body).toBe('');
    expect(await servicesWith(f, capability)).toEqual([]);
    const again = await f.inject({ method: 'DELETE', url: `/services/${name}` });
    expect(again.statusCode).toBe(404);
    expect(JSON.parse(again.body).error).toBe('not_found');
    expect(hasStackTrace(again.body)).toBe(false);
  });

  it('400 for a registration without a name, a bad name or a bad TTL', async () => {
    const f = await start();
    for (const payload of [{ capabilities: ['x'] }, { name: '../etc' }, { name: key(), ttlSeconds: 0 }, { name: key(), extra: 1 }]) {
      const res = await f.inject({ method: 'POST', url: '/services', payload });
      expect(res.statusCode, JSON.stringify(payload)).toBe(400);
      expect(JSON.parse(res.body).error).toBe('bad_request');
      expect(hasStackTrace(res.body)).toBe(false);
    }
  });
});
