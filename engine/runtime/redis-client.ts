import { Cluster, Redis, type ClusterOptions, type RedisOptions } from 'ioredis';
import type { Logger } from 'pino';

/**
 * A connection to Redis: one server, or a Redis Cluster (ioredis `Cluster`, which follows MOVED
 * and ASK redirections and slot migrations). Both run the same commands; what differs is that a
 * script or a transaction on a cluster may only touch keys of one hash slot (see settle.ts).
 */
export type RedisConnection = Redis | Cluster;

/** How the engine reconnects: with back-off, for as long as Redis is away. */
const retryStrategy = (times: number) => Math.min(100 * 2 ** Math.min(times, 6), 5_000);

/**
 * Whether `url` points at a node of a Redis Cluster (INFO `cluster_enabled:1`).
 * SYNAPSE_REDIS_CLUSTER=yes|no decides without asking; otherwise the server is asked, for up to
 * `timeoutMs` (a server that does not answer by then is taken for a single server).
 */
export async function isClusterUrl(url: string, env: NodeJS.ProcessEnv = process.env, timeoutMs = 5_000): Promise<boolean> {
  const forced = env.SYNAPSE_REDIS_CLUSTER?.toLowerCase();
  if (forced === 'yes' || forced === 'true' || forced === '1') return true;
  if (forced === 'no' || forced === 'false' || forced === '0') return false;
  const probe = new Redis(url, { lazyConnect: true, maxRetriesPerRequest: 0, connectTimeout: timeoutMs, retryStrategy: () => null });
  probe.on('error', () => undefined);
  try {
    await probe.connect();
    const info = await Promise.race([
      probe.info('cluster'),
      new Promise<string>((_, reject) => setTimeout(() => reject(new Error('no answer')), timeoutMs).unref()),
    ]);
    return /^cluster_enabled:1\b/m.test(info);
  } catch {
    return false;
  } finally {
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
  if (await isClusterUrl(url)) {
    const { nodes, options } = clusterOptions(url, { connectionName: name, ...extra });
    const cluster = new Cluster(nodes, options);
    watchConnection(cluster, logger, name);
    logger.info({ connection: name }, 'redis is a cluster: using a cluster connection');
    return cluster;
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
