import { chmod, mkdtemp, readdir, readFile, rm, writeFile } from 'node:fs/promises';
import { createServer, type Server, type Socket } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Redis } from 'ioredis';
import { afterEach, describe, expect, it } from 'vitest';
import { RedisUnavailableError } from '../../engine/errors.ts';
import { waitFor } from '../helpers/redis.ts';
import { freePort, redisAnswers, redisServerOnPath, startRedisServer, type OwnedRedis } from '../../engine/runtime/redis-server.ts';

// The redis-server processes the engine (its embedded default) and the tests start: what answers
// as a Redis, what a server is started with, and what a start that fails says.

const dirs: string[] = [];
const owned: OwnedRedis[] = [];
const closers: (() => unknown)[] = [];

async function dir(): Promise<string> {
  const d = await mkdtemp(join(tmpdir(), 'synapse-it-server-'));
  dirs.push(d);
  return d;
}

async function server(opts: Partial<Parameters<typeof startRedisServer>[0]> = {}): Promise<OwnedRedis> {
  const s = await startRedisServer({ dir: await dir(), ...opts });
  owned.push(s);
  return s;
}

function client(url: string): Redis {
  const c = new Redis(url, { maxRetriesPerRequest: 1 });
  c.on('error', () => undefined);
  closers.push(() => c.disconnect());
  return c;
}

/** A TCP server on a free port that answers each connection with `reply` (or never, when undefined). */
async function fakeServer(reply?: string): Promise<number> {
  const sockets = new Set<Socket>();
  const srv: Server = createServer((socket) => {
    sockets.add(socket);
    socket.on('error', () => undefined);
    if (reply !== undefined) socket.once('data', () => socket.write(reply));
  });
  await new Promise<void>((r) => srv.listen(0, '127.0.0.1', r));
  closers.push(() => {
    for (const socket of sockets) socket.destroy();
    return new Promise((r) => srv.close(r));
  });
  return (srv.address() as { port: number }).port;
}

afterEach(async () => {
  for (const c of closers.splice(0)) await c();
  for (const s of owned.splice(0)) await s.kill();
  await Promise.all(dirs.splice(0).map((d) => rm(d, { recursive: true, force: true })));
});

describe('what answers as a Redis (redisAnswers)', () => {
  it('a Redis answering PONG does; one that asks for a password (NOAUTH) or is loading its data does too', async () => {
    const s = await server();
    expect(await redisAnswers('127.0.0.1', s.port)).toBe(true);
    expect(await redisAnswers('127.0.0.1', await fakeServer('-NOAUTH Authentication required.\r\n'))).toBe(true);
    expect(await redisAnswers('127.0.0.1', await fakeServer('-LOADING Redis is loading the dataset in memory\r\n'))).toBe(true);
  });

  it('a closed port, a server answering something else, or one that never answers does not', async () => {
    expect(await redisAnswers('127.0.0.1', await freePort())).toBe(false);
    expect(await redisAnswers('127.0.0.1', await fakeServer('HTTP/1.1 400 Bad Request\r\n\r\n'))).toBe(false);
    expect(await redisAnswers('127.0.0.1', await fakeServer('-ERR unknown command\r\n'))).toBe(false);
    // The reply must start so: PONG further on is no answer.
    expect(await redisAnswers('127.0.0.1', await fakeServer('-ERR not +PONG\r\n'))).toBe(false);
    const silent = await fakeServer();
    const began = performance.now();
    expect(await redisAnswers('127.0.0.1', silent, 300)).toBe(false);
    // It gave up after its time limit, not at once.
    expect(performance.now() - began).toBeGreaterThanOrEqual(250);
  });
});

