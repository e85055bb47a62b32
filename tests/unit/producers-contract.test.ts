import { beforeAll, describe, expect, it } from 'vitest';
import { copyCatalog } from '../../scripts/catalog.ts';
import { loadPipelines, type CompiledPipeline } from '../../engine/config/load-pipeline.ts';
import { SchemaRegistry } from '../../engine/config/schema-registry.ts';
import { SinkRegistry } from '../../engine/plugins/sink-registry.ts';
import { encodeForCodec } from '../../engine/runner/codec.ts';
import { dryRun, describeOutcome } from '../../engine/testing/dry-run.ts';
import { fixtureEntry, loadProducerFixtures, type ProducerFixture } from '../helpers/producer-fixtures.ts';

/**
 * The contract with the platform's producers: every event type, exactly as its producer's code
 * writes it (tests/fixtures/producers, from generate.py), through every shipped pipeline of its
 * stream, decoded the way the engine decodes that stream. Nothing may reach a DLQ; the main flows'
 * outputs are checked whole.
 */

const fixtures = await loadProducerFixtures();
let pipelines: CompiledPipeline[] = [];

beforeAll(async () => {
  // The catalog's own pipelines and schemas (catalog.json), not whatever else pipelines/ holds.
  const catalog = await copyCatalog();
  try {
    const schemas = await SchemaRegistry.load(catalog.schemas);
    const loaded = await loadPipelines([catalog.pipelines], { schemas, sinks: SinkRegistry.withBuiltins() });
    expect(loaded.errors).toEqual([]);
    pipelines = loaded.pipelines;
  } finally {
    await catalog.remove();
  }
});

const fixture = (name: string): ProducerFixture => {
  const f = fixtures.find((x) => x.name === name);
  if (!f) throw new Error(`no fixture ${name}`);
  return f;
};
const pipeline = (name: string): CompiledPipeline => {
  const p = pipelines.find((x) => x.name === name);
  if (!p) throw new Error(`no pipeline ${name}`);
  return p;
};
const onStream = (stream: string) => pipelines.filter((p) => p.source.kind === 'stream' && p.source.stream === stream);

/** The one value `pipelineName` sank for the fixture, per sink id. */
async function sunk(fixtureName: string, pipelineName: string): Promise<Record<string, unknown[]>> {
  const { outcomes, sunk: out } = await dryRun(pipeline(pipelineName), [fixtureEntry(fixture(fixtureName))], { raw: true });
  expect(outcomes.map((o) => describeOutcome(o).outcome)).toEqual(['sunk']);
  return out;
}

/** The producer's timestamp as written: naive for Python, with its Z for the TypeScript services. */
function writtenTimestamp(f: ProducerFixture): string {
  const payload = f.fields.payload ? (JSON.parse(f.fields.payload) as { timestamp: string }) : undefined;
  return payload ? payload.timestamp : f.fields.timestamp!;
}

describe('the producer fixtures', () => {
  it('cover every stream the catalog reads, from every producer of the platform', () => {
    expect(new Set(fixtures.map((f) => f.stream))).toEqual(new Set(['training-events', 'model-events', 'inference-events', 'agi-decisions', 'platform-events', 'error-events']));
    expect(new Set(fixtures.map((f) => f.producer))).toEqual(new Set([
      'helox', 'cyrex', 'task-orchestrator', 'api-gateway', 'auth-service', 'engagement-service', 'external-bridge-service', 'challenge-service',
    ]));
  });

  it('are written the way the Python producers write: naive timestamps, None as null, str() of numbers and booleans', () => {
    expect(writtenTimestamp(fixture('helox-training-progress'))).toMatch(/^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d+)?$/);
    expect(fixture('helox-training-progress').fields.learning_rate).toBe('2e-05');
    expect(fixture('helox-checkpoint-created').fields.is_best).toBe('True');
    expect(fixture('helox-evaluation-completed-no-samples').fields.num_samples).toBe('None');
    expect(JSON.parse(fixture('cyrex-inference-failed-flat').fields.payload!)).toMatchObject({ user_id: null, cost: null, success: false });
  });
});

