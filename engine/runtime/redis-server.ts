import { execFile, spawn, type ChildProcess } from 'node:child_process';
import { mkdir, readFile, writeFile, rm } from 'node:fs/promises';
import { createServer, connect } from 'node:net';
import { join, resolve } from 'node:path';
import { once } from 'node:events';
import { promisify } from 'node:util';
import { Redis } from 'ioredis';
import { RedisUnavailableError } from '../errors.ts';

/** A redis-server process this program started and owns. */
export interface OwnedRedis {
  url: string;
  port: number;
  dir: string;
  pid: number;
  /** Stops the server (SHUTDOWN semantics via SIGTERM: it saves when persistent). Idempotent. */
  stop(): Promise<void>;
  /** Kills it at once (SIGKILL), as a crash would. */
  kill(): Promise<void>;
  /** Starts it again on the same port and data directory (after stop or kill). */
  restart(): Promise<void>;
}

/** A free TCP port on 127.0.0.1. */
export async function freePort(): Promise<number> {
  const srv = createServer();
  srv.listen(0, '127.0.0.1');
  await once(srv, 'listening');
  const port = (srv.address() as { port: number }).port;
  srv.close();
  await once(srv, 'close');
  return port;
}

/** Whether a Redis answers PING at host:port within `timeoutMs`: PONG, NOAUTH, or LOADING (still loading its data, it is there). */
export async function redisAnswers(host: string, port: number, timeoutMs = 500): Promise<boolean> {
  return new Promise((resolveAnswer) => {
    const socket = connect({ host, port });
    const done = (ok: boolean) => {
      socket.destroy();
      resolveAnswer(ok);
    };
    const timer = setTimeout(() => done(false), timeoutMs);
    socket.on('connect', () => socket.write('PING\r\n'));
    socket.on('data', (d) => {
      clearTimeout(timer);
      done(/^(\+PONG|-NOAUTH|-LOADING)/.test(d.toString()));
    });
    socket.on('error', () => {
      clearTimeout(timer);
      done(false);
    });
  });
}

/** Whether `redis-server` can be run. */
export async function redisServerOnPath(bin = 'redis-server'): Promise<boolean> {
  return new Promise((resolveFound) => {
    const child = spawn(bin, ['--version'], { stdio: 'ignore' });
    child.on('error', () => resolveFound(false));
    child.on('exit', (code) => resolveFound(code === 0));
  });
}

/**
 * Starts a redis-server of our own on 127.0.0.1. `persistent` turns on the append-only file, so
 * data survives a kill and restart (what the engine's embedded default and the outage tests need);
 * `args` are more redis-server options (e.g. `--cluster-enabled yes`).
 */
export async function startRedisServer(opts: { port?: number; dir: string; persistent?: boolean; bin?: string; detached?: boolean; args?: readonly string[] }): Promise<OwnedRedis> {
  const dir = resolve(opts.dir);
  await mkdir(dir, { recursive: true });
  const port = opts.port ?? (await freePort());
  let child: ChildProcess | undefined;
  const args = [
    '--port', String(port), '--bind', '127.0.0.1', '--dir', dir,
    '--save', '', '--appendonly', opts.persistent ? 'yes' : 'no', '--appendfsync', 'everysec',
    '--daemonize', 'no', '--protected-mode', 'yes', '--logfile', join(dir, 'redis.log'),
    ...(opts.args ?? []),
  ];
  const launch = async () => {
    // detached: a process group of its own, so a Ctrl-C meant for the engine does not kill the
    // server before the engine has settled its batches on it; the engine stops it after.
    child = spawn(opts.bin ?? 'redis-server', args, { stdio: 'ignore', detached: opts.detached ?? false });
    const exited = new Promise<never>((_, reject) => {
      child!.once('error', (err) => reject(new RedisUnavailableError(`cannot start redis-server: ${err.message}`)));
      child!.once('exit', (code) => reject(new RedisUnavailableError(`redis-server exited with code ${code} at start; see ${join(dir, 'redis.log')}`)));
    });
    exited.catch(() => undefined);
    const deadline = Date.now() + 10_000;
    for (;;) {
      const ok = await Promise.race([redisAnswers('127.0.0.1', port, 200), exited]);
      if (ok) break;
      if (Date.now() > deadline) {
        // Not left running: nothing would ever stop it.
        child.kill('SIGKILL');
        throw new RedisUnavailableError(`redis-server did not answer on port ${port} within 10 s`);
      }
      await new Promise((r) => setTimeout(r, 50));
    }
  };
  /** Ends the server with `signal` and waits until it has exited; nothing when it has already. */
  const end = async (signal: NodeJS.Signals) => {
    if (child!.exitCode !== null || child!.signalCode !== null) return;
    const exited = once(child!, 'exit');
    child!.kill(signal);
    await exited;
  };
  await launch();
  const owned: OwnedRedis = {
    url: `redis://127.0.0.1:${port}`,
    port,
    dir,
    get pid() {
      return child!.pid!;
    },
    stop: () => end('SIGTERM'),
    kill: () => end('SIGKILL'),
    async restart() {
      await end('SIGTERM');
      await launch();
    },
  };
  return owned;
}

