import { join } from 'node:path';
import { beforeAll, describe, expect, it } from 'vitest';
import { compilePipelineText, type CompiledPipeline, type LoadContext } from '../../../engine/config/load-pipeline.ts';
import { BatchError, RetryableError, UnrecoverableError } from '../../../engine/errors.ts';
import type { Sink, SinkMessage, SinkWriteResult } from '../../../engine/plugins/define-sink.ts';
import type { StreamEntry } from '../../../engine/runner/codec.ts';
import { PipelineRunner, STAGES, type BatchResult, type RunnerOptions } from '../../../engine/runner/pipeline-runner.ts';
import { loadContext } from '../support/temp-dir.ts';

const SCHEMA_ID = 'https://synapse.test/schemas/order-event.json';
const FIXTURE_SCHEMAS = join(import.meta.dirname, '../../fixtures/schemas');

let ctx: LoadContext;
beforeAll(async () => {
  ctx = await loadContext(FIXTURE_SCHEMAS);
});

async function compile(...lines: string[]): Promise<CompiledPipeline> {
  return compilePipelineText('/virtual/runner-test.yaml', lines.join('\n') + '\n', ctx);
}

type WriteBehaviour = (batch: readonly SinkMessage[], call: number) => Promise<readonly SinkWriteResult[] | void>;

/** An in-memory sink: records every batch it is given and answers as `behaviour` says. */
class FakeSink implements Sink {
  readonly batches: SinkMessage[][] = [];
  constructor(private readonly behaviour: WriteBehaviour = async () => undefined) {}

  async write(batch: readonly SinkMessage[]): Promise<readonly SinkWriteResult[] | void> {
    this.batches.push([...batch]);
    return this.behaviour(batch, this.batches.length);
  }

  async close(): Promise<void> {}

  /** Every message written, attempts included, in order. */
  get messages(): SinkMessage[] {
    return this.batches.flat();
  }
}

/** A `sleep` that never waits and records the back-off delays asked for. */
function recordingSleep() {
  const delays: number[] = [];
  const sleep: NonNullable<RunnerOptions['sleep']> = async (ms) => {
    delays.push(ms);
    return true;
  };
  return { delays, sleep };
}

let nextId = 0;
/** Stream entries as a `codec: json` producer writes them; a string is a raw payload. */
function entries(...events: unknown[]): StreamEntry[] {
  return events.map((e) => ({
    id: `${++nextId}-0`,
    fields: ['payload', typeof e === 'string' ? e : JSON.stringify(e)],
  }));
}

const order = (orderId: string, extra: Record<string, unknown> = {}) => ({ event: 'order-placed', data: { orderId, amount: 10 }, ...extra });

/** Every entry has exactly one outcome, in entry order, and no slot is left empty. */
function expectOneOutcomeEach(result: BatchResult, input: readonly StreamEntry[]): void {
  expect(result.outcomes).toHaveLength(input.length);
  expect(Object.keys(result.outcomes)).toHaveLength(input.length);
  expect(result.outcomes.map((o) => o?.id)).toEqual(input.map((e) => e.id));
}

async function run(pipeline: CompiledPipeline, sinks: Record<string, Sink>, input: StreamEntry[], options: RunnerOptions = {}) {
  const runner = new PipelineRunner(pipeline, new Map(Object.entries(sinks)), { sleep: recordingSleep().sleep, ...options });
  const result = await runner.process(input);
  expectOneOutcomeEach(result, input);
  return result;
}

const kinds = (r: BatchResult) => r.outcomes.map((o) => o.kind);