describe('every fixture through every pipeline of its stream: sunk or filtered, never dead-lettered', () => {
  for (const f of fixtures) {
    it(f.name, async () => {
      const results: Record<string, string> = {};
      for (const p of onStream(f.stream)) {
        const { outcomes } = await dryRun(p, [fixtureEntry(f)], { raw: true });
        const o = outcomes[0]!;
        results[p.name] = o.kind === 'dlq' ? `dlq at ${o.stage}: ${o.error}` : o.kind;
      }
      expect(Object.keys(results).length).toBeGreaterThan(0);
      for (const [name, outcome] of Object.entries(results)) expect(['sunk', 'filtered'], `${name}: ${outcome}`).toContain(outcome);
    });
  }
});

describe('which pipelines act on each producer event', () => {
  /** Fixture → the pipelines that sink it; every other pipeline of its stream filters it. */
  const sunkBy: Record<string, string[]> = {
    'helox-training-started': ['realtime-training'],
    'helox-training-progress': ['analytics-training', 'realtime-training'],
    'helox-training-progress-fallback': ['analytics-training', 'realtime-training'],
    'helox-training-completed': ['realtime-training'],
    'helox-checkpoint-created': ['realtime-training'],
    'helox-evaluation-completed': ['realtime-training'],
    'helox-evaluation-completed-no-samples': ['realtime-training'],
    'helox-model-ready': ['cyrex-auto-load'],
    'cyrex-inference-complete-flat': ['analytics-inference', 'model-health', 'realtime-inference'],
    'cyrex-inference-complete-envelope': ['analytics-inference', 'model-health', 'realtime-inference'],
    'cyrex-inference-failed-flat': ['analytics-inference', 'model-health', 'realtime-inference'],
    'cyrex-inference-failed-envelope': ['analytics-inference', 'model-health', 'realtime-inference'],
    'cyrex-inference-challenge-flat': ['analytics-inference', 'challenge-validation', 'model-health', 'realtime-inference'],
    'cyrex-rag-retrieval-flat': ['analytics-rag', 'realtime-inference'],
    'cyrex-rag-retrieval-envelope': ['analytics-rag', 'realtime-inference'],
    'cyrex-rag-retrieval-minimal-flat': ['analytics-rag', 'realtime-inference'],
    'cyrex-agent-decision-flat': ['route-agent-decisions'],
    'cyrex-agent-decision-envelope': ['route-agent-decisions'],
    'cyrex-agent-decision-agi-flat': ['analytics-agent-decisions'],
    'cyrex-model-health-alert-flat': ['realtime-platform'],
    'cyrex-model-health-alert-envelope': ['realtime-platform'],
    'task-created': ['realtime-platform'],
    'task-updated': ['realtime-platform'],
    'task-completed': ['notifications', 'realtime-platform', 'task-outcomes'],
    'task-failed': ['realtime-platform'],
    'api-request': ['analytics-api-requests'],
    'user-registered': ['realtime-platform'],
    'user-logged-in': ['realtime-platform'],
    'user-logged-out': ['realtime-platform'],
    'token-refreshed': ['realtime-platform'],
    'user-interaction': ['realtime-platform'],
    'achievement-unlocked': ['notifications', 'realtime-platform'],
    'leaderboard-updated': ['realtime-platform'],
    'external-api-call': ['analytics-external-api'],
    'webhook-received': [],
    'integration-status-changed': ['realtime-platform'],
    'challenge-created': ['realtime-platform'],
    'challenge-started': ['realtime-platform'],
    'challenge-completed': ['notifications', 'realtime-platform'],
    'challenge-failed': ['realtime-platform'],
    'error': ['analytics-errors', 'realtime-ops-errors'],
  };

  it('lists every fixture', () => {
    expect(Object.keys(sunkBy).sort()).toEqual(fixtures.map((f) => f.name).sort());
  });

  for (const [name, expected] of Object.entries(sunkBy)) {
    it(`${name}: ${expected.join(', ') || 'none (filtered everywhere)'}`, async () => {
      const f = fixture(name);
      const acted: string[] = [];
      for (const p of onStream(f.stream)) {
        const { outcomes } = await dryRun(p, [fixtureEntry(f)], { raw: true });
        if (outcomes[0]!.kind === 'sunk') acted.push(p.name);
      }
      expect(acted.sort()).toEqual(expected);
    });
  }
});

