import jsonata from 'jsonata';
import { ExpressionError, errorMessage } from '../errors.ts';
import { isTruthy } from '../runner/truthy.ts';
import { compileAst, isCompilable } from './compiler/compile.ts';
import type { BranchProbe } from './compiler/closures.ts';

export type { BranchProbe };

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

/** A compiled, time-, depth- and size-boxed JSONata expression. */
export interface CompiledExpression {
  readonly source: string;
  /**
   * Evaluates against `input` with extra variable `bindings` (`{ input: ... }` is `$input`).
   * Synchronous when `sync` is true (compiled code): returns the value or throws ExpressionError
   * (a runtime error, time-out, runaway recursion or oversized result). Otherwise (the rare
   * expressions listed in docs/pipelines.md that stay on the jsonata interpreter) it returns a
   * promise that rejects with ExpressionError.
   */
  evaluate(input: unknown, bindings?: Record<string, unknown>): unknown;
  /** Whether compiled code evaluates this expression (then `evaluate` never returns a promise). */
  readonly sync: boolean;
  /** Whether `evaluate` answers JSONata's `$boolean` of the result (see CompileOptions.condition). */
  readonly condition: boolean;
}

interface JsonataNode {
  type?: string;
  value?: unknown;
  position?: number;
  [key: string]: unknown;
}

/** Options of compileExpression. */
export interface CompileOptions {
  /** Time limit of one evaluation in ms (SPEC §4 `expression_timeout_ms`); default 100. */
  timeoutMs?: number;
  /** `false` evaluates with the jsonata interpreter even where compiled code could (benchmarks, debugging). */
  compile?: boolean;
  /**
   * Records the branches conditional nodes take (`synapse test --coverage`): only compiled code
   * reports them, so an expression left to the interpreter reports none.
   */
  probe?: BranchProbe;
  /**
   * A condition (`filter:`, `when:`): `evaluate` answers JSONata's `$boolean` of the result,
   * judged on the result as the expression made it. Other results are made plain JSON first,
   * which drops what JSON cannot hold: an object whose only member is a function would become `{}`,
   * false, where JSONata holds it true.
   */
  condition?: boolean;
}

/**
 * Compiles a JSONata expression with Synapse's limits. Throws ExpressionSyntaxError whose offset
 * points at the offending token (0-based), so callers can map it to FILE:LINE:COL; `$eval` is
 * refused. jsonata's parser is the front end; engine/expr/compiler turns its AST into synchronous
 * JavaScript with jsonata 2.2's semantics, results and error codes.
 */
export function compileExpression(source: string, opts: CompileOptions = {}): CompiledExpression {
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
  // The result as sinks get it; a condition's truth, judged on the result as it was made once its
  // size has been bounded (plain refuses a result of too many values before anything walks it).
  const finish = opts.condition ? (value: unknown) => (plain(value), isTruthy(value)) : plain;
  const condition = opts.condition === true;
  if (opts.compile !== false && isCompilable(expr.ast())) {
    // A private AST: the compiled code never shares nodes with the interpreter's.
    const compiled = compileAst(jsonata(source).ast(), options, opts.probe);
    const run = (input: unknown, bindings: Record<string, unknown> | undefined): unknown => {
      // One try: an evaluation that ran out of time is not run again (it would hold the event
      // loop twice as long); the entry goes to the DLQ with the time-out as its reason.
      try {
        return finish(compiled.evaluate(input, bindings));
      } catch (err) {
        throw expressionError(err, options.timeout);
      }
    };
    return { source, sync: true, condition, evaluate: run };
  }
  const viaJsonata = async (input: unknown, bindings: Record<string, unknown> | undefined): Promise<unknown> => {
    try {
      return finish(await serialized(() => expr.evaluate(input, bindings)));
    } catch (err) {
      throw expressionError(err, options.timeout);
    }
  };
  return { source, sync: false, condition, evaluate: viaJsonata };
}

