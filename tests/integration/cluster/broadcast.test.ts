import { mkdtemp, rm } from 'node:fs/promises';
import { randomUUID } from 'node:crypto';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Cluster } from 'ioredis';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { killEngines, spawnEngine, stopCleanly } from '../../helpers/engine-process.ts';
import { FIXTURE_SCHEMAS, pipelineDirs } from '../../helpers/pipelines.ts';
import { startTestCluster, type TestCluster } from '../../helpers/redis-cluster.ts';
import { addEvents } from '../../helpers/streams.ts';
import { closeAllWs, connectWs } from '../../helpers/ws-client.ts';

// Broadcast on a Redis Cluster: engine A runs the pipeline, engine B none; a WebSocket client of B
// receives what A sinks, carried by the cluster's pub/sub from whichever node A published on.

let cluster: TestCluster;
let redis: Cluster;
const dirs = pipelineDirs();
let emptyDir: string;

beforeAll(async () => {
  cluster = await startTestCluster();
  redis = cluster.client();
  emptyDir = await mkdtemp(join(tmpdir(), 'synapse-cl-empty-'));
}, 90_000);
afterEach(async () => {
  await closeAllWs();
  await killEngines();
});
afterAll(async () => {
  await dirs.cleanup();
  if (emptyDir) await rm(emptyDir, { recursive: true, force: true });
  await cluster?.close();
});

describe('broadcast on a Redis Cluster', () => {
  it('a client of another engine receives what a pipeline sinks', async () => {
    const stream = `cl-bc-${randomUUID().slice(0, 8)}`;
    const channel = `cl-channel-${randomUUID().slice(0, 8)}`;
    const pipelines = await dirs.make([{
      name: `cl-bc-${randomUUID().slice(0, 8)}`,
      source: { stream, start: '0', block_ms: 100 },
      transform: '{ "n": data.n }',
      sink: { type: 'broadcast', with: { channel } },
    }]);
    const common = { schemas: FIXTURE_SCHEMAS, redisUrl: cluster.url };
    const [a, b] = await Promise.all([
      spawnEngine({ ...common, pipelines, consumer: `cl-bc-a-${randomUUID().slice(0, 8)}` }),
      spawnEngine({ ...common, pipelines: emptyDir, consumer: `cl-bc-b-${randomUUID().slice(0, 8)}` }),
    ]);
    await Promise.all([a, b].map((e) => e.waitForLog((l) => l.msg === 'admin API listening', 'admin API listening')));
    const client = await connectWs(`ws://127.0.0.1:${b.adminPort}/ws`);
    await client.subscribe(channel);
    await addEvents(redis, stream, [1, 2, 3].map((n) => ({ event: 'note', source: 't', timestamp: new Date().toISOString(), data: { n } })));
    const got = await client.waitForCount(channel, 3);
    expect(got.map((m) => m.n).sort()).toEqual([1, 2, 3]);
    await Promise.all([stopCleanly(a), stopCleanly(b)]);
  }, 90_000);
});
