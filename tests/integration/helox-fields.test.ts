import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { copyCatalog } from '../../scripts/catalog.ts';
import { readAggregates } from '../../plugins/sinks/aggregate.ts';
import { startEngine, type EngineUnderTest } from '../helpers/in-process-engine.ts';
import { startTestRedis, waitFor, type TestRedis } from '../helpers/redis.ts';

const run = promisify(execFile);

/**
 * Helox's Python producer writes flat field maps — `r.xadd("training-events", {"event": ...,
 * "metrics": json.dumps(...)})` — every value a string, nested values JSON strings. This suite
 * writes exactly that shape with redis-cli and shows the shipped training pipelines read it.
 */
describe('Helox flat field maps, written by redis-cli, reach the shipped training pipelines', () => {
  let redis: TestRedis;
  let engine: EngineUnderTest;
  let catalog: Awaited<ReturnType<typeof copyCatalog>> | undefined;

  beforeAll(async () => {
    redis = await startTestRedis({ own: true });
    // The catalog's own pipelines and schemas (catalog.json), not whatever else pipelines/ holds.
    catalog = await copyCatalog();
    engine = await startEngine({ redisUrl: redis.url, pipelines: catalog.pipelines, schemas: catalog.schemas });
  });
  afterAll(async () => {
    await engine?.stop();
    await catalog?.remove();
    await redis?.close();
  });

  it('training-progress with metrics as a JSON string is aggregated and broadcast', async () => {
    const port = new URL(redis.url).port || '6379';
    const host = new URL(redis.url).hostname;
    await run('redis-cli', ['-h', host, '-p', port, 'XADD', 'training-events', '*',
      'event', 'training-progress', 'timestamp', new Date().toISOString(), 'source', 'helox',
      'model_name', 'helox-sentiment', 'step', '100', 'epoch', '1',
      'metrics', '{"accuracy": 0.81, "f1": 0.77}', 'learning_rate', '5e-05', 'loss', '0.42', 'elapsed_time_seconds', '200']);

    await waitFor(() => engine.tally('analytics-training').sunk === 1 && engine.tally('realtime-training').sunk === 1, 'both training pipelines to sink the entry');
    const sunk = engine.outcomes.get('realtime-training')!.find((o) => o.kind === 'sunk')!;
    // The decoder parsed the JSON-string field into an object; the transform made numbers of the rest.
    expect((sunk as { event: { metrics: unknown } }).event.metrics).toEqual({ accuracy: 0.81, f1: 0.77 });
    expect((sunk as { value: { data: Record<string, unknown> } }).value.data).toMatchObject({ step: 100, loss: 0.42, learning_rate: 0.00005 });

    const pipeline = engine.engine.handles.get('analytics-training')!.pipeline;
    const sink = pipeline.sinks.find((s) => s.type === 'aggregate')!;
    const [window] = await readAggregates(redis.client(), pipeline.name, sink.id, sink.config as never);
    expect(window).toMatchObject({ key: 'helox-sentiment', count: 1, loss_avg: 0.42, step_max: 100 });
  });

  it('a Helox entry that breaks its schema goes to the DLQ with the reason', async () => {
    const port = new URL(redis.url).port || '6379';
    const host = new URL(redis.url).hostname;
    await run('redis-cli', ['-h', host, '-p', port, 'XADD', 'training-events', '*',
      'event', 'training-progress', 'timestamp', new Date().toISOString(), 'source', 'helox', 'step', 'ten']);
    await waitFor(() => engine.tally('analytics-training').dlq === 1, 'the invalid entry in the DLQ');
    const [entry] = await redis.client().xrange('training-events:dlq', '-', '+', 'COUNT', 1);
    const fields = Object.fromEntries(entry![1].reduce<string[][]>((acc, v, i, all) => (i % 2 ? acc : [...acc, [v, all[i + 1]!]]), []));
    expect(fields.stage).toBe('validate');
    expect(fields.error).toMatch(/model_name|step/);
  });
});
