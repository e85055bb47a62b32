/**
 * `npm run demo`: publishes a realistic, time-ordered flow of platform events so a newcomer sees
 * every pipeline act — a training run (Helox, flat field maps) ending in model-ready, inference
 * traffic with some failures, tasks, logins, challenges, errors. Run the engine first
 * (`npm start`), then this, in another terminal; watch with `npx synapse tail STREAM` or the
 * admin API.
 *
 * Events are written in their producers' real formats, not only in the schemas' preferred form:
 * Helox's flat field maps as redis-py writes them (Python number forms, `str(True)`, naive
 * `utcnow()` timestamps, no source); Cyrex's dicts as its publishers build them (flat, `None` as
 * null, naive timestamps, JSON in `payload`), some as envelopes; the platform services' events as
 * their TypeScript template builds them, through the schema-checked Publisher.
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

/**
 * A platform service's event as the TypeScript template builds it (`event, timestamp, source,
 * service, action, data`), through the schema-checked publisher.
 */
async function service(stream: string, event: string, source: string, action: string, data: Record<string, unknown>) {
  const templateEvent = { event, timestamp: new Date().toISOString(), source, service: source, action, data };
  await publisher.publish(stream, templateEvent);
  sent++;
  await sleep(pause);
}

/** An event's envelope through the schema-checked publisher (Cyrex's envelope form). */
async function emit(stream: string, event: string, source: string, data: Record<string, unknown>) {
  await publisher.publish(stream, { event, source, timestamp: utcnow(), data });
  sent++;
  await sleep(pause);
}

/** Python's `datetime.utcnow().isoformat()`: microseconds, no offset. */
const utcnow = () => `${new Date().toISOString().slice(0, 23)}000`;

/** How redis-py writes a value: numbers as Python's repr (`5e-05`, `1260.0`), other values as given. */
function pyStr(v: unknown): string {
  if (typeof v === 'boolean') return v ? 'True' : 'False'; // the str() a developer adds: redis-py refuses bool
  if (v === null || v === undefined) return 'None';
  if (typeof v !== 'number') return String(v);
  if (Number.isInteger(v)) return String(v);
  const abs = Math.abs(v);
  if (abs !== 0 && (abs < 1e-4 || abs >= 1e16)) {
    const [m, e] = v.toExponential().split('e');
    return `${m}e${e![0] === '-' ? '-' : '+'}${e!.replace(/^[-+]/, '').padStart(2, '0')}`;
  }
  return String(v);
}

/**
 * A Helox event as its Python producer writes it: `xadd` of a flat dict, nested values already
 * `json.dumps`-ed, everything else as redis-py turns it into a string.
 */
async function helox(stream: string, fields: Record<string, unknown>) {
  const flat: string[] = [];
  for (const [k, v] of Object.entries({ ...fields, timestamp: utcnow() })) {
    flat.push(k, v !== null && typeof v === 'object' ? JSON.stringify(v) : pyStr(v));
  }
  await redis.xadd(stream, '*', ...flat);
  sent++;
  await sleep(pause);
}

/**
 * A Cyrex event as its publishers build it and its streaming client writes it: a flat dict, `None`
 * for every argument not given, `utcnow()` timestamp, `json.dumps` in the `payload` field.
 */
async function cyrex(stream: string, event: Record<string, unknown>) {
  await redis.xadd(stream, '*', 'payload', JSON.stringify({ timestamp: utcnow(), ...event }));
  sent++;
  await sleep(pause);
}

const model = 'helox-sentiment';
const version = `v${new Date().toISOString().slice(0, 10).replace(/-/g, '')}`;
const pick = <T>(xs: T[]) => xs[Math.floor(Math.random() * xs.length)]!;

console.log(`demo: publishing to ${url}`);
const stopRuntime = await startModelRuntime(Number(values['model-runtime-port']));
if (stopRuntime) console.log(`demo: answering model loads on 127.0.0.1:${values['model-runtime-port']} as a stand-in for Cyrex`);

// 1. A training run, from start to a model ready to serve.
await helox('training-events', {
  event: 'training-started', model_name: model,
  config: { architecture: 'distilbert', epochs: 3 }, dataset_info: { name: 'reviews-2026', samples: 120000 },
  training_config: { batch_size: 32, learning_rate: 0.00005 },
});
for (let step = 100; step <= 600; step += 100) {
  await helox('training-events', {
    event: 'training-progress', model_name: model, step, epoch: step / 200,
    metrics: { accuracy: 0.7 + step / 3000 }, learning_rate: 0.00005, loss: Number((1.2 - step / 700).toFixed(3)), elapsed_time_seconds: step * 2.05,
  });
}
await helox('training-events', {
  event: 'checkpoint-created', model_name: model, checkpoint_path: `/checkpoints/${model}/${version}`,
  step: 600, epoch: 3, metrics: { accuracy: 0.91 }, checkpoint_size_mb: 255.4, is_best: true,
});
await helox('training-events', {
  event: 'evaluation-completed', model_name: model, evaluation_type: 'holdout',
  metrics: { accuracy: 0.9, f1: 0.88 }, dataset_name: 'reviews-2026-test', evaluation_time_seconds: 42.7, num_samples: null,
});
await helox('training-events', {
  event: 'training-completed', model_name: model, final_metrics: { accuracy: 0.91 }, total_time_seconds: 1260.4, total_steps: 600,
});
await helox('model-events', { event: 'model-ready', model_name: model, version, checkpoint_path: `/checkpoints/${model}/${version}` });