describe('PipelineRunner: one outcome per entry, for every stage', () => {
  it('sunk: the transformed value reaches the sink with the source id, the event and attempt 1', async () => {
    const p = await compile(
      'source: { stream: orders }',
      'filter: event = "order-placed"',
      'transform: \'{ "order": data.orderId, "total": data.amount * 2 }\'',
      'sink: { type: log }',
    );
    const sink = new FakeSink();
    const input = entries(order('o1'));
    const { outcomes } = await run(p, { log: sink }, input);
    expect(outcomes).toEqual([
      { id: input[0]!.id, kind: 'sunk', event: order('o1'), value: { order: 'o1', total: 20 }, sinks: ['log'] },
    ]);
    expect(sink.messages).toEqual([{ id: input[0]!.id, value: { order: 'o1', total: 20 }, event: order('o1'), attempt: 1 }]);
  });

  it('without a transform the event itself is the value', async () => {
    const p = await compile('source: { stream: orders }', 'sink: { type: log }');
    const sink = new FakeSink();
    const { outcomes } = await run(p, { log: sink }, entries(order('o1')));
    expect(outcomes[0]).toMatchObject({ kind: 'sunk', value: order('o1') });
    expect(sink.messages.map((m) => m.value)).toEqual([order('o1')]);
  });

  it('filtered: a falsy filter acknowledges the entry without writing it', async () => {
    const p = await compile('source: { stream: orders }', 'filter: event = "order-placed"', 'sink: { type: log }');
    const sink = new FakeSink();
    const input = entries({ event: 'order-cancelled', data: { orderId: 'o2' } }, order('o3'));
    const result = await run(p, { log: sink }, input);
    expect(result.outcomes[0]).toEqual({ id: input[0]!.id, kind: 'filtered', event: { event: 'order-cancelled', data: { orderId: 'o2' } } });
    expect(kinds(result)).toEqual(['filtered', 'sunk']);
    expect(sink.messages.map((m) => m.id)).toEqual([input[1]!.id]);
  });

  it('filter truthiness follows JSONata: empty string, 0, empty array and missing paths are false', async () => {
    const p = await compile('source: { stream: orders }', 'filter: flag', 'sink: { type: log }');
    const input = entries({ flag: '' }, { flag: 0 }, { flag: [] }, {}, { flag: 'y' }, { flag: 1 }, { flag: [0, 1] }, { flag: {} });
    const result = await run(p, { log: new FakeSink() }, input);
    expect(kinds(result)).toEqual(['filtered', 'filtered', 'filtered', 'filtered', 'sunk', 'sunk', 'sunk', 'filtered']);
  });

  it('a filter or a when: whose result holds a function is true, as in JSONata, though the function is no JSON', async () => {
    const p = await compile(
      'source: { stream: orders }',
      "filter: '{ \"keep\": function($x) { $x } }'",
      'sinks:',
      "  - { type: log, id: held, when: '{ \"f\": $sum }' }",
      "  - { type: log, id: bare, when: '[function($x) { $x }]' }",
    );
    const held = new FakeSink();
    const bare = new FakeSink();
    const result = await run(p, { held, bare }, entries(order('o1')));
    expect(result.outcomes[0]).toMatchObject({ kind: 'sunk', sinks: ['held'] });
    expect(bare.messages).toEqual([]);
  });

  it('validate: an invalid event goes to the DLQ with the schema reason and its raw payload', async () => {
    const p = await compile('source: { stream: orders }', `validate: { schema: "${SCHEMA_ID}" }`, 'sink: { type: log }');
    const sink = new FakeSink();
    const bad = { event: 'order-placed', data: {} };
    const input = entries(bad, order('ok'));
    const { outcomes } = await run(p, { log: sink }, input);
    expect(outcomes[0]).toEqual({
      id: input[0]!.id, kind: 'dlq', stage: 'validate', attempts: 1,
      error: `schema ${SCHEMA_ID}: data: must have required property 'orderId'`,
      payload: JSON.stringify(bad), event: bad, sink: undefined,
    });
    expect(outcomes[1]!.kind).toBe('sunk');
    expect(sink.messages.map((m) => m.id)).toEqual([input[1]!.id]);
  });

  it('validate with on_invalid: drop: dropped, with the reason, not sent to the DLQ', async () => {
    const p = await compile('source: { stream: orders }', `validate: { schema: "${SCHEMA_ID}", on_invalid: drop }`, 'sink: { type: log }');
    const input = entries({ data: { orderId: 'x' } });
    const { outcomes } = await run(p, { log: new FakeSink() }, input);
    expect(outcomes).toEqual([{
      id: input[0]!.id, kind: 'dropped', stage: 'validate',
      error: `schema ${SCHEMA_ID}: (root): must have required property 'event'`, event: { data: { orderId: 'x' } },
    }]);
  });

  it('decode: bad JSON, a non-object, a missing payload and an oversized entry each go to the DLQ at decode', async () => {
    const p = await compile('source: { stream: orders }', 'max_event_bytes: 200', 'sink: { type: log }');
    const sink = new FakeSink();
    const input: StreamEntry[] = [
      ...entries('{not json', '[1,2]'),
      { id: `${++nextId}-0`, fields: ['event', 'order-placed'] },
      ...entries({ big: 'x'.repeat(300) }, order('fine')),
    ];
    const { outcomes } = await run(p, { log: sink }, input);
    expect(outcomes.map((o) => (o.kind === 'dlq' ? [o.stage, o.error, o.payload] : o.kind))).toEqual([
      ['decode', expect.stringContaining('payload is not valid JSON'), '{not json'],
      ['decode', 'payload must be a JSON object, got an array', '[1,2]'],
      ['decode', expect.stringContaining("entry has no 'payload' field"), '{"event":"order-placed"}'],
      ['decode', 'event is 310 bytes, over max_event_bytes (200)', JSON.stringify({ big: 'x'.repeat(300) })],
      'sunk',
    ]);
    expect(outcomes.slice(0, 4).map((o) => o.kind === 'dlq' && o.event)).toEqual([undefined, undefined, undefined, undefined]);
    expect(sink.messages).toHaveLength(1);
  });

  it('codec: fields decodes a flat field map', async () => {
    const p = await compile('source: { stream: models, codec: fields }', 'transform: \'{ "model": model_name, "acc": metrics.accuracy }\'', 'sink: { type: log }');
    const sink = new FakeSink();
    const input: StreamEntry[] = [{ id: '5-0', fields: ['event', 'model-trained', 'model_name', 'resnet', 'metrics', '{"accuracy":0.9}'] }];
    const { outcomes } = await run(p, { log: sink }, input);
    expect(outcomes[0]).toMatchObject({ kind: 'sunk', value: { model: 'resnet', acc: 0.9 } });
  });

  it('filter: a runtime error sends that entry to the DLQ at stage filter', async () => {
    const p = await compile('source: { stream: orders }', 'filter: $number(data.amount) > 5', 'sink: { type: log }');
    const input = entries({ data: { amount: 'lots' } }, { data: { amount: '9' } });
    const { outcomes } = await run(p, { log: new FakeSink() }, input);
    expect(outcomes[0]).toMatchObject({ kind: 'dlq', stage: 'filter', error: 'Unable to cast value to a number: "lots"', attempts: 1 });
    expect(outcomes[1]!.kind).toBe('sunk');
  });

  it('transform: an error or a time-out sends only that entry to the DLQ; the rest of the batch is sunk', async () => {
    const p = await compile(
      'source: { stream: orders }',
      'expression_timeout_ms: 10',
      'transform: |',
      '  loop',
      '    ? ($f := function($x) { $f($x) }; $f(1))',
      '    : { "order": data.orderId, "double": data.amount * 2 }',
      'sink: { type: log }',
    );
    const sink = new FakeSink();
    const input = entries(order('a'), order('b', { loop: true }), { loop: false, data: { orderId: 'c', amount: 'x' } }, order('d'));
    const { outcomes } = await run(p, { log: sink }, input);
    expect(outcomes.map((o) => (o.kind === 'dlq' ? `${o.stage}: ${o.error}` : o.kind))).toEqual([
      'sunk',
      'transform: timed out after 10 ms',
      'transform: The left side of the "*" operator must evaluate to a number',
      'sunk',
    ]);
    expect(sink.messages.map((m) => m.value)).toEqual([{ order: 'a', double: 20 }, { order: 'd', double: 20 }]);
  }, 10_000);

  it('transform: a result of undefined (every path missing) goes to the DLQ at transform', async () => {
    const p = await compile('source: { stream: orders }', 'transform: data.missing', 'sink: { type: log }');
    const input = entries(order('a'));
    const { outcomes } = await run(p, { log: new FakeSink() }, input);
    expect(outcomes).toEqual([{
      id: input[0]!.id, kind: 'dlq', stage: 'transform', attempts: 1, sink: undefined,
      error: 'transform produced no value (every path it reads is missing?)',
      payload: JSON.stringify(order('a')), event: order('a'),
    }]);
  });

  it('a batch mixing every outcome gets them all, in entry order', async () => {
    const p = await compile(
      'source: { stream: orders }',
      `validate: { schema: "${SCHEMA_ID}" }`,
      'filter: event != "ignored"',
      'transform: \'data.orderId = "none" ? data.missing : { "order": data.orderId }\'',
      'sink: { type: log }',
    );
    const sink = new FakeSink(async (batch) => batch.map((m) => (m.value as { order: string }).order === 'boom' ? new UnrecoverableError('rejected') : undefined));
    const input = entries(order('a'), '{oops', { event: 'x' }, order('b', { event: 'ignored' }), order('none'), order('boom'), order('c'));
    const result = await run(p, { log: sink }, input);
    expect(kinds(result)).toEqual(['sunk', 'dlq', 'dlq', 'filtered', 'dlq', 'dlq', 'sunk']);
    expect(result.outcomes.map((o) => (o.kind === 'dlq' ? o.stage : '-'))).toEqual(['-', 'decode', 'validate', '-', 'transform', 'sink', '-']);
    expect(Object.keys(result.stageSeconds)).toEqual([...STAGES]);
  });

  it('stageSeconds charges each stage its own time: a sink that takes 30 ms shows in sink, and the stages add up to at most the call', async () => {
    const p = await compile('source: { stream: orders }', 'transform: \'{ "order": data.orderId }\'', 'sink: { type: log }');
    const sink = new FakeSink(async () => { await new Promise((r) => setTimeout(r, 30)); });
    const started = performance.now();
    const { stageSeconds } = await run(p, { log: sink }, entries(order('a'), order('b')));
    const elapsed = (performance.now() - started) / 1000;
    expect(stageSeconds.sink).toBeGreaterThanOrEqual(0.029);
    const total = STAGES.reduce((sum, stage) => sum + stageSeconds[stage], 0);
    expect(total).toBeLessThanOrEqual(elapsed);
  });

  it('a pathologically deep event does not escape process(): it goes to the DLQ at the stage that choked', async () => {
    const p = await compile('source: { stream: orders }', 'max_event_bytes: 10000000', 'transform: data', 'sink: { type: log }');
    const depth = 200_000;
    const deep = `{"event":"x","data":${'['.repeat(depth)}${']'.repeat(depth)}}`;
    const input = [...entries(deep), ...entries(order('after'))];
    const { outcomes } = await run(p, { log: new FakeSink() }, input);
    expect(outcomes.map((o) => (o.kind === 'dlq' ? o.stage : o.kind))).toEqual(['transform', 'sunk']);
  });

  it('an empty batch has no outcomes and writes nothing', async () => {
    const p = await compile('source: { stream: orders }', 'sink: { type: log }');
    const sink = new FakeSink();
    const { outcomes } = await run(p, { log: sink }, []);
    expect(outcomes).toEqual([]);
    expect(sink.batches).toEqual([]);
  });
});