describe('the main flows, output checked', () => {
  it('training analytics and realtime: Helox progress, its numbers as numbers, its timestamp with a Z', async () => {
    const f = fixture('helox-training-progress');
    expect(await sunk(f.name, 'analytics-training')).toEqual({
      aggregate: [{ model_name: 'helox-sentiment', step: 1200, epoch: 1.5, loss: 0.4213, learning_rate: 2e-5, elapsed_time_seconds: 845.2 }],
    });
    expect(await sunk(f.name, 'realtime-training')).toEqual({
      user: [],
      everyone: [{
        event: 'training-progress', source: 'helox', timestamp: `${writtenTimestamp(f)}Z`,
        data: { model_name: 'helox-sentiment', step: 1200, epoch: 1.5, metrics: { accuracy: 0.81, grad_norm: 1.7 }, learning_rate: 2e-5, loss: 0.4213, elapsed_time_seconds: 845.2 },
      }],
    });
  });

  it('a checkpoint: str(True) is true; an evaluation without num_samples (str(None)) has none', async () => {
    const checkpoint = (await sunk('helox-checkpoint-created', 'realtime-training')).everyone![0] as { data: Record<string, unknown> };
    expect(checkpoint.data).toMatchObject({ is_best: true, step: 4500, checkpoint_size_mb: 417.6 });
    const evaluation = (await sunk('helox-evaluation-completed-no-samples', 'realtime-training')).everyone![0] as { data: Record<string, unknown> };
    expect(evaluation.data).not.toHaveProperty('num_samples');
    expect(evaluation.data).toMatchObject({ evaluation_type: 'test', evaluation_time_seconds: 12 });
  });

  it('Cyrex auto-load: Helox model-ready asks Cyrex to load that version', async () => {
    expect(await sunk('helox-model-ready', 'cyrex-auto-load')).toEqual({
      'load-model': [{ model_name: 'helox-sentiment', version: 'v20261201', checkpoint_path: '/models/helox-sentiment/checkpoint-4500' }],
    });
  });

  it('inference analytics: None arguments are absent, not counted', async () => {
    expect(await sunk('cyrex-inference-complete-flat', 'analytics-inference')).toEqual({
      aggregate: [{ model_name: 'helox-sentiment', version: 'v20261201', latency_ms: 182.4, tokens_used: 412, confidence: 0.94, success: true }],
    });
    expect(await sunk('cyrex-inference-failed-flat', 'analytics-inference')).toEqual({
      aggregate: [{ model_name: 'helox-sentiment', version: 'v20261201', latency_ms: 5012, success: false }],
    });
  });

  it('model health: a failed inference counts as an error of its model', async () => {
    expect(await sunk('cyrex-inference-failed-flat', 'model-health')).toEqual({
      aggregate: [{ model_name: 'helox-sentiment', latency_ms: 5012, error: true }],
    });
  });

  it('model health alerts from Cyrex reach the ops channel, flat or as an envelope', async () => {
    const f = fixture('cyrex-model-health-alert-flat');
    expect(await sunk(f.name, 'realtime-platform')).toEqual({
      user: [], everyone: [],
      ops: [{
        event: 'model-health-alert', timestamp: `${writtenTimestamp(f)}Z`,
        data: { model_name: 'helox-sentiment', status: 'unhealthy', issues: ['High error rate: 12.00%'], memory_usage: 0, error_rate: 0.12, avg_latency: 0 },
      }],
    });
  });

  it('RAG: a retrieval is measured under its collection; one without a collection under (unnamed)', async () => {
    expect(await sunk('cyrex-rag-retrieval-flat', 'analytics-rag')).toEqual({
      aggregate: [{ collection_name: 'help-center', retrieval_time_ms: 38.2, documents_retrieved: 5, top_k: 5, best_similarity: 0.91 }],
    });
    expect(await sunk('cyrex-rag-retrieval-minimal-flat', 'analytics-rag')).toEqual({
      aggregate: [{ collection_name: '(unnamed)', retrieval_time_ms: 12, documents_retrieved: 0, top_k: 3 }],
    });
  });

  it('agent decisions: one written to platform-events is forwarded to agi-decisions and measured there', async () => {
    const f = fixture('cyrex-agent-decision-flat');
    const forwarded = (await sunk(f.name, 'route-agent-decisions')).publish!;
    expect(forwarded).toEqual([{
      event: 'agent-decision', source: 'cyrex', timestamp: `${writtenTimestamp(f)}Z`,
      data: { agent_name: 'support-router', decision_type: 'route', decision_data: { queue: 'billing' }, metadata: {} },
    }]);
    // The publish sink writes it as the payload of an agi-decisions entry.
    const analytics = pipeline('analytics-agent-decisions');
    const { outcomes, sunk: out } = await dryRun(analytics, [{ id: '0-1', fields: encodeForCodec(analytics.source.codec, forwarded[0]) }], { raw: true });
    expect(outcomes.map((o) => o.kind)).toEqual(['sunk']);
    expect(out).toEqual({ aggregate: [{ agent_name: 'support-router', decision_type: 'route' }] });
    expect(await sunk('cyrex-agent-decision-agi-flat', 'analytics-agent-decisions')).toEqual({
      aggregate: [{ agent_name: 'support-router', decision_type: 'escalate', execution_time_ms: 240.5, confidence: 0.7 }],
    });
  });

  it('a challenge submission becomes a validate job, completedAt with its Z', async () => {
    const f = fixture('cyrex-inference-challenge-flat');
    expect(await sunk(f.name, 'challenge-validation')).toEqual({
      queue: [{
        challengeId: 'ch-42', userId: 'u-7', requestId: 'r-9f2', model_name: 'helox-sentiment', version: 'v20261201',
        success: true, latency_ms: 240, metadata: { challengeId: 'ch-42' }, completedAt: `${writtenTimestamp(f)}Z`,
      }],
    });
  });

  it('the platform services: a completed task and challenge notify their user, an API request and an external call are measured, an error reaches ops', async () => {
    expect(await sunk('task-completed', 'notifications')).toEqual({
      notify: [{ userId: 'u-1', type: 'success', title: 'Task Completed', message: 'Quarterly report has completed.', data: { event: 'task-completed', taskId: 't-1' } }],
    });
    expect(await sunk('challenge-completed', 'notifications')).toEqual({
      notify: [{
        userId: 'u-7', type: 'success', title: 'Challenge Completed', message: 'You completed Challenge ch-42. Score: 9/10.',
        data: { event: 'challenge-completed', challengeId: 'ch-42', score: 9 },
      }],
    });
    expect(await sunk('api-request', 'analytics-api-requests')).toEqual({
      aggregate: [{ endpoint: '/api/tasks/t-1', method: 'GET', statusCode: 200, latencyMs: 23, server_error: false, client_error: false }],
    });
    expect(await sunk('external-api-call', 'analytics-external-api')).toEqual({
      aggregate: [{ integration: 'github', latencyMs: 930, success: false, server_error: true }],
    });
    const f = fixture('error');
    expect(await sunk('error', 'realtime-ops-errors')).toEqual({
      broadcast: [{
        event: 'error', service: 'task-orchestrator', source: 'task-orchestrator', timestamp: writtenTimestamp(f),
        data: { error: 'connection refused', error_type: 'ECONNREFUSED' },
      }],
    });
  });

  it('a user event of the service template reaches that user only', async () => {
    const f = fixture('user-logged-in');
    expect(await sunk(f.name, 'realtime-platform')).toEqual({
      user: [{
        event: 'user-logged-in', source: 'auth-service', timestamp: writtenTimestamp(f),
        data: { userId: 'u-1', email: 'ada@example.com', loginMethod: 'password' }, userId: 'u-1',
      }],
      everyone: [], ops: [],
    });
  });
});

describe('Cyrex flat dicts and envelopes', () => {
  const pairs = fixtures.filter((f) => f.name.endsWith('-envelope')).map((f) => f.name.slice(0, -'-envelope'.length));

  it('come in pairs', () => expect(pairs.length).toBeGreaterThanOrEqual(5));

  for (const base of pairs) {
    it(`${base}: the flat dict and the envelope give the same outputs, timestamps aside`, async () => {
      const flat = fixture(`${base}-flat`), envelope = fixture(`${base}-envelope`);
      for (const p of onStream(flat.stream)) {
        const a = await dryRun(p, [fixtureEntry(flat)], { raw: true });
        const b = await dryRun(p, [fixtureEntry(envelope)], { raw: true });
        const strip = (v: unknown) => JSON.parse(JSON.stringify(v, (k, x) => (k === 'timestamp' || k === 'completedAt' ? undefined : x)));
        expect(strip(a.sunk), p.name).toEqual(strip(b.sunk));
        expect(a.outcomes.map((o) => o.kind), p.name).toEqual(b.outcomes.map((o) => o.kind));
      }
    });
  }
});