// 2. Users arrive.
const users = ['u-ada', 'u-grace', 'u-linus'];
for (const userId of users) {
  await service('platform-events', 'user-logged-in', 'auth-service', 'user-logged-in', { userId, email: `${userId.slice(2)}@example.com`, loginMethod: 'password' });
}

// 3. Inference traffic, some of it failing, one carrying a challenge.
const n = Number(values.inferences);
for (let i = 0; i < n; i++) {
  const success = Math.random() > 0.15;
  const userId = pick(users);
  const latency_ms = success ? 80 + Math.random() * 400 : 2000 + Math.random() * 6000;
  // publish_inference: the success call passes the metrics, the failure call only the error;
  // every other argument is None. Every fourth one is written as an envelope instead.
  const inference = {
    event: 'inference-complete', source: 'cyrex', model_name: model, version,
    user_id: i % 3 === 0 ? null : userId, request_id: null, latency_ms,
    tokens_used: success ? 50 + Math.floor(Math.random() * 400) : null, cost: null,
    confidence: success ? Number((0.5 + Math.random() / 2).toFixed(3)) : null,
    input_length: success ? 120 : null, output_length: success ? 340 : null, model_type: success ? 'classifier' : null,
    temperature: success ? 0.2 : null, top_p: success ? 0.9 : null, max_tokens: success ? 512 : null,
    success, error: success ? null : 'upstream timeout', error_type: success ? null : 'TimeoutError',
    metadata: i === 3 ? { challengeId: 'ch-42' } : {},
  };
  if (i % 4 === 1) {
    const { event, source, ...data } = inference;
    await emit('inference-events', event, source, data);
  } else await cyrex('inference-events', inference);
  if (i % 10 === 0) {
    await cyrex('inference-events', {
      event: 'rag-retrieval', source: 'cyrex', query: 'refund policy', top_k: 5, retrieval_time_ms: 30 + Math.random() * 100,
      documents_retrieved: 5, model_name: null, collection_name: i % 20 === 0 ? 'support-docs' : null,
      similarity_scores: [0.91, 0.88, 0.8, 0.77, 0.7], timestamp: utcnow(), metadata: {},
    });
  }
  await service('platform-events', 'api-request', 'api-gateway', 'api-request', {
    endpoint: pick(['/v1/infer', '/v1/tasks', '/v1/me']), method: 'POST', statusCode: pick([200, 200, 200, 201, 404, 502]),
    latencyMs: Math.round(20 + Math.random() * 300), userId,
  });
}

// 4. The AI runtime's agents decide things: publish_agent_decision writes a flat dict to
// platform-events (route-agent-decisions forwards it to agi-decisions); one more as an envelope
// straight to agi-decisions.
for (const [decision_type, queue] of [['route', 'billing'], ['route', 'support']] as const) {
  await cyrex('platform-events', {
    event: 'agent-decision', source: 'cyrex', agent_name: 'support-router', decision_type, decision_data: { queue },
    reasoning: null, confidence: Number((0.6 + Math.random() * 0.4).toFixed(2)), execution_time_ms: null,
    timestamp: utcnow(), metadata: {},
  });
}
await emit('agi-decisions', 'agent-decision', 'cyrex', {
  agent_name: 'support-router', decision_type: 'escalate', decision_data: { queue: 'humans' }, reasoning: 'The user asked twice.',
  confidence: 0.7, execution_time_ms: Math.round(100 + Math.random() * 300),
});

// Cyrex's health monitor: publish_platform_event of a flat dict, without a source.
await cyrex('platform-events', {
  event: 'model-health-alert', model_name: model, status: 'unhealthy', issues: ['High error rate: 15.00%'],
  memory_usage: 0.0, error_rate: 0.15, avg_latency: null, timestamp: utcnow(),
});

// 5. Tasks, challenges and achievements.
const task = { taskId: 't-1', userId: 'u-ada', title: 'Quarterly report', status: 'pending', createdAt: new Date().toISOString() };
await service('platform-events', 'task-created', 'task-orchestrator', 'task-created', task);
// publishTaskCompleted(taskId, result): the task comes back as result.
await service('platform-events', 'task-completed', 'task-orchestrator', 'task-completed', { taskId: 't-1', completedAt: new Date().toISOString(), result: { ...task, status: 'completed' } });
await service('platform-events', 'task-failed', 'task-orchestrator', 'task-failed', { taskId: 't-2', userId: 'u-grace', error: 'worker lost', failedAt: new Date().toISOString() });
await service('platform-events', 'challenge-started', 'challenge-service', 'challenge-started', { challengeId: 'ch-42', userId: 'u-linus' });
await service('platform-events', 'challenge-completed', 'challenge-service', 'challenge-completed', { challengeId: 'ch-42', userId: 'u-linus', score: 97 });
await service('platform-events', 'achievement-unlocked', 'engagement-service', 'achievement-unlocked', { userId: 'u-linus', achievementId: 'first-win', achievementName: 'First Win' });

// 6. Integrations and errors, for the ops channel.
await service('platform-events', 'external-api-call', 'external-bridge-service', 'external-api-call', { integrationName: 'stripe', endpoint: '/v1/charges', method: 'POST', statusCode: 200, latencyMs: 180 });
await service('platform-events', 'integration-status-changed', 'external-bridge-service', 'integration-status-changed', { integrationName: 'stripe', status: 'degraded' });
await service('error-events', 'error', 'notification-service', 'error', { service: 'notification-service', error: 'SMTP connection refused', error_type: 'ConnectionError', stack: 'Error: SMTP...', context: { attempt: 3 } });

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