describe('PipelineRunner: several sinks with when:', () => {
  const routed = () => compile(
    'source: { stream: orders }',
    'transform: \'{ "kind": kind, "order": data.orderId }\'',
    'sinks:',
    '  - { type: log, id: to-a, when: kind = "a" }',
    '  - { type: log, id: to-b, when: kind = "b" }',
    '  - { type: log, id: from-source, when: $input.event = "order-special" }',
  );

  it('routes each event to the sinks whose when holds; when sees the value, $input the event', async () => {
    const a = new FakeSink();
    const b = new FakeSink();
    const special = new FakeSink();
    const input = entries(order('1', { kind: 'a' }), order('2', { kind: 'b' }), { ...order('3', { kind: 'a' }), event: 'order-special' });
    const { outcomes } = await run(await routed(), { 'to-a': a, 'to-b': b, 'from-source': special }, input);
    expect(outcomes.map((o) => o.kind === 'sunk' && o.sinks)).toEqual([['to-a'], ['to-b'], ['to-a', 'from-source']]);
    expect(a.messages.map((m) => m.value)).toEqual([{ kind: 'a', order: '1' }, { kind: 'a', order: '3' }]);
    expect(b.messages.map((m) => m.value)).toEqual([{ kind: 'b', order: '2' }]);
    expect(special.messages.map((m) => m.id)).toEqual([input[2]!.id]);
  });

  it('an event no sink admits is filtered (with its value), and no sink is called for it', async () => {
    const a = new FakeSink();
    const b = new FakeSink();
    const input = entries(order('9', { kind: 'c' }));
    const { outcomes } = await run(await routed(), { 'to-a': a, 'to-b': b, 'from-source': new FakeSink() }, input);
    expect(outcomes).toEqual([{ id: input[0]!.id, kind: 'filtered', event: order('9', { kind: 'c' }), value: { kind: 'c', order: '9' } }]);
    expect([a.batches, b.batches]).toEqual([[], []]);
  });

  it('a sink without when gets every event; sunk lists the sinks in pipeline order', async () => {
    const p = await compile(
      'source: { stream: orders }',
      'sinks:',
      '  - { type: log, id: first, when: data.amount > 1 }',
      '  - { type: log, id: second }',
    );
    const { outcomes } = await run(p, { first: new FakeSink(), second: new FakeSink() }, entries(order('1')));
    expect(outcomes[0]).toMatchObject({ kind: 'sunk', sinks: ['first', 'second'] });
  });

  it('a when that fails at run time sends the entry to the DLQ at stage sink, naming the sink', async () => {
    const p = await compile(
      'source: { stream: orders }',
      'sinks:',
      '  - { type: log, id: strict, when: $number(data.code) > 1 }',
      '  - { type: log, id: all }',
    );
    const input = entries({ data: { code: 'abc' } }, { data: { code: '5' } });
    const { outcomes } = await run(p, { strict: new FakeSink(), all: new FakeSink() }, input);
    expect(outcomes[0]).toMatchObject({ kind: 'dlq', stage: 'sink', sink: 'strict', error: 'sink strict when: Unable to cast value to a number: "abc"' });
    expect(outcomes[1]!.kind).toBe('sunk');
    expect(outcomes[1]!.kind === 'sunk' && [...outcomes[1]!.sinks].sort()).toEqual(['all', 'strict']);
  });

  it('one sink failing for good sends the entry to the DLQ even though the other sink took it', async () => {
    const p = await compile('source: { stream: orders }', 'sinks:', '  - { type: log, id: ok }', '  - { type: log, id: broken }');
    const ok = new FakeSink();
    const broken = new FakeSink(async () => { throw new UnrecoverableError('400 bad request'); });
    const { outcomes } = await run(p, { ok, broken }, entries(order('1')));
    expect(outcomes[0]).toMatchObject({ kind: 'dlq', stage: 'sink', sink: 'broken', attempts: 1, error: 'sink broken: 400 bad request' });
    expect(ok.messages).toHaveLength(1);
  });

  it('two sinks failing for good: the DLQ entry names the first to fail, whichever comes first in the pipeline', async () => {
    const p = await compile('source: { stream: orders }', 'sinks:', '  - { type: log, id: slow }', '  - { type: log, id: fast }');
    const slow = new FakeSink(async () => {
      await new Promise((r) => setTimeout(r, 30));
      throw new UnrecoverableError('slow said no');
    });
    const fast = new FakeSink(async () => { throw new UnrecoverableError('fast said no'); });
    const { outcomes } = await run(p, { slow, fast }, entries(order('1')));
    expect(outcomes[0]).toMatchObject({ kind: 'dlq', stage: 'sink', sink: 'fast', error: 'sink fast: fast said no' });
  });
});

