import { randomUUID } from 'node:crypto';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { stringify } from 'yaml';

/** The repository root (tests/helpers/../..). */
export const REPO_ROOT = resolve(dirname(fileURLToPath(import.meta.url)), '..', '..');

/** The integration suites' schema directory (order-event and model-event). */
export const FIXTURE_SCHEMAS = join(REPO_ROOT, 'tests', 'fixtures', 'integration', 'schemas');
export const ORDER_SCHEMA = 'https://synapse.test/schemas/order-event.json';
export const MODEL_SCHEMA = 'https://synapse.test/schemas/model-event.json';

/** A fresh stream key (or any key) for one test. */
export function testKey(label = ''): string {
  return `test-${randomUUID()}${label ? `-${label}` : ''}`;
}

/** A pipeline file's content, as the YAML object it is written from. */
export type PipelineDoc = Record<string, unknown> & { name: string };

/**
 * Temporary pipeline directories: `make(docs)` writes each doc as `<name>.yaml` into a new directory
 * and returns its path; `cleanup()` removes every directory made so far.
 */
export function pipelineDirs() {
  const made: string[] = [];
  return {
    async make(docs: PipelineDoc[]): Promise<string> {
      const dir = await mkdtemp(join(tmpdir(), 'synapse-it-pipelines-'));
      made.push(dir);
      for (const doc of docs) await writeFile(join(dir, `${doc.name}.yaml`), stringify(doc));
      return dir;
    },
    async cleanup(): Promise<void> {
      await Promise.all(made.splice(0).map((d) => rm(d, { recursive: true, force: true })));
    },
  };
}

/**
 * The suites' standard pipeline: order events from `stream`, validated against the order schema,
 * `order-placed` kept, reshaped to `{ orderId, seq, amount }` and published to `out`. Keys of
 * `extra` replace or add top-level keys; `source` is merged into the source block.

 */
export function ordersPipeline(opts: { name?: string; stream: string; out: string; source?: Record<string, unknown>; extra?: Record<string, unknown> }): PipelineDoc {
  return {
    name: opts.name ?? `orders-${randomUUID().slice(0, 8)}`,
    source: { stream: opts.stream, start: '0', batch: 100, block_ms: 200, ...opts.source },
    validate: { schema: ORDER_SCHEMA },
    filter: 'event = "order-placed"',
    transform: '{ "orderId": data.orderId, "seq": data.seq, "amount": data.amount }',
    sink: { type: 'publish', with: { stream: opts.out } },
    retry: { attempts: 3, backoff: 'fixed', delay_ms: 10 },
    ...opts.extra,
  };
}

/** A valid order event; `seq` makes its orderId (`o-<seq>`). */
export function orderEvent(seq: number, event: 'order-placed' | 'order-cancelled' = 'order-placed'): Record<string, unknown> {
  return {
    event,
    source: 'integration-test',
    timestamp: '2026-11-26T10:00:00Z',
    data: { orderId: `o-${seq}`, amount: seq % 1000, seq },
  };
}
