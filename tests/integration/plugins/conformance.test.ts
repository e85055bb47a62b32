import { isDeepStrictEqual } from 'node:util';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import type { Redis } from 'ioredis';
import { stringify } from 'yaml';
import { parseDuration } from '../../../engine/config/duration.ts';
import { compileExpression } from '../../../engine/expr/compile-expression.ts';
import type { Sink, SinkDefinition, SinkMessage } from '../../../engine/plugins/define-sink.ts';
import { builtinSinks } from '../../../plugins/sinks/index.ts';
import { aggregateKeys } from '../../../plugins/sinks/aggregate.ts';
import { jobIdFor } from '../../../plugins/sinks/queue.ts';
import { compileText, diagnosticsOf, positionOf } from '../../helpers/config-errors.ts';
import { startHttpRecorder, type HttpRecorder } from '../../helpers/http-recorder.ts';
import { testKey } from '../../helpers/pipelines.ts';
import { realSinkContext } from '../../helpers/real-sink-context.ts';
import { startTestRedis, type TestRedis } from '../../helpers/redis.ts';
import { runSinkConformance, type ConformanceSetup } from '../../unit/plugins/sink-conformance.ts';

/**
 * The shared sink conformance suite (tests/unit/plugins/sink-conformance.ts) run against a real
 * Redis: each built-in sink gets the engine's own createSinkContext over a live connection (and
 * a real HTTP server for the sinks that call one), once per example config in its definition.
 *
 * The suite writes values `{ n }`. Sinks that need more from a message (a notification's userId,
 * a model's name and version) see `{ n }` mapped to a valid message of theirs; which message
 * fails is decided by the suite, and made to fail for real where Redis or the downstream can
 * fail one message alone: a key of the wrong type in its way (notify's inbox, aggregate's window,
 * the queue's job), a 400 from the server (http, load-model). Publish and broadcast send every
 * message to one stream or channel, where Redis cannot fail one alone; their failing message is
 * refused by the test's context instead.
 */

let server: TestRedis;
let redis: Redis;
let closers: (() => Promise<unknown>)[] = [];

beforeAll(async () => {
  server = await startTestRedis();
  redis = server.client();
});
afterEach(async () => {
  await Promise.all(closers.splice(0).map((c) => c().catch(() => undefined)));
});
afterAll(async () => {
  await server?.close();
});

/** An instant the aggregate examples' windows are pinned to, so a test knows which window a message lands in. */
const PINNED_TIME = Date.UTC(2030, 0, 1, 12, 0, 0);

interface Env {
  pipeline: string;
  recorder: HttpRecorder;
  /** Values (after mapping) whose requests the recorder answers with 400. */
  refused: unknown[];
}

interface Plan {
  /** Fresh resources and the test's server for an example config. */
  config(example: Record<string, unknown>, env: Env): Record<string, unknown>;
  /** The message the sink sees for the suite's value `{ n }`. */
  value?(n: number): unknown;
  /** Makes the message of `{ n }` fail, for real where the sink's I/O allows it. */
  fail?(n: number, config: Record<string, unknown>, env: Env, real: ReturnType<typeof realSinkContext>): Promise<void>;
}

const notification = (n: number) => ({ userId: `u${n}`, type: 'info', title: `Title ${n}`, message: `Message ${n}` });
const inference = (n: number) => ({ model_name: `m${n}`, version: '1', latency_ms: n * 10, tokens_used: n, success: true, error: false });

const plans: Record<string, Plan> = {
  log: {
    config: (ex) => ex,
  },
  publish: {
    config: (ex) => ({ ...ex, stream: testKey('out') }),
    async fail(n, _config, _env, real) {
      real.failPublishOf({ n });
    },
  },
  notify: {
    config: (ex, env) => ({
      ...ex,
      inbox: testKey('inbox'),
      ...(ex.queue ? { queue: testKey('delivery') } : {}),
      ...(ex.webhook ? { webhook: `${env.recorder.url}/notify` } : {}),
    }),
    value: notification,
    async fail(n, config) {
      await redis.set(`${String(config.inbox)}:u${n}`, 'not a stream');
    },
  },
  aggregate: {
    config: (ex) => ex,
    value: inference,
    async fail(n, config, env) {
      const key = await compileExpression(String(config.key)).evaluate(inference(n));
      const windowMs = parseDuration(String(config.window))!;
      const start = Math.floor(PINNED_TIME / windowMs) * windowMs;
      await redis.set(aggregateKeys(env.pipeline, 'aggregate').window(start, String(key)), 'not a hash');
    },
  },
  'load-model': {
    config: (ex, env) => ({
      ...ex,
      url: `${env.recorder.url}/models/load`,
      registry: testKey('registry'),
      retry_delay_ms: 10,
      ...(ex.announce ? { announce: testKey('model-events') } : {}),
    }),
    value: (n) => ({ model_name: 'conformance', version: String(n), checkpoint_path: `/ckpt/${n}` }),
    async fail(n, _config, env) {
      env.refused.push({ name: 'conformance', version: String(n), checkpoint_path: `/ckpt/${n}` });
    },
  },
  broadcast: {
    config: (ex) => ({ ...ex, channel: testKey('channel') }),
    value: (n) => ({ n, userId: `u${n}` }),
    async fail(n, _config, _env, real) {
      real.failBroadcastOf({ n, userId: `u${n}` });
    },
  },
  http: {
    config: (ex, env) => ({ ...ex, url: `${env.recorder.url}/hook` }),
    async fail(n, _config, env) {
      env.refused.push({ n });
    },
  },
  queue: {
    config: (ex) => ({ ...ex, queue: testKey('jobs') }),
    async fail(n, config, env) {
      // The suite's message `{ n }` has entry id `<n>-0`.
      await redis.set(`bull:${String(config.queue)}:${jobIdFor(env.pipeline, `${n}-0`)}`, 'not a job hash');
    },
  },
};

