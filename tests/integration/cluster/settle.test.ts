/**
 * Settling on a Redis Cluster: with the DLQ in its stream's slot (a hash tag) in one script, with
 * the DLQ elsewhere in two steps (DLQ entries first, then the acknowledgements) — in both, an entry
 * is acknowledged only once its DLQ entry is written, and one whose DLQ write Redis refuses stays
 * pending while the rest of the batch settles.
 */
import { randomUUID } from 'node:crypto';
import type { Cluster } from 'ioredis';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Outcome } from '../../../engine/runner/pipeline-runner.ts';
import { DlqWriteRefusedError } from '../../../engine/errors.ts';
import { settleBatch, shareSlot } from '../../../engine/runtime/settle.ts';
import { orderEvent } from '../../helpers/pipelines.ts';
import { startTestCluster, type TestCluster } from '../../helpers/redis-cluster.ts';
import { addEvents, readStream } from '../../helpers/streams.ts';

let cluster: TestCluster;
let redis: Cluster;

beforeAll(async () => {
  cluster = await startTestCluster();
  redis = cluster.client();
}, 90_000);
afterAll(async () => {
  await cluster?.close();
});

/** A stream read through group `g` by consumer `c` (n entries pending), and its DLQ key. */
async function readThroughGroup(n: number, layout: 'apart' | 'together') {
  const base = randomUUID().slice(0, 8);
  const stream = layout === 'together' ? `{cl-${base}}:in` : `cl-${base}-in`;
  let dlq = layout === 'together' ? `{cl-${base}}:dlq` : `cl-${base}-dlq`;
  // Apart: a DLQ key on another master than the stream's.
  for (let i = 0; layout === 'apart' && (await cluster.nodeOf(dlq)).port === (await cluster.nodeOf(stream)).port; i++) dlq = `cl-${base}-dlq${i}`;
  await redis.xgroup('CREATE', stream, 'g', '0', 'MKSTREAM');
  const ids = await addEvents(redis, stream, Array.from({ length: n }, (_, i) => orderEvent(i)));
  await redis.xreadgroup('GROUP', 'g', 'c', 'COUNT', n, 'STREAMS', stream, '>');
  return { target: { pipeline: 'p', stream, group: 'g', dlq }, ids };
}

const dlqOutcome = (id: string): Outcome => ({ id, kind: 'dlq', stage: 'validate', error: 'bad', attempts: 1, payload: `{"id":"${id}"}` });
const pendingIds = async (stream: string) => ((await redis.xpending(stream, 'g', '-', '+', 100)) as [string][]).map((r) => r[0]);

describe.each(['apart', 'together'] as const)('settleBatch on a cluster, DLQ %s', (layout) => {
  it('writes every DLQ entry and acknowledges every settled entry; deferred entries stay pending', async () => {
    const { target, ids } = await readThroughGroup(4, layout);
    expect(await shareSlot(redis, target.stream, target.dlq)).toBe(layout === 'together');
    const outcomes: Outcome[] = [
      { id: ids[0]!, kind: 'sunk', event: {}, sinks: ['s'], value: {} },
      dlqOutcome(ids[1]!),
      { id: ids[2]!, kind: 'filtered', event: {} },
      { id: ids[3]!, kind: 'deferred', reason: 'retry later' },
    ];
    expect(await settleBatch(redis, target, outcomes)).toEqual({ settled: 3, refused: [] });
    expect(await pendingIds(target.stream)).toEqual([ids[3]]);
    const dlq = await readStream(redis, target.dlq);
    expect(dlq.map((e) => e.fields.source_id)).toEqual([ids[1]]);
  });

  it('a DLQ write Redis refuses (WRONGTYPE) leaves that entry pending; the rest settles', async () => {
    const { target, ids } = await readThroughGroup(2, layout);
    await redis.set(target.dlq, 'not a stream');
    const result = await settleBatch(redis, target, [{ id: ids[0]!, kind: 'sunk', event: {}, sinks: ['s'], value: {} }, dlqOutcome(ids[1]!)]);
    expect(result.settled).toBe(1);
    expect(result.refused).toEqual([{ id: ids[1], error: expect.stringContaining('WRONGTYPE') }]);
    expect(await pendingIds(target.stream)).toEqual([ids[1]]);

    await redis.del(target.dlq);
    expect(await settleBatch(redis, target, [dlqOutcome(ids[1]!)])).toEqual({ settled: 1, refused: [] });
    expect(await pendingIds(target.stream)).toEqual([]);
    expect((await readStream(redis, target.dlq)).map((e) => e.fields.source_id)).toEqual([ids[1]]);
  });

  it('without acks (replays, schedules) a refused DLQ write raises DlqWriteRefusedError and nothing is acknowledged', async () => {
    const { target, ids } = await readThroughGroup(1, layout);
    await redis.set(target.dlq, 'not a stream');
    await expect(settleBatch(redis, target, [dlqOutcome(ids[0]!)], [], { ack: false })).rejects.toBeInstanceOf(DlqWriteRefusedError);
    expect(await pendingIds(target.stream)).toEqual([ids[0]]);
  });

  it('without acks a DLQ entry is written and counted, and nothing is acknowledged', async () => {
    const { target, ids } = await readThroughGroup(2, layout);
    const outcomes: Outcome[] = [dlqOutcome(ids[0]!), { id: ids[1]!, kind: 'sunk', event: {}, sinks: ['s'], value: {} }];
    expect(await settleBatch(redis, target, outcomes, [], { ack: false })).toEqual({ settled: 1, refused: [] });
    expect((await readStream(redis, target.dlq)).map((e) => e.fields.source_id)).toEqual([ids[0]]);
    expect(await pendingIds(target.stream)).toEqual(ids);
  });

  it('a batch whose only DLQ write is refused acknowledges nothing and settles nothing', async () => {
    const { target, ids } = await readThroughGroup(1, layout);
    await redis.set(target.dlq, 'not a stream');
    expect(await settleBatch(redis, target, [dlqOutcome(ids[0]!)]))
      .toEqual({ settled: 0, refused: [{ id: ids[0], error: expect.stringContaining('WRONGTYPE') }] });
    expect(await pendingIds(target.stream)).toEqual([ids[0]]);
  });
});
