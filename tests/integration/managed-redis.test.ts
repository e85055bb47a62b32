import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { Redis } from 'ioredis';
import { freePort, redisAnswers, startManagedRedis, type OwnedRedis } from '../../engine/runtime/redis-server.ts';

// The machine may run a Redis on 6379, so the embedded default is tested in its pieces:
// startManagedRedis is what `synapse run` calls when nothing answers there.
const roots: string[] = [];
const owned: OwnedRedis[] = [];
const clients: Redis[] = [];

async function root(): Promise<string> {
  const dir = await mkdtemp(join(tmpdir(), 'synapse-it-managed-'));
  roots.push(dir);
  return dir;
}

async function managed(dir: string) {
  const m = await startManagedRedis(dir);
  if (m.owned) owned.push(m.owned);
  return m;
}

function client(url: string): Redis {
  const c = new Redis(url, { maxRetriesPerRequest: 1, lazyConnect: false });
  c.on('error', () => undefined);
  clients.push(c);
  return c;
}

afterEach(async () => {
  for (const c of clients.splice(0)) c.disconnect();
  for (const o of owned.splice(0)) await o.stop();
  await Promise.all(roots.splice(0).map((d) => rm(d, { recursive: true, force: true })));
});

describe('the embedded Redis (startManagedRedis)', () => {
  it('starts a persistent redis-server, remembers its port, and a second call reuses it', async () => {
    const dir = await root();
    const first = await managed(dir);
    expect(first.owned).toBeDefined();
    const port = first.owned!.port;
    expect(first.url).toBe(`redis://127.0.0.1:${port}`);
    expect(await readFile(join(dir, 'redis.port'), 'utf8')).toBe(String(port));
    expect(await redisAnswers('127.0.0.1', port)).toBe(true);

    const c = client(first.url);
    expect(await c.config('GET', 'appendonly')).toEqual(['appendonly', 'yes']);
    expect(await c.config('GET', 'dir')).toEqual(['dir', join(dir, 'redis')]);

    const second = await managed(dir);
    expect(second).toEqual({ url: first.url });
  });

  it('keeps its data across a stop and a new start, and forgets the port when stopped', async () => {
    const dir = await root();
    const first = await managed(dir);
    const c = client(first.url);
    await c.xadd('test-persisted', '*', 'payload', '{"event":"kept"}');
    c.disconnect();
    await first.owned!.stop();
    expect(await redisAnswers('127.0.0.1', first.owned!.port)).toBe(false);
    await expect(readFile(join(dir, 'redis.port'), 'utf8')).rejects.toThrow(/ENOENT/);

    const again = await managed(dir);
    expect(again.owned).toBeDefined();
    const rows = (await client(again.url).xrange('test-persisted', '-', '+')) as [string, string[]][];
    expect(rows.map(([, f]) => f)).toEqual([['payload', '{"event":"kept"}']]);
  });

  it('ignores a remembered port that is no port, and runs its server in a process group of its own', async () => {
    for (const garbage of ['not a port', '-5', '0', '1.5', '65536', '70000', '1e9']) {
      const dir = await root();
      await writeFile(join(dir, 'redis.port'), garbage);
      const m = await managed(dir);
      expect(m.owned).toBeDefined();
      expect(await readFile(join(dir, 'redis.port'), 'utf8')).toBe(String(m.owned!.port));
      // Detached: a Ctrl-C meant for the engine does not reach it (field 5 of /proc/<pid>/stat).
      const stat = await readFile(`/proc/${m.owned!.pid}/stat`, 'utf8');
      expect(Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[2])).toBe(m.owned!.pid);
    }
  });

  it('starts a new server when the remembered port no longer answers', async () => {
    const dir = await root();
    const stale = await freePort();
    await writeFile(join(dir, 'redis.port'), String(stale));
    const m = await managed(dir);
    expect(m.owned).toBeDefined();
    expect(await redisAnswers('127.0.0.1', m.owned!.port)).toBe(true);
    expect(await readFile(join(dir, 'redis.port'), 'utf8')).toBe(String(m.owned!.port));
  });
});
