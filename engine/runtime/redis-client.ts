import { Cluster, Redis, type ClusterOptions, type RedisOptions } from 'ioredis';
import type { Logger } from 'pino';
import { choiceSetting } from '../settings.ts';

/**
 * A connection to Redis: one server, or a Redis Cluster (ioredis `Cluster`, which follows MOVED
 * and ASK redirections and slot migrations). Both run the same commands; what differs is that a
 * script or a transaction on a cluster may only touch keys of one hash slot (see settle.ts).
 */
export type RedisConnection = Redis | Cluster;

/** How long the engine waits for Redis to say whether it is a cluster node. */
const CLUSTER_PROBE_MS = 5_000;

/** How the engine reconnects: with back-off, for as long as Redis is away. */
const retryStrategy = (times: number) => Math.min(100 * 2 ** Math.min(times, 6), 5_000);

/**
 * Whether `url` points at a node of a Redis Cluster (INFO `cluster_enabled:1`).
 * SYNAPSE_REDIS_CLUSTER=yes|no decides without asking; otherwise the server is asked, for up to
 * `timeoutMs` (a server that does not answer by then is taken for a single server).
 */
export async function isClusterUrl(url: string, env: NodeJS.ProcessEnv = process.env, timeoutMs = CLUSTER_PROBE_MS): Promise<boolean> {
  return (await clusterMode(url, env, timeoutMs)) === true;
}

/** isClusterUrl, with `undefined` when the server was asked and gave no answer. */
async function clusterMode(url: string, env: NodeJS.ProcessEnv, timeoutMs: number): Promise<boolean | undefined> {
  const forced = choiceSetting('SYNAPSE_REDIS_CLUSTER', env);
  if (forced === 'yes' || forced === 'true' || forced === '1') return true;
  if (forced === 'no' || forced === 'false' || forced === '0') return false;
  const probe = new Redis(url, { lazyConnect: true, maxRetriesPerRequest: 0, connectTimeout: timeoutMs, retryStrategy: () => null });
  probe.on('error', () => undefined);
  // The time limit covers connecting too: a server that accepts the connection and never answers
  // (a frozen process) would hold the connection's ready check, and the caller, for ever.
  const answer = probe.connect().then(() => probe.info('cluster'));
  answer.catch(() => undefined); // it fails once the probe is let go, after the time limit
  let timer: NodeJS.Timeout | undefined;
  try {
    const info = await Promise.race([
      answer,
      new Promise<string>((_, reject) => {
        timer = setTimeout(() => reject(new Error('no answer')), timeoutMs);
      }),
    ]);
    return /^cluster_enabled:1\b/m.test(info);
  } catch {
    return undefined;
  } finally {
    clearTimeout(timer);
    probe.disconnect();
  }
}

/** ioredis Cluster options for the cluster a node URL belongs to: the node is where it starts. */
export function clusterOptions(url: string, extra: RedisOptions = {}): { nodes: { host: string; port: number }[]; options: ClusterOptions } {
  const { host, port, username, password, tls, ...rest } = redisOptionsFromUrl(url);
  void rest;
  return {
    nodes: [{ host: host!, port: port! }],
    options: {
      clusterRetryStrategy: retryStrategy,
      enableAutoPipelining: extra.enableAutoPipelining ?? true,
      // Every node of the cluster takes the same credentials (and TLS) as the one named.
      redisOptions: { ...(username ? { username } : {}), ...(password ? { password } : {}), ...(tls ? { tls } : {}), maxRetriesPerRequest: null, retryStrategy, ...extra },
      // Commands wait through a failover or a resharding instead of failing.
      maxRedirections: 64,
      retryDelayOnFailover: 200,
      retryDelayOnClusterDown: 500,
      retryDelayOnTryAgain: 200,
      slotsRefreshTimeout: 2_000,
    },
  };
}

/**
 * A connection that never gives up: it reconnects with back-off for as long as Redis is away,
 * and commands wait for it rather than fail (maxRetriesPerRequest: null), so an outage pauses
 * the engine instead of failing entries. Logs once when Redis goes away and once when it is back.
 * A URL of a cluster node (see isClusterUrl) gets a cluster connection.
 */
export async function connectRedis(url: string, logger: Logger, name: string, extra: RedisOptions = {}): Promise<RedisConnection> {
  const cluster = await clusterMode(url, process.env, CLUSTER_PROBE_MS);
  if (cluster === undefined) {
    // The choice is made once: a cluster not up yet would get a single-server connection.
    logger.warn({ connection: name, timeoutMs: CLUSTER_PROBE_MS },
      'redis did not answer whether it is a cluster node: taking it for a single server (set SYNAPSE_REDIS_CLUSTER=yes for a cluster)');
  }
  if (cluster) {
    const { nodes, options } = clusterOptions(url, { connectionName: name, ...extra });
    const connection = new Cluster(nodes, options);
    watchConnection(connection, logger, name);
    logger.info({ connection: name }, 'redis is a cluster: using a cluster connection');
    return connection;
  }
  const redis = new Redis(url, {
    maxRetriesPerRequest: null,
    enableAutoPipelining: true,
    connectionName: name,
    retryStrategy,
    ...extra,
  });
  watchConnection(redis, logger, name);
  return redis;
}

