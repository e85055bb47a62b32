import jsonata from 'jsonata';
import { ExpressionError, errorMessage } from '../errors.ts';
import { compileFastPath } from './fast-path.ts';

/** Default time limit of one evaluation (SPEC §4 `expression_timeout_ms`). */
export const DEFAULT_EXPRESSION_TIMEOUT_MS = 100;
/** Evaluation depth limit: deep enough for real expressions, shallow enough to stop runaway recursion. */
export const EXPRESSION_STACK_LIMIT = 500;
/** Longest sequence one evaluation may build; stops `[1..100000000]`-style memory bombs. */
export const EXPRESSION_SEQUENCE_LIMIT = 1_000_000;

/** Functions refused at load: `$eval` would run event data as code. */
const FORBIDDEN_FUNCTIONS = new Set(['eval']);

/** A syntax or load-time problem in an expression; `offset` is 0-based within the expression. */
export class ExpressionSyntaxError extends Error {
  constructor(message: string, readonly offset: number) {
    super(message);
    this.name = 'ExpressionSyntaxError';
  }
}

/** A compiled, time- and depth-boxed JSONata expression. */
export interface CompiledExpression {
  readonly source: string;
  /**
   * Evaluates against `input` with extra variable `bindings` (`{ input: ... }` is `$input`).
   * Rejects with ExpressionError on a runtime error, time-out or runaway recursion.
   */
  evaluate(input: unknown, bindings?: Record<string, unknown>): Promise<unknown>;
  /**
   * Whether the expression lies in the subset that fast-path.ts evaluates synchronously; inputs
   * it cannot answer exactly still go to JSONata, so results are the same either way.
   */
  readonly fast: boolean;
}

interface JsonataNode {
  type?: string;
  value?: unknown;
  position?: number;
  [key: string]: unknown;
}

/**
 * Compiles a JSONata expression with Synapse's limits. Throws ExpressionSyntaxError whose offset
 * points at the offending token (0-based), so callers can map it to FILE:LINE:COL.
 *
 * Expressions in the common subset of fast-path.ts are also compiled to a synchronous evaluator
 * that answers most inputs exactly as JSONata would, several times faster; `fastPath: false`
 * turns it off (benchmarks, debugging).
 */
export function compileExpression(source: string, opts: { timeoutMs?: number; fastPath?: boolean } = {}): CompiledExpression {
  const options = {
    timeout: opts.timeoutMs ?? DEFAULT_EXPRESSION_TIMEOUT_MS,
    stack: EXPRESSION_STACK_LIMIT,
    sequence: EXPRESSION_SEQUENCE_LIMIT,
  };
  let expr: jsonata.Expression;
  try {
    expr = jsonata(source, options as jsonata.JsonataOptions);
  } catch (err) {
    const e = err as { message?: string; position?: number; token?: string };
    const end = typeof e.position === 'number' ? e.position : 0;
    let tokenLength = e.token && e.token !== '(end)' ? String(e.token).length : 0;
    // A string or quoted-name token is reported without its quotes.
    if (tokenLength && ['"', "'", '`'].includes(source[end - 1] ?? '')) tokenLength += 2;
    throw new ExpressionSyntaxError(`invalid JSONata: ${errorMessage(err)}`, clamp(end - tokenLength, 0, source.length));
  }
  const forbidden = findForbidden(expr.ast() as unknown as JsonataNode);
  if (forbidden) {
    const name = String(forbidden.value);
    throw new ExpressionSyntaxError(`$${name} is not allowed: it would run event data as code`,
      clamp((forbidden.position ?? 1) - name.length - 1, 0, source.length));
  }
  const fast = opts.fastPath === false ? undefined : compileFastPath(expr.ast());
  const viaJsonata = async (input: unknown, bindings: Record<string, unknown> | undefined): Promise<unknown> => {
    const run = () => serialized(() => expr.evaluate(input, bindings));
    try {
      try {
        return normalize(await run());
      } catch (err) {
        // JSONata's clock is wall time: a GC pause or a starved CPU can push a cheap evaluation
        // past its limit. A time-out counts only when a second, fresh try times out too.
        if ((err as { code?: string }).code !== 'D1012') throw err;
        return normalize(await run());
      }
    } catch (err) {
      const e = err as { code?: string };
      const message = e.code === 'D1012'
        ? `timed out after ${options.timeout} ms`
        : e.code === 'D1011' ? 'recursed too deep (runaway recursion?)' : errorMessage(err);
      throw new ExpressionError(message, { cause: err });
    }
  };
  return {
    source,
    fast: fast !== undefined,
    evaluate(input, bindings) {
      if (fast) {
        // Synchronous and bounded (no loops or recursion in the subset): no lock, no time limit.
        // It throws BAIL on any input it cannot answer exactly, and JSONata answers that input;
        // anything else thrown (a stack overflow on absurdly deep data) goes the same way.
        let value: unknown;
        try {
          value = normalize(fast(input, bindings));
        } catch {
          return viaJsonata(input, bindings);
        }
        return Promise.resolve(value);
      }
      return viaJsonata(input, bindings);
    },
  };
}

/**
 * Evaluations run one at a time in the process. JSONata evaluates asynchronously, yielding at
 * every step, and times an evaluation by wall clock from its start: evaluations interleaved with
 * others (several pipelines, several sinks' `when`) would each be charged for the others' work.
 * Evaluation is pure computation, so running them in turn costs no throughput.
 */
let evaluationTail: Promise<unknown> = Promise.resolve();
function serialized<T>(fn: () => Promise<T>): Promise<T> {
  const run = evaluationTail.then(fn);
  evaluationTail = run.catch(() => undefined);
  return run;
}

function clamp(n: number, lo: number, hi: number): number {
  return Math.max(lo, Math.min(hi, n));
}

function findForbidden(node: unknown): JsonataNode | undefined {
  if (Array.isArray(node)) {
    for (const child of node) {
      const found = findForbidden(child);
      if (found) return found;
    }
    return undefined;
  }
  if (!node || typeof node !== 'object') return undefined;
  const n = node as JsonataNode;
  if (n.type === 'variable' && FORBIDDEN_FUNCTIONS.has(String(n.value))) return n;
  for (const [key, child] of Object.entries(n)) {
    if (key === 'value' && n.type !== 'regex') {
      if (child && typeof child === 'object') {
        const found = findForbidden(child);
        if (found) return found;
      }
      continue;
    }
    if (child && typeof child === 'object') {
      const found = findForbidden(child);
      if (found) return found;
    }
  }
  return undefined;
}

/**
 * JSONata returns sequences (arrays with a `sequence` flag) and may leave undefined holes; the
 * engine hands sinks plain JSON values, so results are made plain here once.
 */
function normalize(value: unknown): unknown {
  if (value === undefined || value === null || typeof value !== 'object') return value;
  // Plain loops: this runs on every result, and on the fast path it is a good part of the cost.
  if (Array.isArray(value)) {
    const out: unknown[] = [];
    for (let i = 0; i < value.length; i++) {
      const n = normalize(value[i]);
      if (n !== undefined) out.push(n);
    }
    return out;
  }
  if (typeof (value as { _jsonata_lambda?: unknown })._jsonata_lambda !== 'undefined') return undefined;
  const out: Record<string, unknown> = {};
  const keys = Object.keys(value);
  for (let i = 0; i < keys.length; i++) {
    const k = keys[i]!;
    const n = normalize((value as Record<string, unknown>)[k]);
    if (n !== undefined) out[k] = n;
  }
  return out;
}