function expressionError(err: unknown, timeoutMs: number): ExpressionError {
  const e = err as { code?: string };
  const message = e.code === 'D1012'
    ? `timed out after ${timeoutMs} ms`
    : e.code === 'D1011' ? 'recursed too deep (runaway recursion?)' : errorMessage(err);
  return new ExpressionError(message, { cause: err });
}

/**
 * Interpreted evaluations run one at a time in the process. JSONata evaluates asynchronously,
 * yielding at every step, and times an evaluation by wall clock from its start: evaluations
 * interleaved with others would each be charged for the others' work.
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
 * JSONata returns sequences (arrays flagged `sequence`, `keepSingleton`, ...), objects without a
 * prototype (group-by), and may leave undefined holes or lambdas in results; sinks get plain JSON
 * values. Most results are plain already: they are returned as they are (the input's own objects
 * included), and only a value that holds something to drop, a flagged array or a prototype-less
 * object is copied.
 */
export function plain(value: unknown): unknown {
  if (value === null || typeof value !== 'object') return value;
  visits = MAX_RESULT_VALUES;
  if (!needsCopy(value, 0)) return value;
  visits = MAX_RESULT_VALUES;
  return normalize(value);
}

/**
 * Most values a result may hold (objects, arrays and their members). A lambda can build a value
 * whose parts are shared (`[$a, $a]`, forty times over): small in memory, but 2^40 values once
 * written out. Such a result is refused with L1002 before anything walks it whole.
 */
export const MAX_RESULT_VALUES = 1_000_000;
let visits = 0;
function visit(): void {
  if (--visits < 0) {
    throw Object.assign(new Error(`the result holds more than ${MAX_RESULT_VALUES} values`), { code: 'L1002' });
  }
}

function needsCopy(value: unknown, depth: number): boolean {
  visit();
  if (value === null || typeof value !== 'object') return false;
  if (depth > 64) return true; // normalize copes; no need to look further
  if (Array.isArray(value)) {
    // An array's own enumerable keys beyond its indexes are jsonata's flags.
    if ((value as { sequence?: unknown }).sequence !== undefined || (value as { keepSingleton?: unknown }).keepSingleton !== undefined
      || (value as { outerWrapper?: unknown }).outerWrapper !== undefined || (value as { tupleStream?: unknown }).tupleStream !== undefined) return true;
    for (let i = 0; i < value.length; i++) {
      const v: unknown = value[i];
      if (v === undefined || needsCopy(v, depth + 1)) return true;
    }
    return false;
  }
  // A lambda: jsonata marks it `_jsonata_lambda: true` (event data may hold the key with another value).
  if ((value as { _jsonata_lambda?: unknown })._jsonata_lambda === true) return true;
  // jsonata builds group-by results without a prototype (no toString, no hasOwnProperty): sinks get plain objects.
  if (Object.getPrototypeOf(value) === null) return true;
  for (const k in value) {
    const v = (value as Record<string, unknown>)[k];
    if (v === undefined || needsCopy(v, depth + 1)) return true;
  }
  return false;
}

function normalize(value: unknown): unknown {
  visit();
  if (value === undefined || value === null || typeof value !== 'object') return value;
  if (Array.isArray(value)) {
    const out: unknown[] = [];
    for (let i = 0; i < value.length; i++) {
      const n = normalize(value[i]);
      if (n !== undefined) out.push(n);
    }
    return out;
  }
  if ((value as { _jsonata_lambda?: unknown })._jsonata_lambda === true) return undefined;
  const out: Record<string, unknown> = {};
  const keys = Object.keys(value);
  for (let i = 0; i < keys.length; i++) {
    const k = keys[i]!;
    const n = normalize((value as Record<string, unknown>)[k]);
    // A `__proto__` key (group-by over event data) stays a key, not the object's prototype.
    if (n !== undefined) {
      if (k === '__proto__') Object.defineProperty(out, k, { value: n, enumerable: true, writable: true, configurable: true });
      else out[k] = n;
    }
  }
  return out;
}
