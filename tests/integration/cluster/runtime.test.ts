import { randomUUID } from 'node:crypto';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import type { Cluster } from 'ioredis';
import { killEngines, spawnEngine, stopCleanly } from '../../helpers/engine-process.ts';
import { FIXTURE_SCHEMAS, orderEvent, ordersPipeline, pipelineDirs } from '../../helpers/pipelines.ts';
import { waitFor } from '../../helpers/redis.ts';
import { startTestCluster, type TestCluster } from '../../helpers/redis-cluster.ts';
import { addEvents, countDuplicates, pendingSummary, readPayloads, readStream } from '../../helpers/streams.ts';

// The engine on a real 3-master Redis Cluster, through the real CLI: `--redis` names one node,
// the engine finds it is a cluster and follows the keys wherever their slots live.

let cluster: TestCluster;
let redis: Cluster;
const dirs = pipelineDirs();

beforeAll(async () => {
  cluster = await startTestCluster();
  redis = cluster.client();
}, 90_000);
afterEach(() => killEngines());
afterAll(async () => {
  await dirs.cleanup();
  await cluster?.close();
});

const key = (label: string) => `cl-${label}-${randomUUID().slice(0, 8)}`;
const range = (from: number, to: number) => Array.from({ length: to - from }, (_, i) => from + i);

/** Keys until one lands on a master other than `other`'s. */
async function keyElsewhere(label: string, other: string): Promise<string> {
  const taken = (await cluster.nodeOf(other)).port;
  for (;;) {
    const k = key(label);
    if ((await cluster.nodeOf(k)).port !== taken) return k;
  }
}

describe('the engine on a Redis Cluster', () => {
  it('consumes, publishes and dead-letters across masters; a DLQ in another slot than its stream settles in two steps, one in the same slot in one', async () => {
    // Stream, output and DLQ on different masters (no hash tag) ...
    const apart = key('in');
    const apartOut = await keyElsewhere('out', apart);
    const apartDlq = await keyElsewhere('dlq', apart);
    // ... and a stream whose DLQ shares its hash tag (one slot: the settle script runs).
    const tag = `{${key('tag')}}`;
    const together = `${tag}:in`;
    const togetherOut = await keyElsewhere('out2', together);
    const docs = [
      ordersPipeline({ name: 'apart', stream: apart, out: apartOut, extra: { dlq: apartDlq } }),
      ordersPipeline({ name: 'together', stream: together, out: togetherOut }),
    ];
    const pipelines = await dirs.make(docs);
    const engine = await spawnEngine({ pipelines, schemas: FIXTURE_SCHEMAS, redisUrl: cluster.url, consumer: `cl-${randomUUID().slice(0, 8)}` });
    await engine.waitForLog((l) => String(l.msg).includes('using a cluster connection'), 'the engine saying it runs on a cluster');

    for (const stream of [apart, together]) {
      await addEvents(redis, stream, [
        ...range(0, 200).map((i) => orderEvent(i)),
        { event: 'order-placed', source: 't', timestamp: 'not a time', data: {} }, // invalid: DLQ
        orderEvent(999, 'order-cancelled'), // filtered
      ]);
    }
    for (const [stream, out, dlq, group] of [[apart, apartOut, apartDlq, 'apart'], [together, togetherOut, `${together}:dlq`, 'together']] as const) {
      // Completion, not speed: a loaded machine running the engine from its sources (mutation
      // runs) takes longer. A time-out says where it stood.
      let seen = '';
      await waitFor(async () => {
        const [outputs, dead, pending] = [await redis.xlen(out), await redis.xlen(dlq), (await pendingSummary(redis, stream, group)).count];
        seen = `${outputs} outputs, ${dead} DLQ entries, ${pending} pending`;
        return outputs === 200 && dead === 1 && pending === 0;
      }, () => `${group}: 200 outputs, 1 DLQ entry, nothing pending (last seen: ${seen})`, 60_000, 100);
      expect(new Set((await readPayloads<{ seq: number }>(redis, out)).map((p) => p.seq))).toEqual(new Set(range(0, 200)));
      const [dead] = await readStream(redis, dlq);
      expect(dead!.fields).toMatchObject({ stage: 'validate', pipeline: group, source_stream: stream });
    }
    await stopCleanly(engine);
  }, 150_000);

  it('an engine SIGKILLed mid-stream on the cluster and restarted delivers every event at least once', async () => {
    const N = 4000;
    const stream = key('in');
    const out = await keyElsewhere('out', stream);
    const consumer = `cl-kill-${randomUUID().slice(0, 8)}`;
    const doc = ordersPipeline({ stream, out, source: { batch: 50, claim_idle_ms: 600_000 } });
    const pipelines = await dirs.make([doc]);
    const start = () => spawnEngine({ pipelines, schemas: FIXTURE_SCHEMAS, redisUrl: cluster.url, consumer });

    const first = await start();
    await addEvents(redis, stream, range(0, N / 2).map((i) => orderEvent(i)));
    await waitFor(async () => (await redis.xlen(out)) >= 200 && ((await pendingSummary(redis, stream, doc.name)).consumers[consumer] ?? 0) > 0,
      'the engine mid-stream, with a batch pending', 30_000, 10);
    expect((await first.stop('SIGKILL')).signal).toBe('SIGKILL');
    const pendingAtKill = (await pendingSummary(redis, stream, doc.name)).consumers[consumer] ?? 0;

    await addEvents(redis, stream, range(N / 2, N).map((i) => orderEvent(i)));
    const second = await start();
    const seqs = await waitFor(async () => {
      const s = (await readPayloads<{ seq: number }>(redis, out)).map((p) => p.seq);
      return new Set(s).size >= N && s;
    }, `all ${N} events in the output`, 60_000, 200);
    expect(new Set(seqs)).toEqual(new Set(range(0, N)));
    expect(countDuplicates(seqs).duplicates).toBeLessThanOrEqual(pendingAtKill);
    await waitFor(async () => (await pendingSummary(redis, stream, doc.name)).count === 0, 'nothing pending');
    await stopCleanly(second);
  }, 120_000);
});