describe('PipelineRunner: sink retries', () => {
  const withRetry = (retry: string) => compile('source: { stream: orders }', 'sink: { type: log }', `retry: ${retry}`);

  it('a sink failing twice then succeeding: sunk, tried with attempts 1, 2, 3, backing off between', async () => {
    const p = await withRetry('{ attempts: 5, backoff: fixed, delay_ms: 50 }');
    const sink = new FakeSink(async (batch) => batch.map((m) => (m.attempt < 3 ? new RetryableError(`busy (try ${m.attempt})`) : undefined)));
    const { delays, sleep } = recordingSleep();
    const input = entries(order('1'));
    const { outcomes } = await run(p, { log: sink }, input, { sleep });
    expect(outcomes[0]).toMatchObject({ kind: 'sunk', sinks: ['log'] });
    expect(sink.messages.map((m) => [m.id, m.attempt])).toEqual([[input[0]!.id, 1], [input[0]!.id, 2], [input[0]!.id, 3]]);
    expect(delays).toEqual([50, 50]);
  });

  it('a plain Error (not RetryableError) is retried too', async () => {
    const p = await withRetry('{ attempts: 3, backoff: fixed, delay_ms: 1 }');
    const sink = new FakeSink(async (_batch, call) => { if (call === 1) throw new Error('ECONNRESET'); });
    const { outcomes } = await run(p, { log: sink }, entries(order('1')));
    expect(outcomes[0]!.kind).toBe('sunk');
    expect(sink.messages.map((m) => m.attempt)).toEqual([1, 2]);
  });

  it('exponential back-off doubles the delay up to max_delay_ms, with ±20% jitter', async () => {
    const p = await withRetry('{ attempts: 5, backoff: exponential, delay_ms: 100, max_delay_ms: 300 }');
    const { delays, sleep } = recordingSleep();
    await run(p, { log: new FakeSink(async () => { throw new Error('down'); }) }, entries(order('1')), { sleep });
    expect(delays).toHaveLength(4);
    const bases = [100, 200, 300, 300];
    delays.forEach((d, i) => {
      expect(d).toBeGreaterThanOrEqual(bases[i]! * 0.8);
      expect(d).toBeLessThanOrEqual(bases[i]! * 1.2);
    });
  });

  it('a sink always failing: DLQ at stage sink after retry.attempts tries, with the last error', async () => {
    const p = await withRetry('{ attempts: 4, backoff: fixed, delay_ms: 5 }');
    const sink = new FakeSink(async (batch) => batch.map((m) => new Error(`timeout on try ${m.attempt}`)));
    const { delays, sleep } = recordingSleep();
    const input = entries(order('1'));
    const { outcomes } = await run(p, { log: sink }, input, { sleep });
    expect(outcomes).toEqual([{
      id: input[0]!.id, kind: 'dlq', stage: 'sink', sink: 'log', attempts: 4,
      error: 'sink log: timeout on try 4', payload: JSON.stringify(order('1')), event: order('1'),
    }]);
    expect(sink.messages.map((m) => m.attempt)).toEqual([1, 2, 3, 4]);
    expect(delays).toEqual([5, 5, 5]);
  });

  it('the default retry policy tries 3 times', async () => {
    const p = await compile('source: { stream: orders }', 'sink: { type: log }');
    const sink = new FakeSink(async () => { throw new RetryableError('nope'); });
    const { outcomes } = await run(p, { log: sink }, entries(order('1')));
    expect(outcomes[0]).toMatchObject({ kind: 'dlq', attempts: 3 });
    expect(sink.batches).toHaveLength(3);
  });

  it('UnrecoverableError goes to the DLQ after one attempt, without backing off', async () => {
    const p = await withRetry('{ attempts: 5 }');
    const sink = new FakeSink(async () => { throw new UnrecoverableError('422 invalid recipient'); });
    const { delays, sleep } = recordingSleep();
    const { outcomes } = await run(p, { log: sink }, entries(order('1')), { sleep });
    expect(outcomes[0]).toMatchObject({ kind: 'dlq', stage: 'sink', attempts: 1, error: 'sink log: 422 invalid recipient' });
    expect(sink.batches).toHaveLength(1);
    expect(delays).toEqual([]);
  });

  it('BatchError: only the failed messages are retried', async () => {
    const p = await withRetry('{ attempts: 3, backoff: fixed, delay_ms: 1 }');
    const sink = new FakeSink(async (batch, call) => {
      if (call === 1) throw new BatchError(batch.map((m) => ((m.value as { data: { orderId: string } }).data.orderId === '2' ? new Error('slot busy') : undefined)));
    });
    const input = entries(order('1'), order('2'), order('3'));
    const { outcomes } = await run(p, { log: sink }, input);
    expect(kinds({ outcomes } as BatchResult)).toEqual(['sunk', 'sunk', 'sunk']);
    expect(sink.batches.map((b) => b.map((m) => [m.id, m.attempt]))).toEqual([
      [[input[0]!.id, 1], [input[1]!.id, 1], [input[2]!.id, 1]],
      [[input[1]!.id, 2]],
    ]);
  });

  it('per-message results: a failed message is retried, an unrecoverable one is not', async () => {
    const p = await withRetry('{ attempts: 3, backoff: fixed, delay_ms: 1 }');
    const sink = new FakeSink(async (batch) => batch.map((m) => {
      const id = (m.value as { data: { orderId: string } }).data.orderId;
      if (id === 'flaky' && m.attempt === 1) return new RetryableError('flaky');
      if (id === 'bad') return new UnrecoverableError('bad');
      return undefined;
    }));
    const input = entries(order('flaky'), order('bad'), order('good'));
    const { outcomes } = await run(p, { log: sink }, input);
    expect(outcomes.map((o) => (o.kind === 'dlq' ? `dlq after ${o.attempts}` : o.kind))).toEqual(['sunk', 'dlq after 1', 'sunk']);
    expect(sink.batches.map((b) => b.map((m) => m.id))).toEqual([input.map((e) => e.id), [input[0]!.id]]);
  });

  it('a sink throwing something that is not an Error still gets a readable DLQ reason', async () => {
    const p = await withRetry('{ attempts: 1 }');
    const sink = new FakeSink(async () => { throw 'socket hang up'; });
    const { outcomes } = await run(p, { log: sink }, entries(order('1')));
    expect(outcomes[0]).toMatchObject({ kind: 'dlq', stage: 'sink', error: 'sink log: socket hang up', attempts: 1 });
  });

  it('an abort during back-off leaves the failed entries deferred; the ones that succeeded are sunk', async () => {
    const p = await withRetry('{ attempts: 5, backoff: fixed, delay_ms: 60000 }');
    const controller = new AbortController();
    const seen: (AbortSignal | undefined)[] = [];
    // Shutdown arrives while the runner waits to retry.
    const sleep = async (_ms: number, signal?: AbortSignal) => {
      seen.push(signal);
      controller.abort();
      return !signal?.aborted;
    };
    const sink = new FakeSink(async (batch) => batch.map((m) => ((m.value as { data: { orderId: string } }).data.orderId === 'fails' ? new Error('503') : undefined)));
    const input = entries(order('ok'), order('fails'));
    const { outcomes } = await run(p, { log: sink }, input, { sleep, signal: controller.signal });
    expect(outcomes).toEqual([
      { id: input[0]!.id, kind: 'sunk', event: order('ok'), value: order('ok'), sinks: ['log'] },
      { id: input[1]!.id, kind: 'deferred', reason: 'sink log: 503 (shutting down before retry 2)' },
    ]);
    expect(seen).toEqual([controller.signal]);
    expect(sink.batches).toHaveLength(1);
  });

  it.each([
    ["OOM command not allowed when used memory > 'maxmemory'."],
    ["READONLY You can't write against a read only replica."],
    ['MISCONF Redis is configured to save RDB snapshots, but it is currently not able to persist on disk.'],
  ])('Redis refusing writes (%s) is not the event\'s fault: deferred after the attempts, not dead-lettered', async (reply) => {
    const p = await withRetry('{ attempts: 3, backoff: fixed, delay_ms: 1 }');
    const sink = new FakeSink(async (batch) => batch.map((m) => ((m.value as { data: { orderId: string } }).data.orderId === 'refused' ? new Error(reply) : undefined)));
    const input = entries(order('ok'), order('refused'));
    const { outcomes } = await run(p, { log: sink }, input, recordingSleep());
    expect(outcomes).toEqual([
      { id: input[0]!.id, kind: 'sunk', event: order('ok'), value: order('ok'), sinks: ['log'] },
      { id: input[1]!.id, kind: 'deferred', reason: `sink log: ${reply}` },
    ]);
    expect(sink.batches).toHaveLength(3);
  });

  it('other Redis errors are the event\'s (WRONGTYPE, a script error): dead-lettered as before', async () => {
    const p = await withRetry('{ attempts: 2, backoff: fixed, delay_ms: 1 }');
    const sink = new FakeSink(async () => { throw new Error('WRONGTYPE Operation against a key holding the wrong kind of value'); });
    const { outcomes } = await run(p, { log: sink }, entries(order('1')), recordingSleep());
    expect(outcomes[0]).toMatchObject({ kind: 'dlq', stage: 'sink', attempts: 2, error: /^sink log: WRONGTYPE/ });
  });

  it('without a sleep option the real back-off honours an already aborted signal at once', async () => {
    const p = await withRetry('{ attempts: 3, backoff: fixed, delay_ms: 60000 }');
    const controller = new AbortController();
    controller.abort();
    const runner = new PipelineRunner(p, new Map([['log', new FakeSink(async () => { throw new Error('down'); })]]), { signal: controller.signal });
    const input = entries(order('1'));
    const result = await runner.process(input);
    expectOneOutcomeEach(result, input);
    expect(result.outcomes[0]).toMatchObject({ kind: 'deferred', reason: 'sink log: down (shutting down before retry 2)' });
  });
});

