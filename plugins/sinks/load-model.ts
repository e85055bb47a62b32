import { defineSink, type SinkMessage } from '../../engine/plugins/define-sink.ts';
import { SinkClosedError, UnrecoverableError, RetryableError, errorMessage } from '../../engine/errors.ts';
import { sendJson, settleEach } from '../../engine/plugins/http-client.ts';
import { backoffDelay, sleep } from '../../engine/runner/backoff.ts';

interface LoadModelConfig {
  url: string;
  timeout_ms: number;
  retries: number;
  retry_delay_ms: number;
  announce?: string;
  registry: string;
}

/** What the model runtime is asked to load. */
interface ModelRef {
  model_name: string;
  version: string;
  checkpoint_path?: string;
}

function modelRef(m: SinkMessage): ModelRef {
  const v = (m.value ?? {}) as Record<string, unknown>;
  const name = v.model_name ?? v.name;
  if (typeof name !== 'string' || !name || v.version === undefined || v.version === null || v.version === '') {
    throw new UnrecoverableError('load-model needs model_name and version in the transformed event');
  }
  return { model_name: name, version: String(v.version), ...(typeof v.checkpoint_path === 'string' ? { checkpoint_path: v.checkpoint_path } : {}) };
}

/**
 * On a model-ready event, asks a model runtime to load the model: POST `url` with
 * `{ name, version, checkpoint_path }`, with a time limit and its own retries (network errors,
 * 5xx). Loaded versions are recorded in a Redis hash (`registry`, field `<name>@<version>`), so an
 * already-loaded version is skipped — redelivery loads nothing twice. With `announce`, publishes
 * `model-loaded` or, once its retries are spent, `model-load-failed` to that stream.
 */
export default defineSink<LoadModelConfig>({
  name: 'load-model',
  description: 'Ask a model runtime to load a model version (skipping versions already loaded) and announce the result',
  configSchema: {
    type: 'object',
    additionalProperties: false,
    required: ['url'],
    properties: {
      url: { type: 'string', pattern: '^https?://', description: "The model runtime's load endpoint." },
      timeout_ms: { type: 'integer', minimum: 1, default: 30000, description: 'Time limit of one load request.' },
      retries: { type: 'integer', minimum: 0, maximum: 20, default: 3, description: 'Retries after a failed load (network error, 5xx, time-out).' },
      retry_delay_ms: { type: 'integer', minimum: 0, default: 1000, description: 'First retry delay, doubling.' },
      announce: { type: 'string', minLength: 1, description: 'Stream for model-loaded / model-load-failed events; unset: none.' },
      registry: { type: 'string', minLength: 1, default: 'synapse:models:loaded', description: 'Redis hash recording loaded versions.' },
    },
  },
  examples: [
    { url: 'http://127.0.0.1:8000/models/load' },
    { url: 'http://cyrex:8000/models/load', timeout_ms: 60000, retries: 5, announce: 'model-events' },
  ],
  create(config, ctx) {
    let closed = false;
    const abort = new AbortController();
    const policy = { attempts: config.retries + 1, backoff: 'exponential' as const, delayMs: config.retry_delay_ms, maxDelayMs: 60_000 };

    const announce = async (event: string, data: Record<string, unknown>) => {
      if (config.announce) await ctx.publish(config.announce, { event, source: 'synapse', timestamp: new Date().toISOString(), data });
    };

    /** The registry's record of a version: loaded, and whether model-loaded was announced. */
    interface LoadedRecord extends ModelRef { loadedAt: string; entry: string; load_time_ms: number; announced: boolean }

    const record = async (field: string, rec: LoadedRecord) => ctx.redis.hset(config.registry, field, JSON.stringify(rec));

    /** Announces a loaded version once; a failed announcement is retried by the runner. */
    const announceLoaded = async (field: string, rec: LoadedRecord) => {
      if (rec.announced || !config.announce) return;
      const { loadedAt: _l, entry: _e, announced: _a, ...data } = rec;
      await announce('model-loaded', data);
      await record(field, { ...rec, announced: true });
    };

    const load = async (m: SinkMessage) => {
      const ref = modelRef(m);
      const field = `${ref.model_name}@${ref.version}`;
      const known = await ctx.redis.hget(config.registry, field);
      if (known) {
        ctx.metrics.count('models_already_loaded');
        // Loaded before; if its announcement failed then, make it now.
        await announceLoaded(field, { announced: true, ...(JSON.parse(known) as Partial<LoadedRecord>) } as LoadedRecord);
        return;
      }
      // Only the request to the runtime is retried here; recording and announcing are steps of
      // their own, so a failed announcement is not mistaken for a failed load.
      const started = Date.now();
      let lastError: unknown;
      let tries = 0;
      let loaded = false;
      for (let attempt = 1; attempt <= policy.attempts && !loaded; attempt++) {
        tries = attempt;
        try {
          await sendJson(config.url, { name: ref.model_name, version: ref.version, checkpoint_path: ref.checkpoint_path }, { timeoutMs: config.timeout_ms });
          loaded = true;
        } catch (err) {
          lastError = err;
          if (!(err instanceof RetryableError) || attempt === policy.attempts) break;
          if (!(await sleep(backoffDelay(policy, attempt), abort.signal))) throw new RetryableError(`shutting down during load of ${field}`);
        }
      }
      if (!loaded) {
        ctx.metrics.count('model_loads_failed');
        await announce('model-load-failed', { ...ref, error: errorMessage(lastError), attempts: tries });
        throw new UnrecoverableError(`loading ${field} failed: ${errorMessage(lastError)}`);
      }
      const rec: LoadedRecord = { ...ref, loadedAt: new Date().toISOString(), entry: m.id, load_time_ms: Date.now() - started, announced: false };
      await record(field, rec);
      ctx.metrics.count('models_loaded');
      await announceLoaded(field, rec);
    };

    return {
      async write(batch) {
        if (closed) throw new SinkClosedError('load-model sink is closed');
        return settleEach(batch, 4, load);
      },
      async close() {
        closed = true;
        abort.abort();
      },
    };
  },
});
