import { isDeepStrictEqual } from 'node:util';
import { pino, type Logger } from 'pino';
import { describe, expect, it } from 'vitest';
import { BatchError, SinkClosedError } from '../../../engine/errors.ts';
import type { Sink, SinkContext, SinkDefinition, SinkMessage, SinkWriteResult } from '../../../engine/plugins/define-sink.ts';
import { SinkRegistry } from '../../../engine/plugins/sink-registry.ts';

/** What one conformance case needs: a context, and optionally a way to make one message fail. */
export interface ConformanceSetup {
  ctx: SinkContext;
  /** The `with:` block; default: the definition's first example, with its schema defaults applied. */
  config?: Record<string, unknown>;
  /**
   * Makes later writes fail for the message whose value deep-equals `value` (and only it).
   * Required unless the suite runs with `perMessageFailures: false`.
   */
  failMessage?: (value: unknown) => void;
  /** How many I/O calls (publish, queue, broadcast, redis) the context has seen so far. */
  ioCalls: () => number;
}

/** An in-memory SinkContext: streams kept in a Map, Redis refused, every I/O call counted. */
export function memoryContext(opts: { pipeline?: string; sinkId?: string; logger?: Logger } = {}) {
  const streams = new Map<string, { id: string; envelope: unknown; opts?: { maxlen?: number } }[]>();
  const broadcasts: { channel: string; message: unknown }[] = [];
  const failing: unknown[] = [];
  let io = 0;
  let seq = 0;
  const ctx: SinkContext = {
    pipeline: opts.pipeline ?? 'conformance',
    sinkId: opts.sinkId ?? 'sink',
    logger: opts.logger ?? pino({ level: 'silent' }),
    metrics: { count: () => undefined },
    get redis(): never {
      io++;
      throw new Error('no Redis in unit tests');
    },
    async publish(stream, envelope, publishOpts) {
      io++;
      if (failing.some((v) => isDeepStrictEqual(v, envelope))) throw new Error(`XADD ${stream} failed`);
      const id = `${++seq}-0`;
      const list = streams.get(stream) ?? [];
      list.push({ id, envelope, ...(publishOpts ? { opts: publishOpts } : {}) });
      streams.set(stream, list);
      return id;
    },
    async publishMany(stream, envelopes, publishOpts) {
      return Promise.all(envelopes.map((e) => ctx.publish(stream, e, publishOpts).catch((err: Error) => err)));
    },
    queue() {
      io++;
      throw new Error('no queues in unit tests');
    },
    async broadcast(channel, message) {
      io++;
      broadcasts.push({ channel, message });
    },
  };
  return {
    ctx,
    streams,
    broadcasts,
    ioCalls: () => io,
    failMessage: (value: unknown) => {
      failing.push(value);
    },
  };
}

/** The per-message outcome of a write, however the sink reported it (void, results, or a throw). */
export async function writeResults(sink: Sink, batch: readonly SinkMessage[]): Promise<(string | undefined)[]> {
  try {
    const results = await sink.write(batch);
    return batch.map((_, i) => describe(results?.[i]));
  } catch (err) {
    if (err instanceof BatchError) return batch.map((_, i) => describe(err.errors[i]));
    return batch.map(() => describe(err as Error));
  }
  function describe(r: SinkWriteResult | Error | undefined) {
    return r ? `${r.name}: ${r.message}` : undefined;
  }
}

const messages = (...values: unknown[]): SinkMessage[] =>
  values.map((value, i) => ({ id: `${i + 1}-0`, value, event: { event: 'conformance', data: value }, attempt: 1 }));

/**
 * The conformance suite every sink passes (STYLE: Benthos StreamTests, Vector compliance):
 * a well-formed definition, create() without I/O, connect/close twice, write after close, and a
 * partial batch failure reported per message. `perMessageFailures: false` is for a sink whose
 * messages have no failure of their own (log: nothing it does can fail for one message only).
 */
export function runSinkConformance(
  def: SinkDefinition<any>,
  makeCtx: () => ConformanceSetup | Promise<ConformanceSetup>,
  opts: { perMessageFailures?: boolean } = {},
): void {
  const registered = new SinkRegistry();
  registered.register(def);
  const validate = registered.get(def.name)!.validateConfig;

  async function make() {
    const setup = await makeCtx();
    const config = structuredClone(setup.config ?? def.examples?.[0] ?? {}) as Record<string, unknown>;
    expect(validate(config), `config ${JSON.stringify(config)} must be valid`).toBe(true);
    return { ...setup, config, sink: def.create(config, setup.ctx) };
  }

  describe(`sink conformance: ${def.name}`, () => {
    it('has a name, a description, examples and a strict configSchema with a description on every field', () => {
      expect(def.name).toMatch(/^[a-z][a-z0-9-]*$/);
      expect(def.description.length).toBeGreaterThan(0);
      expect(def.examples?.length ?? 0).toBeGreaterThan(0);
      expect(def.configSchema.type).toBe('object');
      expect(def.configSchema.additionalProperties).toBe(false);
      const properties = (def.configSchema.properties ?? {}) as Record<string, { description?: string }>;
      const undocumented = Object.entries(properties).filter(([, p]) => !p.description).map(([k]) => k);
      expect(undocumented).toEqual([]);
    });

    it('create() wires without I/O', async () => {
      const { ioCalls } = await make();
      expect(ioCalls()).toBe(0);
    });

    it('connect and close may each be called twice', async () => {
      const { sink } = await make();
      if (sink.connect) {
        await sink.connect();
        await sink.connect();
      }
      await expect(sink.close()).resolves.toBeUndefined();
      await expect(sink.close()).resolves.toBeUndefined();
    });

    it('close without connect or write resolves', async () => {
      const { sink } = await make();
      await expect(sink.close()).resolves.toBeUndefined();
    });

    it('a batch that succeeds is reported as success for every message', async () => {
      const { sink } = await make();
      await sink.connect?.();
      expect(await writeResults(sink, messages({ n: 1 }, { n: 2 }, { n: 3 }))).toEqual([undefined, undefined, undefined]);
      await sink.close();
    });

    it('write after close rejects with SinkClosedError', async () => {
      const { sink } = await make();
      await sink.connect?.();
      await sink.close();
      const err = await Promise.resolve().then(() => sink.write(messages({ n: 1 }))).then(() => undefined, (e: unknown) => e);
      expect(err).toBeInstanceOf(SinkClosedError);
      expect((err as SinkClosedError).code).toBe('SYN_SINK_CLOSED');
    });

    if (opts.perMessageFailures === false) return;

    it('a partial batch failure is reported per message', async () => {
      const { sink, failMessage } = await make();
      expect(failMessage, 'the setup must say how to make one message fail').toBeTypeOf('function');
      await sink.connect?.();
      failMessage!({ n: 2 });
      const results = await writeResults(sink, messages({ n: 1 }, { n: 2 }, { n: 3 }));
      expect(results.map((r) => r !== undefined)).toEqual([false, true, false]);
      await sink.close();
    });
  });
}
