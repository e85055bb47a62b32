/**
 * shareSlot: whether a stream and its DLQ share a hash slot is asked of the cluster once per pair
 * and connection, and asked again after a failed answer (a failure is not remembered).
 * The cluster is a stand-in that answers CLUSTER KEYSLOT (the real thing: tests/integration/cluster).
 */
import type { Cluster } from 'ioredis';
import { describe, expect, it } from 'vitest';
import { shareSlot } from '../../../engine/runtime/settle.ts';

/** Answers CLUSTER KEYSLOT from `slots` (or fails while `failing`), counting the questions. */
function keyslotCluster(slots: Record<string, number>) {
  const state = { asked: 0, failing: false };
  const cluster = {
    async cluster(sub: string, key: string): Promise<number> {
      expect(sub).toBe('KEYSLOT');
      state.asked += 1;
      if (state.failing) throw new Error('CLUSTERDOWN The cluster is down');
      return slots[key]!;
    },
  };
  return { cluster: cluster as unknown as Cluster, state };
}

describe('shareSlot', () => {
  it('answers from KEYSLOT, asked once per pair and connection', async () => {
    const { cluster, state } = keyslotCluster({ a: 1, b: 1, c: 2 });
    expect(await shareSlot(cluster, 'a', 'b')).toBe(true);
    expect(await shareSlot(cluster, 'a', 'c')).toBe(false);
    expect(state.asked).toBe(4);
    expect(await shareSlot(cluster, 'a', 'b')).toBe(true);
    expect(await shareSlot(cluster, 'a', 'c')).toBe(false);
    expect(state.asked).toBe(4);

    const other = keyslotCluster({ a: 1, b: 2 });
    expect(await shareSlot(other.cluster, 'a', 'b')).toBe(false);
    expect(other.state.asked).toBe(2);
  });

  it('asks again after a failed answer', async () => {
    const { cluster, state } = keyslotCluster({ a: 5, b: 5 });
    state.failing = true;
    await expect(shareSlot(cluster, 'a', 'b')).rejects.toThrow(/CLUSTERDOWN/);
    state.failing = false;
    expect(await shareSlot(cluster, 'a', 'b')).toBe(true);
    expect(state.asked).toBe(4);
  });
});