describe('PipelineRunner: the event loop runs during a batch', () => {
  /** Runs a batch of 4 with every filter and transform evaluation logged beside the event loop's turns. */
  async function turnsDuring(yieldEveryMs: number): Promise<string[]> {
    const p = await compile('source: { stream: orders }', 'filter: \'event = "order-placed"\'', 'transform: \'{ "order": data.orderId }\'', 'sink: { type: log }');
    const log: string[] = [];
    const spy = (stage: string, expr: NonNullable<CompiledPipeline['filter']>) => ({
      ...expr, evaluate: (input: unknown, bindings?: Record<string, unknown>) => { log.push(stage); return expr.evaluate(input, bindings); },
    });
    const pipeline = { ...p, filter: spy('filter', p.filter!), transform: spy('transform', p.transform!) };
    let running = true;
    const turn = () => {
      log.push('turn');
      if (running) setImmediate(turn);
    };
    setImmediate(turn);
    await new PipelineRunner(pipeline, new Map([['log', new FakeSink()]]), { yieldEveryMs }).process(entries(order('a'), order('b'), order('c'), order('d')));
    running = false;
    return log.filter((x, i) => x !== 'turn' || log[i - 1] !== 'turn'); // one 'turn' per gap
  }

  it('with yieldEveryMs 0 it lets the event loop turn between any two evaluations', async () => {
    const log = await turnsDuring(0);
    const evaluations = log.filter((x) => x !== 'turn');
    expect(evaluations).toEqual(['filter', 'filter', 'filter', 'filter', 'transform', 'transform', 'transform', 'transform']);
    for (let i = 1; i < log.length; i++) expect(log[i - 1] === 'turn' || log[i] === 'turn', `turn between ${i - 1} and ${i}: ${log.join(' ')}`).toBe(true);
  });

  it('within its time slice it evaluates without a turn (compiled expressions need no await)', async () => {
    const log = await turnsDuring(60_000);
    expect(log.join(' ')).toContain('filter filter filter filter');
    expect(log.join(' ')).toContain('transform transform transform transform');
  });
});

describe('PipelineRunner construction', () => {
  it('refuses a sink map that lacks one of the pipeline\'s sinks', async () => {
    const p = await compile('name: needs-two', 'source: { stream: orders }', 'sinks:', '  - { type: log, id: a }', '  - { type: log, id: b }');
    expect(() => new PipelineRunner(p, new Map([['a', new FakeSink()]]))).toThrow("pipeline needs-two: no sink instance for 'b'");
  });
});