/**
 * The engine's embedded default (SPEC §7): a persistent redis-server with its data under
 * `<root>/redis`, reused when one from an earlier run is still alive (its port is remembered in
 * `<root>/redis.port`), so two servers never share one data directory.
 */
export async function startManagedRedis(root: string): Promise<{ url: string; owned?: OwnedRedis }> {
  const portFile = join(root, 'redis.port');
  const remembered = Number(await readFile(portFile, 'utf8').catch(() => ''));
  if (Number.isInteger(remembered) && remembered > 0 && remembered < 65_536 && (await redisAnswers('127.0.0.1', remembered))) {
    return { url: `redis://127.0.0.1:${remembered}` };
  }
  const port = await freePort();
  const owned = await startRedisServer({ port, dir: join(root, 'redis'), persistent: true, detached: true });
  await writeFile(portFile, String(port));
  const stop = owned.stop.bind(owned);
  owned.stop = async () => {
    await stop();
    await rm(portFile, { force: true });
  };
  return { url: owned.url, owned };
}

/** A Redis Cluster of redis-server processes this program started (tests, `npm run bench -- --cluster`). */
export interface OwnedCluster {
  /** redis:// URL of the first master: any node works for `--redis` / REDIS_URL. */
  url: string;
  /** Every node, masters first. */
  nodes: OwnedRedis[];
  /** The directory holding every node's files. */
  dir: string;
  /** Kills every node and removes their files. */
  close(): Promise<void>;
}

async function portFree(port: number): Promise<boolean> {
  const srv = createServer();
  // (Not events.once for 'listening': it rejects when 'error' comes instead, with EADDRINUSE.)
  const ok = await new Promise<boolean>((resolve) => {
    srv.once('error', () => resolve(false));
    srv.once('listening', () => resolve(true));
    srv.listen(port, '127.0.0.1');
  });
  if (ok) {
    srv.close();
    await once(srv, 'close');
  }
  return ok;
}

/**
 * A port for a cluster node: its cluster bus listens on port + 10000, so both must be free and
 * below 65536 (outside the range the OS hands out for outgoing connections, to avoid a clash).
 */
async function clusterPort(taken: Set<number>): Promise<number> {
  for (let i = 0; i < 200; i++) {
    const port = 20_000 + Math.floor(Math.random() * 10_000);
    if (taken.has(port) || taken.has(port + 10_000)) continue;
    if ((await portFree(port)) && (await portFree(port + 10_000))) {
      taken.add(port).add(port + 10_000);
      return port;
    }
  }
  throw new Error('no free port pair for a cluster node');
}

/**
 * Starts `masters` redis-servers with `--cluster-enabled yes` (and `replicas` replicas per master)
 * on free ports under `dir`, joins them with `redis-cli --cluster create`, and waits until every
 * node says `cluster_state:ok`. `persistent` (default true) gives each node an append-only file,
 * so a test can kill and restart one.
 */
export async function startRedisCluster(opts: { dir: string; masters?: number; replicas?: number; persistent?: boolean }): Promise<OwnedCluster> {
  const run = promisify(execFile);
  const masters = opts.masters ?? 3;
  const replicas = opts.replicas ?? 0;
  const dir = resolve(opts.dir);
  const taken = new Set<number>();
  const nodes: OwnedRedis[] = [];
  const close = async () => {
    await Promise.all(nodes.map((n) => n.kill()));
    await rm(dir, { recursive: true, force: true });
  };
  try {
    for (let i = 0; i < masters * (1 + replicas); i++) {
      const port = await clusterPort(taken);
      nodes.push(await startRedisServer({
        dir: join(dir, `node-${port}`), port, persistent: opts.persistent ?? true,
        args: ['--cluster-enabled', 'yes', '--cluster-config-file', 'nodes.conf', '--cluster-node-timeout', '2000'],
      }));
    }
    await run('redis-cli', ['--cluster', 'create', ...nodes.map((n) => `127.0.0.1:${n.port}`), '--cluster-replicas', String(replicas), '--cluster-yes'], { timeout: 60_000 });
    const allOk = async () => {
      for (const n of nodes) {
        const probe = new Redis(n.url, { lazyConnect: true, maxRetriesPerRequest: 1 });
        try {
          await probe.connect();
          if (!String(await probe.cluster('INFO')).includes('cluster_state:ok')) return false;
        } finally {
          probe.disconnect();
        }
      }
      return true;
    };
    const deadline = Date.now() + 30_000;
    while (!(await allOk())) {
      if (Date.now() > deadline) throw new Error('the cluster nodes did not all say cluster_state:ok within 30 s');
      await new Promise((r) => setTimeout(r, 200));
    }
  } catch (err) {
    await close();
    throw err;
  }
  return { url: nodes[0]!.url, nodes, dir, close };
}
