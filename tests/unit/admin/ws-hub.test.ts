import { EventEmitter } from 'node:events';
import type { Redis } from 'ioredis';
import { SignJWT } from 'jose';
import { describe, expect, it } from 'vitest';
import { silentLogger } from '../../../engine/logger.ts';
import { WsHub, type HubSocket } from '../../../engine/admin/ws-hub.ts';

/** A socket that records what the hub sends it. */
class FakeSocket extends EventEmitter {
  readonly sent: unknown[] = [];
  bufferedAmount = 0;
  readyState = 1;
  send(data: string) {
    this.sent.push(JSON.parse(data));
  }
  close() {}
  terminate() {}
  ping() {}
  say(msg: unknown) {
    this.emit('message', Buffer.from(JSON.stringify(msg)));
  }
}

const noRedis = {} as Redis;
const secret = 'test-secret-0123456789';

async function jwt(claims: Record<string, unknown>, sub = 'u1'): Promise<string> {
  return new SignJWT(claims).setProtectedHeader({ alg: 'HS256' }).setSubject(sub).sign(new TextEncoder().encode(secret));
}

describe('WsHub private channels', () => {
  it('refuse a client without credentials, once the engine has credentials configured', async () => {
    const hub = new WsHub(noRedis, silentLogger, secret, { privateChannels: ['ops'] });
    const s = new FakeSocket();
    hub.add(s as unknown as HubSocket, await hub.identify(undefined, undefined));
    s.say({ subscribe: 'ops' });
    s.say({ subscribe: 'platform' });
    expect(s.sent.slice(1)).toEqual([
      expect.objectContaining({ error: expect.stringContaining("channel 'ops' is private"), channel: 'ops' }),
      expect.objectContaining({ subscribed: 'platform' }),
    ]);
  });

  it('admit a JWT whose channels claim names the channel, and the admin token', async () => {
    const hub = new WsHub(noRedis, silentLogger, secret, { adminToken: 'admin', privateChannels: ['ops'] });
    const user = new FakeSocket();
    hub.add(user as unknown as HubSocket, await hub.identify(await jwt({ channels: ['ops'] }), undefined));
    user.say({ subscribe: 'ops' });
    expect(user.sent.at(-1)).toMatchObject({ subscribed: 'ops', userId: 'u1' });

    const admin = new FakeSocket();
    hub.add(admin as unknown as HubSocket, await hub.identify(undefined, 'admin'));
    admin.say({ subscribe: 'ops' });
    expect(admin.sent.at(-1)).toMatchObject({ subscribed: 'ops' });
    await expect(hub.identify(undefined, 'wrong')).rejects.toThrow(/access_token/);
  });

  it('are open on an engine with no credentials configured (development)', async () => {
    const hub = new WsHub(noRedis, silentLogger, undefined, { privateChannels: ['ops'] });
    const s = new FakeSocket();
    hub.add(s as unknown as HubSocket, await hub.identify(undefined, undefined));
    s.say({ subscribe: 'ops' });
    expect(s.sent.at(-1)).toMatchObject({ subscribed: 'ops' });
  });
});
