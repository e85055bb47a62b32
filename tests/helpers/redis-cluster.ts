import { mkdtemp } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Cluster, Redis } from 'ioredis';
import { redisAnswers, startRedisCluster, type OwnedRedis } from '../../engine/runtime/redis-server.ts';

/** A real Redis Cluster of redis-server processes this test started. */
export interface TestCluster {
  /** redis:// URL of the first master: what `--redis` / REDIS_URL get (any node works). */
  url: string;
  /** Every node, masters first. */
  nodes: OwnedRedis[];
  /** A cluster client (closed by `close()`). */
  client(): Cluster;
  /** The node serving `key`'s slot now (CLUSTER KEYSLOT + CLUSTER SLOTS). */
  nodeOf(key: string): Promise<OwnedRedis>;
  /**
   * Moves `key`'s slot, keys and all, to another master, as `redis-cli --cluster reshard` does
   * (SETSLOT IMPORTING/MIGRATING, MIGRATE in batches, SETSLOT NODE): clients meanwhile get ASK and
   * then MOVED redirections. `pauseMs` between batches stretches the migration out.
   */
  migrateSlotOf(key: string, opts?: { batch?: number; pauseMs?: number }): Promise<{ from: number; to: number; keys: number }>;
  close(): Promise<void>;
}

/**
 * Starts `masters` redis-servers with `--cluster-enabled yes` (and `replicas` replicas per master)
 * on free ports, joins them with `redis-cli --cluster create`, and waits until every node says
 * `cluster_state:ok` (engine/runtime/redis-server.ts, shared with `npm run bench -- --cluster`).
 * Nodes are persistent (append-only file) so a test can kill and restart one.
 */
export async function startTestCluster(opts: { masters?: number; replicas?: number } = {}): Promise<TestCluster> {
  const dir = await mkdtemp(join(tmpdir(), 'synapse-cluster-'));
  const owned = await startRedisCluster({ dir, masters: opts.masters, replicas: opts.replicas, persistent: true });
  const nodes = owned.nodes;
  const clients: Cluster[] = [];
  const close = async () => {
    for (const c of clients) c.disconnect();
    await owned.close();
  };
  const client = () => {
    const c = new Cluster([{ host: '127.0.0.1', port: nodes[0]!.port }], { redisOptions: { maxRetriesPerRequest: null } });
    c.on('error', () => undefined);
    clients.push(c);
    return c;
  };
  const self: TestCluster = {
    url: nodes[0]!.url,
    nodes,
    client,
    async nodeOf(key) {
      const probe = new Redis((await liveNode(nodes)).url, { maxRetriesPerRequest: 1 });
      try {
        const slot = Number(await probe.cluster('KEYSLOT', key));
        const ranges = await probe.cluster('SLOTS');
        const owner = ranges.find(([from, to]) => slot >= from && slot <= to)!;
        return nodes.find((n) => n.port === owner[2]![1])!;
      } finally {
        probe.disconnect();
      }
    },
    async migrateSlotOf(key, opts = {}) {
      const batch = opts.batch ?? 1;
      const connect = (n: OwnedRedis) => new Redis(n.url, { maxRetriesPerRequest: 1 });
      const probe = connect(await liveNode(nodes));
      try {
        const slot = Number(await probe.cluster('KEYSLOT', key));
        const from = await self.nodeOf(key);
        const masters = String(await probe.cluster('NODES')).split('\n').filter((l) => l.includes('master') && !l.includes('fail'));
        const idOf = (port: number) => masters.find((l) => l.includes(`:${port}@`))!.split(' ')[0]!;
        const toLine = masters.find((l) => !l.includes(`:${from.port}@`))!;
        const to = nodes.find((n) => toLine.includes(`:${n.port}@`))!;
        const [src, dst] = [connect(from), connect(to)];
        try {
          await dst.cluster('SETSLOT', slot, 'IMPORTING', idOf(from.port));
          await src.cluster('SETSLOT', slot, 'MIGRATING', idOf(to.port));
          let moved = 0;
          for (;;) {
            const keys = (await src.cluster('GETKEYSINSLOT', slot, batch)) as string[];
            if (keys.length === 0) break;
            await src.call('MIGRATE', '127.0.0.1', to.port, '', 0, 10_000, 'KEYS', ...keys);
            moved += keys.length;
            if (opts.pauseMs) await new Promise((r) => setTimeout(r, opts.pauseMs));
          }
          for (const n of nodes) {
            const c = connect(n);
            try {
              if (masters.some((l) => l.includes(`:${n.port}@`))) await c.cluster('SETSLOT', slot, 'NODE', idOf(to.port));
            } finally {
              c.disconnect();
            }
          }
          return { from: from.port, to: to.port, keys: moved };
        } finally {
          src.disconnect();
          dst.disconnect();
        }
      } finally {
        probe.disconnect();
      }
    },
    close,
  };
  return self;
}

/** A node that answers now: after a test killed one, the others still know the cluster's slots. */
async function liveNode(nodes: readonly OwnedRedis[]): Promise<OwnedRedis> {
  for (const n of nodes) if (await redisAnswers('127.0.0.1', n.port, 500)) return n;
  throw new Error('no node of the cluster answers');
}
