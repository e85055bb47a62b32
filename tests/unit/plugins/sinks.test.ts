import { pino } from 'pino';
import { describe, expect, it } from 'vitest';
import { SinkRegistry } from '../../../engine/plugins/sink-registry.ts';
import type { SinkMessage } from '../../../engine/plugins/define-sink.ts';
import { builtinSinks } from '../../../plugins/sinks/index.ts';
import log from '../../../plugins/sinks/log.ts';
import publish from '../../../plugins/sinks/publish.ts';
import { memoryContext, runSinkConformance, writeResults } from './sink-conformance.ts';

const registry = SinkRegistry.withBuiltins();

describe('built-in sinks: every example validates against its configSchema', () => {
  it('the built-in set includes log and publish, each registered under its name', () => {
    expect(registry.names()).toEqual(builtinSinks.map((d) => d.name).sort());
    expect(registry.names()).toEqual(expect.arrayContaining(['log', 'publish']));
  });

  for (const def of builtinSinks) {
    describe(def.name, () => {
      it('has at least one example', () => {
        expect(def.examples?.length ?? 0).toBeGreaterThan(0);
      });
      (def.examples ?? []).forEach((example, i) => {
        it(`example ${i + 1}: ${JSON.stringify(example)}`, () => {
          const validate = registry.get(def.name)!.validateConfig;
          const config = structuredClone(example);
          const valid = validate(config);
          expect(validate.errors ?? []).toEqual([]);
          expect(valid).toBe(true);
          // What the schema cannot say (JSONata, durations) the sink's own check() says.
          expect(def.check?.(config) ?? []).toEqual([]);
        });
      });
    });
  }
});

describe('configSchema checks', () => {
  const cases: { sink: string; config: unknown; valid: boolean; after?: unknown }[] = [
    { sink: 'log', config: {}, valid: true, after: { level: 'info' } },
    { sink: 'log', config: { level: 'warn' }, valid: true, after: { level: 'warn' } },
    { sink: 'log', config: { level: 'loud' }, valid: false },
    { sink: 'log', config: { lvl: 'info' }, valid: false },
    { sink: 'publish', config: { stream: 'out' }, valid: true, after: { stream: 'out' } },
    { sink: 'publish', config: { stream: 'out', maxlen: 1000 }, valid: true },
    { sink: 'publish', config: {}, valid: false },
    { sink: 'publish', config: { stream: '' }, valid: false },
    { sink: 'publish', config: { stream: 'out', maxlen: 0 }, valid: false },
    { sink: 'publish', config: { stream: 'out', maxlen: 1.5 }, valid: false },
    { sink: 'publish', config: { stream: 'out', strem: 'x' }, valid: false },
  ];
  for (const c of cases) {
    it(`${c.sink} ${JSON.stringify(c.config)} is ${c.valid ? 'valid' : 'invalid'}`, () => {
      const config = structuredClone(c.config);
      expect(registry.get(c.sink)!.validateConfig(config)).toBe(c.valid);
      if (c.after) expect(config).toEqual(c.after);
    });
  }
});

runSinkConformance(log, () => memoryContext({ sinkId: 'log' }), { perMessageFailures: false });
runSinkConformance(publish, () => memoryContext({ sinkId: 'publish' }));

const batch = (...values: unknown[]): SinkMessage[] =>
  values.map((value, i) => ({ id: `${i + 1}-0`, value, event: { event: 'source-event', n: i }, attempt: 1 }));

describe('log sink', () => {
  function capture(level: string) {
    const lines: Record<string, unknown>[] = [];
    // pino writes each line synchronously to a destination with a write() method.
    const stream = { write: (line: string) => void lines.push(JSON.parse(line)) };
    return { lines, logger: pino({ level, base: undefined, timestamp: false }, stream) };
  }

  it('writes one line per message at the configured level, with the entry id and the transformed value', async () => {
    const { lines, logger } = capture('trace');
    const { ctx } = memoryContext({ logger });
    const sink = log.create({ level: 'warn' }, ctx);
    await sink.write(batch({ userId: 'u1' }, { userId: 'u2' }));
    expect(lines).toEqual([
      { level: 40, id: '1-0', event: { userId: 'u1' }, msg: 'event' },
      { level: 40, id: '2-0', event: { userId: 'u2' }, msg: 'event' },
    ]);
    await sink.close();
  });

  it('lines below the logger level are not written', async () => {
    const { lines, logger } = capture('info');
    const sink = log.create({ level: 'debug' }, memoryContext({ logger }).ctx);
    await sink.write(batch({ n: 1 }));
    expect(lines).toEqual([]);
  });
});

describe('publish sink', () => {
  it('appends each transformed value to the configured stream, in order, with maxlen', async () => {
    const mem = memoryContext();
    const sink = publish.create({ stream: 'user-notifications', maxlen: 500 }, mem.ctx);
    expect(await writeResults(sink, batch({ n: 1 }, { n: 2 }))).toEqual([undefined, undefined]);
    expect(mem.streams.get('user-notifications')).toEqual([
      { id: '1-0', envelope: { n: 1 }, opts: { maxlen: 500 } },
      { id: '2-0', envelope: { n: 2 }, opts: { maxlen: 500 } },
    ]);
  });

  it('without maxlen the stream is not capped', async () => {
    const mem = memoryContext();
    const sink = publish.create({ stream: 'out' }, mem.ctx);
    await sink.write(batch({ n: 1 }));
    expect(mem.streams.get('out')).toEqual([{ id: '1-0', envelope: { n: 1 } }]);
  });

  it('a partial failure still publishes the others and names the failed message only', async () => {
    const mem = memoryContext();
    const sink = publish.create({ stream: 'out' }, mem.ctx);
    mem.failMessage({ n: 2 });
    expect(await writeResults(sink, batch({ n: 1 }, { n: 2 }, { n: 3 }))).toEqual([undefined, 'Error: XADD out failed', undefined]);
    expect(mem.streams.get('out')!.map((e) => e.envelope)).toEqual([{ n: 1 }, { n: 3 }]);
  });
});