/**
 * The definition as the suite sees it: the same name, schema and examples; its sink maps the
 * suite's `{ n }` values (and pins the event time), and waits for failures being set up in Redis.
 */
function adapted(def: SinkDefinition<any>, plan: Plan, pending: Promise<unknown>[]): SinkDefinition<any> {
  const map = (m: SinkMessage): SinkMessage => {
    const n = (m.value as { n: number }).n;
    const value = plan.value ? plan.value(n) : m.value;
    return { ...m, value, event: { event: 'conformance', timestamp: new Date(PINNED_TIME + n).toISOString(), data: value } };
  };
  return {
    ...def,
    create(config, ctx) {
      const sink = def.create(config, ctx);
      const wrapped: Sink = {
        async write(batch) {
          await Promise.all(pending);
          return sink.write(batch.map(map));
        },
        close: () => sink.close(),
      };
      if (sink.connect) wrapped.connect = () => sink.connect!();
      return wrapped;
    },
  };
}

for (const def of builtinSinks) {
  const plan = plans[def.name];
  describe(`${def.name} (real Redis)`, () => {
    it('has a conformance plan in this file', () => {
      expect(plan, `add a plan for the '${def.name}' sink to conformance.test.ts`).toBeDefined();
    });
    if (!plan) return;
    (def.examples ?? []).forEach((example, i) => {
      describe(`example ${i + 1}: ${JSON.stringify(example)}`, () => {
        const pending: Promise<unknown>[] = [];
        runSinkConformance(adapted(def, plan, pending), async (): Promise<ConformanceSetup> => {
          pending.length = 0;
          const env: Env = { pipeline: testKey('conformance'), recorder: undefined as never, refused: [] };
          env.recorder = await startHttpRecorder((req) => (env.refused.some((v) => isDeepStrictEqual(v, req.json)) ? { status: 400, body: { error: 'refused by the test' } } : { status: 200 }));
          const real = realSinkContext({ redis, redisUrl: server.url, pipeline: env.pipeline, sinkId: def.name });
          closers.push(() => env.recorder.close(), () => real.close());
          const config = plan.config(structuredClone(example) as Record<string, unknown>, env);
          return {
            ctx: real.ctx,
            config,
            ioCalls: real.ioCalls,
            ...(plan.fail ? { failMessage: (value: unknown) => void pending.push(plan.fail!((value as { n: number }).n, config, env, real)) } : {}),
          };
        }, { perMessageFailures: plan.fail !== undefined });

        it('compiles inside a pipeline file', async () => {
          const text = stringify({ name: `example-${def.name}`, source: { stream: 'in' }, sink: { type: def.name, with: example } });
          const compiled = await compileText(text, { HOOK_TOKEN: 'secret' });
          expect(compiled.sinks.map((s) => s.type)).toEqual([def.name]);
        });

        it('with an unknown key added, is rejected at load with FILE:LINE:COL at that key', async () => {
          const text = stringify({ name: `example-${def.name}`, source: { stream: 'in' }, sink: { type: def.name, with: { ...example, bogus_key: 1 } } });
          const diagnostics = await diagnosticsOf(text, { HOOK_TOKEN: 'secret' });
          expect(diagnostics.map((d) => d.message)).toEqual([`unknown key 'bogus_key' in ${def.name} sink 'with'`]);
          expect({ line: diagnostics[0]!.line, col: diagnostics[0]!.col }).toEqual(positionOf(text, 'bogus_key'));
        });
      });
    });
  });
}