/**
 * A plain connection for a command-line tool or a library (no reconnecting forever): a cluster
 * connection when `url` names a cluster node, else a single one. `options` are ioredis's.
 */
export async function openRedis(url: string, options: RedisOptions = {}): Promise<RedisConnection> {
  if (await isClusterUrl(url)) {
    const { nodes, options: cluster } = clusterOptions(url, options);
    return new Cluster(nodes, { ...cluster, clusterRetryStrategy: (times) => (times > 3 ? null : 200 * times) });
  }
  return new Redis(url, options);
}

/**
 * Every key matching `pattern` (SCAN MATCH), on every master of a cluster. Use with care: it walks
 * the whole keyspace.
 */
export async function scanKeys(redis: RedisConnection, pattern: string): Promise<string[]> {
  const nodes = redis instanceof Cluster ? redis.nodes('master') : [redis];
  const keys: string[] = [];
  for (const node of nodes) {
    let cursor = '0';
    do {
      const [next, batch] = await node.scan(cursor, 'MATCH', pattern, 'COUNT', 500);
      keys.push(...batch);
      cursor = next;
    } while (cursor !== '0');
  }
  return keys;
}

/**
 * A second connection like `redis` (to the same server or cluster), e.g. for blocking reads or
 * pub/sub, which must not share the connection other commands use.
 */
export function duplicateConnection(redis: RedisConnection, extra: RedisOptions = {}): RedisConnection {
  if (redis instanceof Cluster) {
    return redis.duplicate(undefined, { ...redis.options, redisOptions: { ...redis.options.redisOptions, ...extra }, enableAutoPipelining: extra.enableAutoPipelining ?? redis.options.enableAutoPipelining });
  }
  return redis.duplicate(extra);
}

/** Logs a connection's outages (once each) instead of ioredis's unhandled-error noise. */
export function watchConnection(redis: RedisConnection, logger: Logger, name: string): void {
  let down = false;
  redis.on('error', (err: Error) => {
    if (down) return;
    down = true;
    logger.warn({ connection: name, err: err.message }, 'redis unavailable; reconnecting with back-off');
  });
  redis.on('ready', () => {
    if (!down) return;
    down = false;
    logger.info({ connection: name }, 'redis connection restored');
  });
}

/** The hash tag BullMQ's keys get on a Redis Cluster, where each queue's keys must share a slot. */
export const BULLMQ_CLUSTER_PREFIX = '{bull}';

/** How BullMQ (queues, workers) reaches the engine's Redis; `close()` when done with it. */
export interface BullmqConnection {
  /** Connection options for one server; a cluster connection of its own on a cluster. */
  connection: RedisOptions | Cluster;
  /** BullMQ's key prefix: its default (`bull`) on one server, `{bull}` on a cluster. */
  prefix?: string;
  close(): Promise<void>;
}

/**
 * What BullMQ needs for the Redis at `url`. On a cluster every BullMQ key must be in one slot per
 * queue, so the prefix is the hash tag `{bull}`: workers of other services that consume the
 * engine's queues must use the same prefix there.
 */
export function bullmqConnection(url: string, cluster: boolean): BullmqConnection {
  if (!cluster) return { connection: redisOptionsFromUrl(url), close: async () => undefined };
  const { nodes, options } = clusterOptions(url, { maxRetriesPerRequest: null });
  const connection = new Cluster(nodes, { ...options, enableAutoPipelining: false });
  connection.on('error', () => undefined); // the engine's own connection reports outages
  return { connection, prefix: BULLMQ_CLUSTER_PREFIX, close: async () => { await connection.quit().catch(() => connection.disconnect()); } };
}

/**
 * Connection options for libraries that open (and close) their own connections, such as
 * BullMQ: host, port, credentials and db from a redis:// or rediss:// URL.
 */
export function redisOptionsFromUrl(url: string): RedisOptions {
  const u = new URL(url);
  return {
    host: u.hostname || '127.0.0.1',
    port: u.port ? Number(u.port) : 6379,
    ...(u.username ? { username: decodeURIComponent(u.username) } : {}),
    ...(u.password ? { password: decodeURIComponent(u.password) } : {}),
    ...(u.pathname && u.pathname.length > 1 ? { db: Number(u.pathname.slice(1)) } : {}),
    ...(u.protocol === 'rediss:' ? { tls: {} } : {}),
    maxRetriesPerRequest: null,
  };
}
