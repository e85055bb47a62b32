import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startTestCluster, type TestCluster } from '../../helpers/redis-cluster.ts';

// The cluster the Redis Cluster suites run on: real redis-servers joined by redis-cli.

let cluster: TestCluster;
beforeAll(async () => {
  cluster = await startTestCluster();
}, 90_000);
afterAll(async () => {
  await cluster?.close();
});

describe('the test cluster', () => {
  it('has 3 masters sharing the 16384 slots, and a cluster client writes across them', async () => {
    const c = cluster.client();
    await new Promise((resolve) => c.once('ready', resolve));
    expect(c.nodes('master')).toHaveLength(3);
    // Keys that hash to different masters.
    const keys = ['alpha', 'bravo', 'charlie', 'delta', 'echo', 'foxtrot'];
    for (const k of keys) await c.xadd(`s:${k}`, '*', 'payload', JSON.stringify({ k }));
    const owners = new Set(await Promise.all(keys.map(async (k) => (await cluster.nodeOf(`s:${k}`)).port)));
    expect(owners.size).toBeGreaterThan(1);
    for (const k of keys) expect(await c.xlen(`s:${k}`)).toBe(1);
  });
});