describe('starting a redis-server', () => {
  it('a free port is one a server can listen on', async () => {
    const port = await freePort();
    expect(port).toBeGreaterThan(0);
    const srv = createServer();
    await new Promise<void>((r, j) => srv.once('error', j).listen(port, '127.0.0.1', r));
    await new Promise((r) => srv.close(r));
  });

  it('redis-server is on the path; a missing program or one that fails is not', async () => {
    expect(await redisServerOnPath()).toBe(true);
    expect(await redisServerOnPath('synapse-no-such-program')).toBe(false);
    expect(await redisServerOnPath('false')).toBe(false);
  });

  it('listens on 127.0.0.1 only, protected, logs into its directory, and keeps an append-only file only when persistent', async () => {
    const d = await dir();
    const port = await freePort();
    const s = await startRedisServer({ dir: join(d, 'data'), port, persistent: true });
    owned.push(s);
    expect(s).toMatchObject({ url: `redis://127.0.0.1:${port}`, port, dir: join(d, 'data') });
    const c = client(s.url);
    expect(await c.config('GET', 'bind')).toEqual(['bind', '127.0.0.1']);
    expect(await c.config('GET', 'protected-mode')).toEqual(['protected-mode', 'yes']);
    expect(await c.config('GET', 'appendonly')).toEqual(['appendonly', 'yes']);
    expect(await c.config('GET', 'save')).toEqual(['save', '']);
    expect(await c.config('GET', 'dir')).toEqual(['dir', join(d, 'data')]);
    expect(await c.config('GET', 'logfile')).toEqual(['logfile', join(d, 'data', 'redis.log')]);
    expect(await readFile(join(d, 'data', 'redis.log'), 'utf8')).toContain('Ready to accept connections');

    const plain = await server({ args: ['--maxmemory', '12mb'] });
    const p = client(plain.url);
    expect(await p.config('GET', 'appendonly')).toEqual(['appendonly', 'no']);
    expect(await p.config('GET', 'maxmemory')).toEqual(['maxmemory', String(12 * 1024 * 1024)]);
  });

  it('a persistent server keeps its data across a kill and a restart on the same port; stop and kill are idempotent', async () => {
    const s = await server({ persistent: true });
    const pid = s.pid;
    expect(pid).toBeGreaterThan(0);
    const c = client(s.url);
    await c.set('kept', 'yes');
    // appendfsync everysec: a kill within the second may lose the last write; wait for it.
    await new Promise((r) => setTimeout(r, 1_100));
    await s.kill();
    await s.kill();
    expect(await redisAnswers('127.0.0.1', s.port)).toBe(false);
    await s.restart();
    expect(s.pid).not.toBe(pid);
    expect(await client(s.url).get('kept')).toBe('yes');
    await s.stop();
    await s.stop();
    expect(await redisAnswers('127.0.0.1', s.port)).toBe(false);
  });

  it('detached: the server is a process group of its own (a Ctrl-C for the engine does not reach it)', async () => {
    // Field 5 of /proc/<pid>/stat, after the command in parentheses, is the process group.
    const group = async (pid: number | 'self') => {
      const stat = await readFile(`/proc/${pid}/stat`, 'utf8');
      return Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[2]);
    };
    const detached = await server({ detached: true });
    expect(await group(detached.pid)).toBe(detached.pid);
    const attached = await server();
    expect(await group(attached.pid)).toBe(await group('self'));
  });

  it('a program that cannot run, or a server that exits at start, is a clear RedisUnavailableError', async () => {
    const missing = startRedisServer({ dir: await dir(), bin: 'synapse-no-such-redis' });
    await expect(missing).rejects.toBeInstanceOf(RedisUnavailableError);
    await expect(missing).rejects.toThrow(/^cannot start redis-server: spawn synapse-no-such-redis ENOENT$/);
    const d = await dir();
    const exits = startRedisServer({ dir: d, args: ['--synapse-no-such-option', 'x'] });
    await expect(exits).rejects.toBeInstanceOf(RedisUnavailableError);
    await expect(exits).rejects.toThrow(`redis-server exited with code 1 at start; see ${join(d, 'redis.log')}`);
  });

  it('a program that runs but never answers is given up after 10 s, and stopped', async () => {
    const d = await dir();
    const bin = join(d, 'silent-redis');
    await writeFile(bin, '#!/bin/sh\nwhile true; do sleep 1; done\n');
    await chmod(bin, 0o755);
    const running = async () => {
      const found: number[] = [];
      for (const pid of (await readdir('/proc')).filter((p) => /^\d+$/.test(p))) {
        const cmdline = await readFile(`/proc/${pid}/cmdline`, 'utf8').catch(() => '');
        if (cmdline.includes(bin)) found.push(Number(pid));
      }
      return found;
    };
    // The port is held by a server that never answers, so nothing else can take it meanwhile.
    const port = await fakeServer();
    const began = performance.now();
    const start = startRedisServer({ dir: d, port, bin });
    await expect(start).rejects.toThrow(`redis-server did not answer on port ${port} within 10 s`);
    expect(performance.now() - began).toBeGreaterThanOrEqual(10_000);
    await waitFor(async () => (await running()).length === 0, 'the silent program stopped');
  }, 30_000);
});
