/**
 * `npm run demo`: publishes a realistic, time-ordered flow of platform events so a newcomer sees
 * every pipeline act — a training run (Helox, flat field maps) ending in model-ready, inference
 * traffic with some failures, tasks, logins, challenges, errors. Run the engine first
 * (`npm start`), then this, in another terminal; watch with `npx synapse tail STREAM` or the
 * admin API. Every JSON event goes through the schema-checked Publisher; Helox's flat maps are
 * written the way its Python producer writes them.
 *
 * Options: --redis URL (default REDIS_URL, else the engine's managed Redis under .synapse/,
 * else 127.0.0.1:6379), --speed N (events per second, default 20), --inferences N (default 60).
 */
import { readFile } from 'node:fs/promises';
import { createServer } from 'node:http';
import { parseArgs } from 'node:util';
import { Redis } from 'ioredis';
import { Publisher } from '../engine/publish/publisher.ts';

const { values } = parseArgs({
  options: {
    redis: { type: 'string' },
    speed: { type: 'string', default: '20' },
    inferences: { type: 'string', default: '60' },
    'model-runtime-port': { type: 'string', default: '8000' },
  },
});

/**
 * A stand-in for Cyrex's model runtime, so cyrex-auto-load has something to load into: it
 * answers POST /models/load with 200 (the pipeline's default CYREX_URL is 127.0.0.1:8000).
 * Skipped when the port is taken (a real runtime may be there).
 */
async function startModelRuntime(port: number): Promise<(() => void) | undefined> {
  const server = createServer((req, res) => {
    let body = '';
    req.on('data', (c) => (body += c));
    req.on('end', () => {
      console.log(`demo model runtime: ${req.method} ${req.url} ${body}`);
      res.writeHead(200, { 'content-type': 'application/json' }).end('{"status":"loaded"}');
    });
  });
  return new Promise((resolve) => {
    server.once('error', () => resolve(undefined));
    server.listen(port, '127.0.0.1', () => resolve(() => server.close()));
  });
}

async function redisUrl(): Promise<string> {
  if (values.redis) return values.redis;
  if (process.env.REDIS_URL) return process.env.REDIS_URL;
  const managed = await readFile('.synapse/redis.port', 'utf8').catch(() => '');
  return managed ? `redis://127.0.0.1:${managed.trim()}` : 'redis://127.0.0.1:6379';
}

const url = await redisUrl();
const redis = new Redis(url, { maxRetriesPerRequest: 3 });
const publisher = await Publisher.connect({ redis });
const pause = 1000 / Number(values.speed);
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
let sent = 0;

/** A JSON envelope through the schema-checked publisher. */
async function emit(stream: string, event: string, source: string, data: Record<string, unknown>, extra: Record<string, unknown> = {}) {
  await publisher.publish(stream, { event, source, timestamp: new Date().toISOString(), data, ...extra });
  sent++;
  await sleep(pause);
}

/** A Helox event as its Python producer writes it: a flat field map, nested values as JSON strings. */
async function helox(stream: string, fields: Record<string, unknown>) {
  const flat: string[] = [];
  for (const [k, v] of Object.entries(fields)) flat.push(k, v !== null && typeof v === 'object' ? JSON.stringify(v) : String(v));
  await redis.xadd(stream, '*', ...flat);
  sent++;
  await sleep(pause);
}

const model = 'helox-sentiment';
const version = `v${new Date().toISOString().slice(0, 10).replace(/-/g, '')}`;
const now = () => new Date().toISOString();
const pick = <T>(xs: T[]) => xs[Math.floor(Math.random() * xs.length)]!;

console.log(`demo: publishing to ${url}`);
const stopRuntime = await startModelRuntime(Number(values['model-runtime-port']));
if (stopRuntime) console.log(`demo: answering model loads on 127.0.0.1:${values['model-runtime-port']} as a stand-in for Cyrex`);

// 1. A training run, from start to a model ready to serve.
await helox('training-events', {
  event: 'training-started', timestamp: now(), source: 'helox', model_name: model,
  config: { architecture: 'distilbert', epochs: 3 }, dataset_info: { name: 'reviews-2026', samples: 120000 },
  training_config: { batch_size: 32, learning_rate: 0.00005 },
});
for (let step = 100; step <= 600; step += 100) {
  await helox('training-events', {
    event: 'training-progress', timestamp: now(), source: 'helox', model_name: model, step, epoch: Math.ceil(step / 200),
    metrics: { accuracy: 0.7 + step / 3000 }, learning_rate: 0.00005, loss: (1.2 - step / 700).toFixed(3), elapsed_time_seconds: step * 2,
  });
}
await helox('training-events', {
  event: 'checkpoint-created', timestamp: now(), source: 'helox', model_name: model, checkpoint_path: `/checkpoints/${model}/${version}`,
  step: 600, epoch: 3, metrics: { accuracy: 0.91 }, checkpoint_size_mb: 255.4, is_best: 'true',
});
await helox('training-events', {
  event: 'evaluation-completed', timestamp: now(), source: 'helox', model_name: model, evaluation_type: 'holdout',
  metrics: { accuracy: 0.9, f1: 0.88 }, dataset_name: 'reviews-2026-test', evaluation_time_seconds: 42, num_samples: 5000,
});
await helox('training-events', {
  event: 'training-completed', timestamp: now(), source: 'helox', model_name: model, final_metrics: { accuracy: 0.91 }, total_time_seconds: 1260, total_steps: 600,
});
await helox('model-events', { event: 'model-ready', timestamp: now(), source: 'helox', model_name: model, version, checkpoint_path: `/checkpoints/${model}/${version}` });

