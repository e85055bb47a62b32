/**
 * Event data against the evaluator: a batch of heavy events must not hold the event loop (the
 * admin API, other pipelines, Redis replies wait on it), a backtracking regex must not freeze the
 * engine, and an event that timed out is dead-lettered once, not evaluated again.
 */
import { afterEach, describe, expect, it } from 'vitest';
import { ping, pipelineYaml, publish, startEngine, type EngineFixture } from '../../helpers/engine.ts';
import { waitFor } from '../../helpers/redis.ts';
import { readStream } from '../../helpers/streams.ts';

let open: EngineFixture[] = [];
afterEach(async () => {
  await Promise.all(open.splice(0).map((f) => f.close()));
});

async function engineWith(extra: { filter?: string; transform?: string; yaml?: string; extra?: string }): Promise<EngineFixture> {
  const yaml = extra.yaml ?? pipelineYaml({ name: 'heavy', stream: 'heavy-in', out: 'heavy-out', validate: false, filter: extra.filter, transform: extra.transform, extra: extra.extra });
  const f = await startEngine({ pipelines: { heavy: yaml } });
  open.push(f);
  return f;
}

describe('a batch of heavy events', () => {
  it('100 events of 50,000 integers each: the admin API keeps answering while the batch is evaluated', { timeout: 90_000 }, async () => {
    // A time limit no event reaches even on a busy machine: what is tested is the yielding, not the limit.
    const f = await engineWith({ filter: '$count(data.items[$ > 5]) > 0', transform: '{ "n": data.n, "big": $count(data.items[$ > 5]) }', extra: 'expression_timeout_ms: 5000' });
    let settled = 0;
    f.engine.on('settled', (_name: string, outcomes: unknown[]) => (settled += outcomes.length));
    const items = Array.from({ length: 50_000 }, (_, i) => i);
    await publish(f.client, 'heavy-in', Array.from({ length: 100 }, (_, n) => ({ ...ping(n), data: { n, items } })));

    // /health asked over HTTP again and again, each as soon as the previous answers, until all
    // 100 are settled.
    const address = await f.app.listen({ host: '127.0.0.1', port: 0 });
    let answered = 0;
    let answeredMidway = 0;
    const deadline = Date.now() + 60_000;
    while (settled < 100) {
      const res = await fetch(`${address}/health`);
      expect(res.status).toBe(200);
      answered++;
      if (settled > 0 && settled < 100) answeredMidway++;
      if (Date.now() > deadline) throw new Error(`the batch never settled (${settled} of 100)`);
    }
    // The batch is settled in one piece (one read), so what counts is how often /health got
    // through while it was being evaluated: the runner lets the event loop turn every few ms.
    expect(answered, `${answered} answers while the batch was processed`).toBeGreaterThanOrEqual(20);
    expect(answeredMidway).toBe(0);
    expect(await f.client.xlen('heavy-out')).toBe(100);
  });
});

describe('a regex that would backtrack exponentially', () => {
  it('$match(s, /(a+)+$/) on 36 a\'s and a "!" returns promptly; the pipeline goes on', async () => {
    const f = await engineWith({ filter: '$exists($match(data.s, /(a+)+$/)[0])', transform: '{ "n": data.n }' });
    await publish(f.client, 'heavy-in', [{ ...ping(1), data: { n: 1, s: `${'a'.repeat(36)}!` } }, { ...ping(2), data: { n: 2, s: 'aaa' } }]);
    await waitFor(async () => (await f.client.xlen('heavy-out')) === 1, 'the matching event in the output');
    expect(await f.client.exists('heavy-in:dlq')).toBe(0);
  });
});

describe('an expression that runs out of time', () => {
  it('goes to the DLQ with the time-out as its reason, evaluated once', async () => {
    const yaml = [
      'name: heavy',
      'source: { stream: heavy-in, start: "0", block_ms: 100 }',
      'expression_timeout_ms: 50',
      'transform: \'data.spin ? $count($filter([1..900000], function($v) { $v % 7 = 0 })) : { "n": data.n }\'',
      'sink: { type: publish, with: { stream: heavy-out } }',
    ].join('\n') + '\n';
    const f = await engineWith({ yaml });
    await publish(f.client, 'heavy-in', [{ ...ping(1), data: { n: 1, spin: true } }, { ...ping(2), data: { n: 2 } }]);
    const [entry] = await waitFor(async () => {
      const got = await readStream(f.client, 'heavy-in:dlq');
      return got.length > 0 && got;
    }, 'the DLQ entry');
    expect(entry!.fields).toMatchObject({ stage: 'transform', error: 'timed out after 50 ms', attempts: '1' });
    await waitFor(async () => (await f.client.xlen('heavy-out')) === 1, 'the other event in the output');
  });
});
