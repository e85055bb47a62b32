/**
 * What `npm run bench` measures: a pipeline, the workload it runs on, and the hand-written twin
 * of its filter and transform. Two scenarios:
 *
 * - `task-outcomes`: the shipped pipelines/task-outcomes.yaml (field tests, string building);
 * - `order-totals`: bench/pipelines/order-totals.yaml, array-heavy (`items[qty > 0]`,
 *   `$sum(items.(price * qty))`, `$round(…, 2)`), on order events with 1–8 line items.
 */
import { join } from 'node:path';
import { generateWorkload, seededRandom, type Workload } from './events.ts';
import { toNotification } from './hand-written.ts';

/** One bench scenario. */
export interface Scenario {
  name: string;
  /** The pipeline file, relative to the repository root. */
  pipelineFile: string;
  /** The seeded workload. */
  workload(n: number, seed: number): Workload;
  /** The hand-written filter + transform: the output value, or undefined when filtered out. */
  handle(event: unknown): unknown;
}

interface TaskEnvelope {
  event: string;
  data: { userId?: string; taskId?: string; title?: string; error?: string };
}

/** The events task-outcomes' filter keeps (`event in ["task-completed", "task-failed"]`). */
const WANTED = new Set(['task-completed', 'task-failed']);

interface OrderEnvelope {
  event: string;
  data: { orderId: string; userId: string; discount: number; items: { sku: string; price: number; qty: number }[] };
}

/**
 * JSONata's $round (round half to even, precision by shifting the decimal exponent in the
 * number's string form), as a hand-written consumer that must match it would write it.
 */
export function roundHalfEven(x: number, precision: number): number {
  let value = x.toString().split('e');
  let arg = +(`${value[0]}e${value[1] ? +value[1] + precision : precision}`);
  let result = Math.round(arg);
  if (Math.abs(result - arg) === 0.5 && Math.abs(result % 2) === 1) result -= 1;
  value = result.toString().split('e');
  result = +(`${value[0]}e${value[1] ? +value[1] - precision : -precision}`);
  arg = result;
  return Object.is(arg, -0) ? 0 : arg;
}

/** Plain-JS twin of order-totals' filter and transform. */
export function orderTotals(ev: OrderEnvelope): Record<string, unknown> | undefined {
  if (ev.event !== 'order-placed') return undefined;
  const items = ev.data.items;
  const kept: string[] = [];
  let total = 0;
  for (const it of items) {
    total += it.price * it.qty;
    if (it.qty > 0) kept.push(it.sku);
  }
  if (kept.length === 0) return undefined;
  return {
    orderId: ev.data.orderId,
    userId: ev.data.userId,
    lines: kept.length,
    skus: kept,
    total: roundHalfEven(total, 2),
    net: roundHalfEven(total * (1 - ev.data.discount), 2),
    big: total > 500,
  };
}

const SKUS = ['A-100', 'B-200', 'C-300', 'D-400', 'E-500', 'F-600'];

/** Order envelopes: ~75% order-placed (a few with no item in stock), the rest other order events. */
export function generateOrderWorkload(n: number, seed = 42): Workload {
  const rnd = seededRandom(seed);
  const baseMs = Date.UTC(2026, 10, 26, 10, 0, 0);
  const payloads = new Array<string>(n);
  let sunk = 0;
  let filtered = 0;
  let invalid = 0;
  let bytes = 0;
  for (let i = 0; i < n; i++) {
    const u = rnd();
    const bad = u < 0.005;
    const event = u < 0.75 ? 'order-placed' : u < 0.9 ? 'order-shipped' : 'order-cancelled';
    const items = Array.from({ length: 1 + Math.floor(rnd() * 8) }, () => ({
      sku: SKUS[Math.floor(rnd() * SKUS.length)]!, price: Math.round(rnd() * 20_000) / 100, qty: Math.floor(rnd() * 4),
    }));
    const envelope = {
      event, source: 'shop', timestamp: bad ? `yesterday ${i}` : new Date(baseMs + i * 7).toISOString(), id: `ord-evt-${i}`,
      data: { orderId: `o${i}`, userId: `u${Math.floor(rnd() * 5000)}`, discount: [0, 0.05, 0.1, 0.15][Math.floor(rnd() * 4)]!, items },
    };
    const payload = JSON.stringify(envelope);
    payloads[i] = payload;
    bytes += payload.length;
    if (bad) invalid++;
    else if (orderTotals(envelope) !== undefined) sunk++;
    else filtered++;
  }
  return { payloads, expectedSunk: sunk, expectedFiltered: filtered, expectedInvalid: invalid, meanPayloadBytes: n ? Math.round(bytes / n) : 0 };
}

/** The scenarios, by name. */
export const SCENARIOS: readonly Scenario[] = [
  {
    name: 'task-outcomes',
    pipelineFile: join('pipelines', 'task-outcomes.yaml'),
    workload: generateWorkload,
    handle: (ev) => {
      const e = ev as TaskEnvelope;
      return WANTED.has(e.event) ? toNotification(e) : undefined;
    },
  },
  {
    name: 'order-totals',
    pipelineFile: join('bench', 'pipelines', 'order-totals.yaml'),
    workload: generateOrderWorkload,
    handle: (ev) => orderTotals(ev as OrderEnvelope),
  },
];