// 2. Users arrive.
const users = ['u-ada', 'u-grace', 'u-linus'];
for (const userId of users) {
  await emit('platform-events', 'user-logged-in', 'auth-service', { userId, method: 'password' }, { service: 'auth-service', action: 'login' });
}

// 3. Inference traffic, some of it failing, one carrying a challenge.
const n = Number(values.inferences);
for (let i = 0; i < n; i++) {
  const success = Math.random() > 0.15;
  const userId = pick(users);
  await emit('inference-events', 'inference-complete', 'cyrex', {
    model_name: model, version, latency_ms: Math.round(success ? 80 + Math.random() * 400 : 2000 + Math.random() * 6000),
    user_id: userId, request_id: `req-${i}`, tokens_used: 50 + Math.floor(Math.random() * 400), cost: Number((Math.random() / 100).toFixed(5)),
    confidence: Number((0.5 + Math.random() / 2).toFixed(3)), input_length: 120, output_length: 340, model_type: 'classifier',
    temperature: 0.2, top_p: 0.9, max_tokens: 512, success, ...(success ? {} : { error: 'upstream timeout', error_type: 'TimeoutError' }),
    metadata: i === 3 ? { challengeId: 'ch-42' } : {},
  });
  if (i % 10 === 0) {
    await emit('inference-events', 'rag-retrieval', 'cyrex', {
      query: 'refund policy', top_k: 5, retrieval_time_ms: 30 + Math.random() * 100, documents_retrieved: 5, model_name: model,
      collection_name: 'support-docs', similarity_scores: [0.91, 0.88, 0.8, 0.77, 0.7],
    });
  }
  await emit('platform-events', 'api-request', 'api-gateway', {
    endpoint: pick(['/v1/infer', '/v1/tasks', '/v1/me']), method: 'POST', statusCode: pick([200, 200, 200, 201, 404, 502]),
    latencyMs: Math.round(20 + Math.random() * 300), userId,
  }, { service: 'api-gateway', action: 'request' });
}

// 4. The AI runtime's agents decide things.
for (const [decision_type, queue] of [['route', 'billing'], ['route', 'support'], ['escalate', 'humans']] as const) {
  await emit('agi-decisions', 'agent-decision', 'cyrex', {
    agent_name: 'support-router', decision_type, decision_data: { queue }, reasoning: `The request belongs with ${queue}.`,
    confidence: Number((0.6 + Math.random() * 0.4).toFixed(2)), execution_time_ms: Math.round(100 + Math.random() * 300),
  });
}

// 5. Tasks, challenges and achievements.
await emit('platform-events', 'task-created', 'task-orchestrator', { taskId: 't-1', userId: 'u-ada', title: 'Quarterly report' }, { service: 'task-orchestrator', action: 'create' });
await emit('platform-events', 'task-completed', 'task-orchestrator', { taskId: 't-1', userId: 'u-ada', title: 'Quarterly report' }, { service: 'task-orchestrator', action: 'complete' });
await emit('platform-events', 'task-failed', 'task-orchestrator', { taskId: 't-2', userId: 'u-grace', error: 'worker lost' }, { service: 'task-orchestrator', action: 'fail' });
await emit('platform-events', 'challenge-started', 'challenge-service', { challengeId: 'ch-42', userId: 'u-linus' }, { service: 'challenge-service', action: 'start' });
await emit('platform-events', 'challenge-completed', 'challenge-service', { challengeId: 'ch-42', userId: 'u-linus', score: 97 }, { service: 'challenge-service', action: 'complete' });
await emit('platform-events', 'achievement-unlocked', 'engagement-service', { userId: 'u-linus', achievementId: 'first-win', name: 'First Win' }, { service: 'engagement-service', action: 'unlock' });

// 6. Integrations and errors, for the ops channel.
await emit('platform-events', 'external-api-call', 'external-bridge-service', { integration: 'stripe', endpoint: '/v1/charges', statusCode: 200, latencyMs: 180 }, { service: 'external-bridge-service', action: 'call' });
await emit('platform-events', 'integration-status-changed', 'external-bridge-service', { integration: 'stripe', status: 'degraded', previousStatus: 'healthy' }, { service: 'external-bridge-service', action: 'status' });
await emit('error-events', 'error', 'notification-service', { service: 'notification-service', error: 'SMTP connection refused', error_type: 'ConnectionError', stack: 'Error: SMTP...', context: { attempt: 3 } }, { service: 'notification-service', action: 'error' });

console.log(`demo: published ${sent} events. Try:
  npx synapse tail notifications:u-ada
  curl -s localhost:8080/aggregates/analytics-inference | jq
  curl -s localhost:8080/pipelines | jq '.pipelines[] | {name, counters}'`);
await publisher.close();
redis.disconnect();
if (stopRuntime) {
  // Give the engine time to ask for the model before the stand-in goes away.
  await sleep(5_000);
  stopRuntime();
}
