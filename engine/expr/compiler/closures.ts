/**
 * Closure compilation: each AST node of the common forms becomes a JavaScript closure composed
 * at compile time (its children's closures captured), attached to the node as `compiled`. The
 * evaluator (evaluator.ts) runs a node's closure when it has one, and its own code for the rest,
 * whose children are compiled closures again; both share frames, sequences and limits, so a node
 * can be compiled or not independently of its neighbours.
 *
 * Every closure keeps jsonata's per-node bookkeeping (depth limit D1011, the step count that
 * paces the clock check D1012, sequence unwrapping) so results, errors and limits are those of
 * the interpreted node exactly. Compiled here:
 * - literals, `$` and variables, field names;
 * - paths of field names (`a.b.c`) whose steps carry no predicate, stage or binding, with a
 *   direct walk while each step meets a single object;
 * - `+ - * / % = != < <= > >= & in and or`, conditions, blocks, `:=` bindings;
 * - function calls (arguments compiled, the call made as jsonata makes it); a built-in called by
 *   name (`$sum`, `$round`, `$string`, …) with plain arguments skips its signature's regex and
 *   the focus object made per call (fastBuiltin), and a pure built-in call that occurs more than
 *   once is evaluated once per context object (memoSlot);
 * - operators on operands needing only a `typeof` check are computed inline (primitiveBinary);
 *   anything else goes to jsonata's operator functions, for their results and errors.
 * Anything else (predicates, group-by, order-by, ranges, lambdas, transforms, …) runs on
 * evaluator.ts's synchronous code, with its sub-expressions compiled.
 */
import { internals } from './evaluator.js';
import fn from './functions.js';
import utils from './utils.js';

/** A compiled node: evaluates against the context `input` in the frame `env`. */
export type Compiled = (input: unknown, env: Frame) => unknown;

interface Frame {
  base: Base;
  bind(name: string, value: unknown): void;
  lookup(name: string): unknown;
}

interface Base {
  depth: number;
  stack: number;
  steps: number;
}

interface Node {
  type: string;
  value?: unknown;
  position?: number;
  compiled?: Compiled;
  /** The closure a parent calls for a leaf node (see `leaf`). */
  leaf?: Compiled;
  [key: string]: unknown;
}

interface JsonataError {
  position?: number;
  token?: unknown;
}

const {
  evaluate, evaluateVariable, evaluateNumericExpression, evaluateEqualityExpression, evaluateComparisonExpression,
  evaluateStringConcat, evaluateIncludesExpression, evaluateBooleanExpression, evaluatePath, checkClock, createFrame, apply,
  evaluateGroupExpression, evaluateFilter, evaluateApplyExpression,
} = internals as unknown as Record<string, (...args: unknown[]) => unknown>;
const evalNode = evaluate as (node: Node, input: unknown, env: Frame) => unknown;
const isFunction = utils.isFunction as (v: unknown) => boolean;
const getFunctionArity = utils.getFunctionArity as (f: unknown) => number;
const boolean = fn.boolean as (v: unknown) => unknown;
const hasOwn = Object.prototype.hasOwnProperty;

/**
 * Keys any node may have without changing how its closure is made: `stages` belong to the path
 * evaluating the node as a step; `predicate`, `group` and `keepArray` are applied by `wrap`.
 */
const NEUTRAL = new Set(['type', 'value', 'position', 'compiled', 'leaf', 'stages', 'predicate', 'group', 'keepArray']);
/** The keys, besides NEUTRAL, each compiled form may have. */
const SHAPES: Record<string, Set<string>> = {
  string: new Set(), number: new Set(), value: new Set(),
  variable: new Set(), name: new Set(),
  path: new Set(['steps']),
  binary: new Set(['lhs', 'rhs']),
  condition: new Set(['condition', 'then', 'else']),
  block: new Set(['expressions']),
  bind: new Set(['lhs', 'rhs']),
  function: new Set(['procedure', 'arguments', 'name']),
  // A path's own `group` is applied by the path (compileStepsPath), not by `wrap`.
  unary: new Set(['lhs', 'expression', 'expressions', 'consarray']),
  apply: new Set(['lhs', 'rhs']),
};
const BINARY = new Set(['+', '-', '*', '/', '%', '=', '!=', '<', '<=', '>', '>=', '&', 'in', 'and', 'or']);

/** Compiles every node of `ast` it can, in place (the AST must be private to the compiler). */
export function compileTree(ast: unknown, branchProbe?: BranchProbe): void {
  boundNames = namesBound(ast, new Set(), 0);
  probe = branchProbe;
  repeatedCalls = new Map();
  nextMemoSlot = 0;
  try {
    // A transform (`| … |`) changes the objects it matches while evaluating against them: a
    // value kept for one of those objects could go stale, so such expressions keep no values.
    // Nor does a probed compilation: a call not evaluated again would not report its branches.
    if (!branchProbe && !hasTransform(ast, 0)) countCalls(ast, 0);
    visit(ast, 0);
  } finally {
    boundNames = new Set();
    probe = undefined;
    repeatedCalls = new Map();
  }
}

/**
 * Records which way conditional nodes go (`synapse test --coverage`). Given to compileTree, it
 * makes the closures of conditions (`a ? b : c`) and of `and`/`or` report each evaluation's
 * branch; without one (the engine's own compilation) the closures are the plain ones, at no cost.
 */
export interface BranchProbe {
  /**
   * Called once per conditional node compiled, with its branches' names (`then`/`else`; for
   * `and`/`or`, `right` when the right side is evaluated and `short` when the left decides);
   * returns what the node's closure calls with the index of the branch taken.
   */
  register(node: { type: string; value?: unknown; position?: number }, branches: readonly string[]): (branch: number) => void;
}

/** The probe of the compilation under way (see compileTree). */
let probe: BranchProbe | undefined;

/**
 * Function calls of the expression being compiled by their structure (callKey): how many times
 * each occurs, and the memo slot given to those occurring more than once (see memoSlot).
 */
let repeatedCalls = new Map<string, { count: number; slot?: number }>();
let nextMemoSlot = 0;

/** The variable names the expression being compiled binds anywhere (`:=`, lambda parameters, `@$v`, `#$i`). */
let boundNames = new Set<string>();

function namesBound(node: unknown, out: Set<string>, depth: number): Set<string> {
  if (depth > 200 || !node || typeof node !== 'object' || node instanceof RegExp) return out;
  if (Array.isArray(node)) {
    for (const c of node) namesBound(c, out, depth + 1);
    return out;
  }
  const n = node as Node;
  if (n.type === 'bind') out.add(String((n.lhs as Node).value));
  if (n.type === 'lambda') for (const a of n.arguments as Node[]) out.add(String(a.value));
  if (typeof n.focus === 'string') out.add(n.focus);
  if (typeof n.index === 'string') out.add(n.index);
  for (const key of Object.keys(n)) {
    if (key !== 'compiled' && typeof n[key] === 'object') namesBound(n[key], out, depth + 1);
  }
  return out;
}

function visit(node: unknown, depth: number): void {
  if (depth > 200 || !node || typeof node !== 'object' || node instanceof RegExp) return;
  if (Array.isArray(node)) {
    for (const child of node) visit(child, depth + 1);
    return;
  }
  const n = node as Node;
  for (const key of Object.keys(n)) {
    if (key !== 'compiled' && key !== 'leaf' && key !== 'slot' && key !== 'ancestor') visit(n[key], depth + 1);
  }
  if (typeof n.type !== 'string' || n.compiled) return;
  const body = compileBody(n);
  if (body) {
    const literal = n.type === 'string' || n.type === 'number' || n.type === 'value';
    n.compiled = wrap(n, body, !literal);
    if ((literal || n.type === 'name' || n.type === 'variable') && n.predicate === undefined && n.group === undefined && n.keepArray === undefined) {
      n.leaf = leaf(body, !literal);
    } else if (n.type === 'path') {
      n.leaf = namePathLeaf(n);
    }
  }
}

function shapeIs(n: Node, type: string): boolean {
  const allowed = SHAPES[type];
  if (!allowed || n.type !== type) return false;
  for (const key of Object.keys(n)) if (!NEUTRAL.has(key) && !allowed.has(key)) return false;
  return true;
}

/** The closure of a node's own evaluation (evaluator.ts's `switch`), or undefined. */
function compileBody(n: Node): Compiled | undefined {
  if (!shapeIs(n, n.type)) return undefined;
  switch (n.type) {
    case 'string':
    case 'number':
    case 'value': {
      const value = n.value;
      return () => value;
    }
    case 'variable':
      return compileVariable(n);
    case 'name': {
      const key = String(n.value);
      return (input) => lookup(input, key);
    }
    case 'path':
      return compilePath(n);
    case 'binary':
      return compileBinary(n);
    case 'function':
      return compileFunction(n);
    case 'apply':
      return compileApply(n);
    case 'unary':
      return n.value === '{' ? compileObject(n) : n.value === '[' ? compileArray(n) : n.value === '-' ? compileNegation(n) : undefined;
    case 'condition': {
      const cond = sub(n.condition), then = sub(n.then), otherwise = n.else === undefined ? undefined : sub(n.else);
      if (probe) {
        const hit = probe.register(n, ['then', 'else']);
        return (input, env) => {
          if (boolean(cond(input, env))) {
            hit(0);
            return then(input, env);
          }
          hit(1);
          return otherwise ? otherwise(input, env) : undefined;
        };
      }
      return (input, env) => (boolean(cond(input, env)) ? then(input, env) : otherwise ? otherwise(input, env) : undefined);
    }
    case 'block': {
      const items = (n.expressions as Node[]).map(sub);
      if (!bindsInFrame(n.expressions)) {
        // Nothing binds in this block's own frame, so evaluating in the enclosing one is the same.
        return (input, env) => {
          let result: unknown;
          for (let i = 0; i < items.length; i++) result = items[i]!(input, env);
          return result;
        };
      }
      return (input, env) => {
        const frame = createFrame!(env) as Frame;
        let result: unknown;
        for (let i = 0; i < items.length; i++) result = items[i]!(input, frame);
        return result;
      };
    }
    case 'bind': {
      const name = String((n.lhs as Node).value);
      const rhs = sub(n.rhs);
      return (input, env) => {
        const value = rhs(input, env);
        env.bind(name, value);
        return value;
      };
    }
    default:
      return undefined;
  }
}

/** A child (compiled before its parent): its closure if it has one, else the evaluator. */
function sub(child: unknown): Compiled {
  const node = child as Node;
  return node.leaf ?? node.compiled ?? ((input, env) => evalNode(node, input, env));
}

/**
 * A leaf (literal, name, variable) as its parent calls it: `wrap` without the depth and step
 * counters, whose only effect for a leaf is the depth check, made here as `evaluate` would make
 * it at the same moment (the leaf one level below its parent).
 */
function leaf(body: Compiled, unwrap: boolean): Compiled {
  if (!unwrap) {
    return (input, env) => {
      const base = env.base;
      if (base.depth + 1 > base.stack) throw depthError(base);
      return body(input, env);
    };
  }
  return (input, env) => {
    const base = env.base;
    if (base.depth + 1 > base.stack) throw depthError(base);
    const result = body(input, env);
    if (Array.isArray(result) && (result as Seq).sequence === true && !(result as Seq).tupleStream) {
      if (result.length === 0) return undefined;
      if (result.length === 1 && !(result as Seq).keepSingleton) return result[0];
    }
    return result;
  };
}

/**
 * jsonata's `evaluate` around a node's own evaluation: depth limit, clock pacing, the node's
 * predicates and (not on a path) group-by, and a sequence of 0 or 1 items becoming nothing or
 * that item (unless kept as an array).
 */
function wrap(n: Node, body: Compiled, unwrap: boolean): Compiled {
  const predicates = (n.predicate as { expr: Node }[] | undefined)?.map((p) => p.expr);
  const group = n.type !== 'path' ? (n.group as Node | undefined) : undefined;
  const keepArray = n.keepArray === true;
  if (predicates || group || keepArray) {
    return (input, env) => {
      const base = env.base;
      if (++base.depth > base.stack) throw depthError(base);
      if ((++base.steps & 255) === 0) checkClock!(base);
      let result = body(input, env);
      if (predicates) for (let i = 0; i < predicates.length; i++) result = evaluateFilter!(predicates[i], result, env);
      if (group) result = evaluateGroupExpression!(group, result, env);
      if (Array.isArray(result) && (result as Seq).sequence === true && !(result as Seq).tupleStream) {
        if (keepArray) (result as Seq).keepSingleton = true;
        if (result.length === 0) result = undefined;
        else if (result.length === 1 && !(result as Seq).keepSingleton) result = result[0];
      }
      base.depth--;
      return result;
    };
  }
  if (!unwrap) {
    return (input, env) => {
      const base = env.base;
      if (++base.depth > base.stack) throw depthError(base);
      if ((++base.steps & 255) === 0) checkClock!(base);
      const result = body(input, env);
      base.depth--;
      return result;
    };
  }
  return (input, env) => {
    const base = env.base;
    if (++base.depth > base.stack) throw depthError(base);
    if ((++base.steps & 255) === 0) checkClock!(base);
    let result = body(input, env);
    if (Array.isArray(result) && (result as Seq).sequence === true && !(result as Seq).tupleStream) {
      if (result.length === 0) result = undefined;
      else if (result.length === 1 && !(result as Seq).keepSingleton) result = result[0];
    }
    base.depth--;
    return result;
  };
}

/** jsonata's flags on a sequence array. */
interface Seq {
  sequence?: boolean;
  tupleStream?: boolean;
  keepSingleton?: boolean;
}

function depthError(base: Base): unknown {
  return { code: 'D1011', value: base.stack, stack: new Error().stack };
}

/** functions.js `lookup` for one name. */
function lookup(input: unknown, key: string): unknown {
  if (Array.isArray(input)) return (fn.lookup as (this: unknown, i: unknown, k: string) => unknown).call(SEQUENCES, input, key);
  if (input !== null && typeof input === 'object' && hasOwn.call(input, key) && !isFunction(input)) return (input as Record<string, unknown>)[key];
  return undefined;
}
const SEQUENCES = { createSequence: internals.createSequence };

/**
 * A path of plain names. While each step meets one object (not an array), the walk is direct:
 * what evaluatePath would compute, without its sequences. On anything else (an array on the
 * way, a sequence, a function) the whole path is evaluated again by compileStepsPath's closure;
 * names have no side effects, so the restart is invisible.
 */
function compilePath(n: Node): Compiled | undefined {
  const steps = n.steps as Node[];
  // The first step may be a variable (`$v.a.b`, `$.a`, `$$.a`): evaluated as a step, it gives
  // one value to walk from.
  const first = steps[0]!.type === 'variable' && shapeIs(steps[0]!, 'variable') && steps[0]!.compiled ? steps[0]!.compiled : undefined;
  const names = first ? steps.slice(1) : steps;
  if (n.group !== undefined || names.length === 0 || !names.every((s) => shapeIs(s, 'name') && s.stages === undefined && s.predicate === undefined
    && s.group === undefined && s.keepArray === undefined)) {
    return compileStepsPath(n) ?? ((input, env) => evaluatePath!(n, input, env));
  }
  const keys = names.map((s) => String(s.value));
  const last = keys.length - 1;
  // Where the direct walk stops (an array on the way): the path's steps as compiled closures.
  const general: Compiled = compileStepsPath(n) ?? ((input, env) => evaluatePath!(n, input, env));
  return (input, env) => {
    const base = env.base;
    // evaluatePath evaluates each step one level deeper than the path itself.
    if (base.depth + 1 > base.stack) throw depthError(base);
    let cur = input;
    if (first) {
      cur = first(input, env);
      if (cur === undefined) return undefined;
      if (Array.isArray(cur)) return general(input, env);
    }
    for (let i = 0; ; i++) {
      if (cur === null || typeof cur !== 'object' || Array.isArray(cur) || isFunction(cur)) break;
      const key = keys[i]!;
      if (!hasOwn.call(cur, key)) return undefined;
      const v = (cur as Record<string, unknown>)[key];
      if ((++base.steps & 255) === 0) checkClock!(base);
      if (v === undefined) return undefined;
      if (Array.isArray(v) && (v as { sequence?: unknown }).sequence !== undefined) break;
      if (i === last) {
        if (Array.isArray(v) && (v as { cons?: unknown }).cons) break;
        // A JSON array at the last step is the path's result as it is (evaluateStep).
        return v;
      }
      if (Array.isArray(v)) break;
      cur = v;
    }
    return general(input, env);
  };
}

/**
 * A path of plain names (`price`, `data.userId`) as its parent calls it: `wrap` around
 * compilePath's direct walk in one closure, the depth checked as the path and its steps would
 * check it. Where the walk stops (an array, a sequence, a function on the way) the path's own
 * closure evaluates it from the start; names have no side effects, so the restart is invisible.
 */
function namePathLeaf(n: Node): Compiled | undefined {
  const steps = n.steps as Node[];
  if (!shapeIs(n, 'path') || n.predicate !== undefined || n.group !== undefined || n.keepArray !== undefined
    || n.tuple !== undefined || n.keepSingletonArray !== undefined || n.seekingParent !== undefined
    || !steps.every((s) => isPlainName(s) && s.compiled !== undefined)) return undefined;
  const keys = steps.map((s) => String(s.value));
  const last = keys.length - 1;
  const full = n.compiled!;
  if (last === 0) {
    // One name (`price`), the commonest path of all.
    const key = keys[0]!;
    return (input, env) => {
      const base = env.base;
      // wrap's depth + 1 for the path, + 1 for its step (evaluatePath); the clock check is wrap's
      if (base.depth + 2 > base.stack || (base.steps & 255) === 255) return full(input, env);
      if (input === null || typeof input !== 'object' || Array.isArray(input)) return full(input, env);
      const v = (input as Record<string, unknown>)[key];
      // Missing, inherited or undefined: nothing, as lookup finds (a function object included).
      if (v === undefined || !hasOwn.call(input, key)) return undefined;
      if ((input as Fn)._jsonata_function === true || (input as Fn)._jsonata_lambda === true) return full(input, env);
      // A JSON array is the path's result as it is (evaluateStep); a sequence is not.
      if (Array.isArray(v) && ((v as Seq).sequence !== undefined || (v as { cons?: unknown }).cons)) return full(input, env);
      base.steps++;
      return v;
    };
  }
  return (input, env) => {
    const base = env.base;
    if (base.depth + 2 > base.stack || (base.steps & 255) === 255) return full(input, env);
    let cur = input;
    for (let i = 0; ; i++) {
      if (cur === null || typeof cur !== 'object' || Array.isArray(cur)) break;
      const key = keys[i]!;
      const v = (cur as Record<string, unknown>)[key];
      if (v === undefined || !hasOwn.call(cur, key)) return undefined;
      if ((cur as Fn)._jsonata_function === true || (cur as Fn)._jsonata_lambda === true) break;
      if (i === last) {
        if (Array.isArray(v) && ((v as Seq).sequence !== undefined || (v as { cons?: unknown }).cons)) break;
        base.steps++;
        return v;
      }
      if (Array.isArray(v)) break;
      cur = v;
    }
    return full(input, env);
  };
}

/** jsonata's marks of a function object (utils.isFunction, for objects). */
interface Fn {
  _jsonata_function?: unknown;
  _jsonata_lambda?: unknown;
}

function compileBinary(n: Node): Compiled | undefined {
  const op = String(n.value);
  if (!BINARY.has(op)) return undefined;
  const lhs = sub(n.lhs), rhs = sub(n.rhs);
  const fail = (err: unknown): never => {
    const e = err as JsonataError;
    if (e && typeof e === 'object') {
      e.position = n.position;
      e.token = op;
    }
    throw err;
  };
  if ((op === 'and' || op === 'or') && probe) {
    const hit = probe.register(n, ['right', 'short']);
    return (input, env) => {
      const l = lhs(input, env);
      let right = false;
      try {
        const result = evaluateBooleanExpression!(l, () => {
          right = true;
          return rhs(input, env);
        }, op);
        hit(right ? 0 : 1);
        return result;
      } catch (err) {
        return fail(err);
      }
    };
  }
  if (op === 'and' || op === 'or') {
    // evaluateBooleanExpression without the closure it takes for the right side: `and` is the
    // left side's truth when false, else the right side's; `or` the other way round.
    const isAnd = op === 'and';
    return (input, env) => {
      const l = lhs(input, env);
      try {
        const left = boolize(l);
        if (left !== isAnd) return left;
        return boolize(rhs(input, env));
      } catch (err) {
        return fail(err);
      }
    };
  }
  const apply = {
    '+': evaluateNumericExpression, '-': evaluateNumericExpression, '*': evaluateNumericExpression,
    '/': evaluateNumericExpression, '%': evaluateNumericExpression,
    '=': evaluateEqualityExpression, '!=': evaluateEqualityExpression,
    '<': evaluateComparisonExpression, '<=': evaluateComparisonExpression, '>': evaluateComparisonExpression,
    '>=': evaluateComparisonExpression,
    '&': evaluateStringConcat, in: evaluateIncludesExpression,
  }[op]!;
  const general: Compiled = (input, env) => {
    const l = lhs(input, env);
    const r = rhs(input, env);
    try {
      return apply(l, r, op);
    } catch (err) {
      return fail(err);
    }
  };
  return primitiveBinary(op, lhs, rhs, (l, r) => {
    try {
      return apply(l, r, op);
    } catch (err) {
      return fail(err);
    }
  }) ?? general;
}

/** fn.boolean with undefined as false (evaluator.ts's boolize). */
function boolize(value: unknown): boolean {
  const b = boolean(value);
  return b === undefined ? false : (b as boolean);
}

/**
 * Arithmetic, comparison and equality on the operand types that need no checks beyond their
 * `typeof`, computed inline; any other operands (undefined, a string in arithmetic, NaN or an
 * infinity, objects) go to jsonata's operator function (`slow`), which makes the result or error.
 * - arithmetic: two finite numbers (`x - x === 0` is false for NaN and ±Infinity, which
 *   isNumeric refuses with T2001/T2002 or D1001);
 * - comparison: two numbers or two strings (same types, comparable: no T2009/T2010);
 * - equality: neither undefined and not both objects: isDeepEqual is then `===`.
 */
function primitiveBinary(op: string, lhs: Compiled, rhs: Compiled, slow: (l: unknown, r: unknown) => unknown): Compiled | undefined {
  switch (op) {
    case '+': return (input, env) => {
      const l = lhs(input, env), r = rhs(input, env);
      return typeof l === 'number' && typeof r === 'number' && l - l === 0 && r - r === 0 ? l + r : slow(l, r);
    };
    case '-': return (input, env) => {
      const l = lhs(input, env), r = rhs(input, env);
      return typeof l === 'number' && typeof r === 'number' && l - l === 0 && r - r === 0 ? l - r : slow(l, r);
    };
    case '*': return (input, env) => {
      const l = lhs(input, env), r = rhs(input, env);
      return typeof l === 'number' && typeof r === 'number' && l - l === 0 && r - r === 0 ? l * r : slow(l, r);
    };
    case '/': return (input, env) => {
      const l = lhs(input, env), r = rhs(input, env);
      return typeof l === 'number' && typeof r === 'number' && l - l === 0 && r - r === 0 ? l / r : slow(l, r);
    };
    case '%': return (input, env) => {
      const l = lhs(input, env), r = rhs(input, env);
      return typeof l === 'number' && typeof r === 'number' && l - l === 0 && r - r === 0 ? l % r : slow(l, r);
    };
    case '<': return (input, env) => {
      const l = lhs(input, env), r = rhs(input, env);
      return (typeof l === 'number' && typeof r === 'number') || (typeof l === 'string' && typeof r === 'string') ? l < r : slow(l, r);
    };
    case '<=': return (input, env) => {
      const l = lhs(input, env), r = rhs(input, env);
      return (typeof l === 'number' && typeof r === 'number') || (typeof l === 'string' && typeof r === 'string') ? l <= r : slow(l, r);
    };
    case '>': return (input, env) => {
      const l = lhs(input, env), r = rhs(input, env);
      return (typeof l === 'number' && typeof r === 'number') || (typeof l === 'string' && typeof r === 'string') ? l > r : slow(l, r);
    };
    case '>=': return (input, env) => {
      const l = lhs(input, env), r = rhs(input, env);
      return (typeof l === 'number' && typeof r === 'number') || (typeof l === 'string' && typeof r === 'string') ? l >= r : slow(l, r);
    };
    case '=': return (input, env) => {
      const l = lhs(input, env), r = rhs(input, env);
      return l !== undefined && r !== undefined && (typeof l !== 'object' || typeof r !== 'object') ? l === r : slow(l, r);
    };
    case '!=': return (input, env) => {
      const l = lhs(input, env), r = rhs(input, env);
      return l !== undefined && r !== undefined && (typeof l !== 'object' || typeof r !== 'object') ? l !== r : slow(l, r);
    };
    default:
      return undefined;
  }
}

/**
 * A function call: evaluator.ts's evaluateFunction with its procedure and arguments compiled;
 * the call itself (signature validation, tail calls, errors) is jsonata's `apply`.
 */
function compileFunction(n: Node): Compiled {
  const call = compileCall(n);
  // The node's own `compiled` is not set yet: isPure checks the call's arguments, and the call
  // itself by its procedure.
  n.compiled = (input, env) => call(input, env, undefined);
  const memo = memoSlot(n);
  n.compiled = undefined;
  if (memo === undefined) return (input, env) => call(input, env, undefined);
  const { slot, size, native } = memo;
  const procName = (n.procedure as Node).value;
  return (input, env) => {
    const base = env.base as unknown as MemoBase;
    const keep = base.plainScope && input !== null && typeof input === 'object' && !Array.isArray(input);
    if (keep && base.memo !== undefined && base.memo[2 * slot] === input && base.depth + size <= base.stack) {
      // What the call would have left on the built-in (compileCall, as evaluateFunction does).
      native.token = procName;
      native.position = n.position;
      return base.memo[2 * slot + 1];
    }
    const value = call(input, env, undefined);
    if (keep && (value === null || typeof value !== 'object')) {
      const memoValues = base.memo ?? (base.memo = []);
      memoValues[2 * slot] = input;
      memoValues[2 * slot + 1] = value;
    }
    return value;
  };
}

/** evaluateFunction(expr, input, environment, applyto) with the node's parts compiled. */
function compileCall(n: Node): (input: unknown, env: Frame, applyto: { context: unknown } | undefined) => unknown {
  const procNode = n.procedure as Node;
  const proc = sub(procNode);
  const args = (n.arguments as Node[]).map(sub);
  const firstStep = procNode.type === 'path' ? (procNode.steps as Node[])[0]!.value : undefined;
  const procName = procNode.type === 'path' ? firstStep : procNode.value;
  const fast = fastBuiltin(procNode);
  return (input, env, applyto) => {
    const p = proc(input, env);
    if (p === undefined && procNode.type === 'path' && env.lookup(String(firstStep))) {
      // help the user out here if they simply forgot the leading $
      throw { code: 'T1005', stack: new Error().stack, position: n.position, token: firstStep };
    }
    const offset = applyto === undefined ? 0 : 1;
    const evaluated = new Array<unknown>(args.length + offset);
    if (applyto !== undefined) evaluated[0] = applyto.context;
    for (let j = 0; j < args.length; j++) {
      const arg = args[j]!(input, env);
      if (isFunction(arg)) {
        evaluated[j + offset] = functionArgument(arg, env);
      } else {
        evaluated[j + offset] = arg;
      }
    }
    try {
      if (typeof p === 'object') {
        (p as Record<string, unknown>).token = procName;
        (p as Record<string, unknown>).position = n.position;
      }
      if (fast !== undefined && p === fast.native) {
        const validated = fast.validate(evaluated);
        if (validated !== undefined) return callFast(fast, validated);
      }
      if (p !== null && typeof p === 'object' && (p as Native)._jsonata_function === true) return callNative(p as Native, evaluated, input, env);
      return apply!(p, evaluated, input, env);
    } catch (err) {
      const e = err as JsonataError;
      if (!e.position) e.position = n.position;
      if (!e.token) e.token = procName;
      throw err;
    }
  };
}

/** Keys that say nothing about what a node computes. */
const UNKEYED = new Set(['position', 'compiled', 'leaf']);

/** A node's structure (positions aside): two nodes with the same key compute the same way. */
function callKey(n: Node): string | undefined {
  try {
    return JSON.stringify(n, (k, v: unknown) => (UNKEYED.has(k) ? undefined : v instanceof RegExp ? String(v) : v));
  } catch {
    return undefined; // not expressible as JSON (a cycle): such a call is not kept
  }
}

function hasTransform(node: unknown, depth: number): boolean {
  if (depth > 200) return true;
  if (!node || typeof node !== 'object' || node instanceof RegExp) return false;
  if (Array.isArray(node)) return node.some((c) => hasTransform(c, depth + 1));
  const n = node as Node;
  if (n.type === 'transform') return true;
  return Object.keys(n).some((key) => key !== 'compiled' && key !== 'leaf' && typeof n[key] === 'object' && hasTransform(n[key], depth + 1));
}

/** Counts the function calls of `node` by structure (not the right side of `~>`, which gets its first argument from the left). */
function countCalls(node: unknown, depth: number): void {
  if (depth > 200 || !node || typeof node !== 'object' || node instanceof RegExp) return;
  if (Array.isArray(node)) {
    for (const c of node) countCalls(c, depth + 1);
    return;
  }
  const n = node as Node;
  const key = n.type === 'function' ? callKey(n) : undefined;
  if (key !== undefined) {
    const entry = repeatedCalls.get(key);
    if (entry) entry.count++;
    else repeatedCalls.set(key, { count: 1 });
  }
  for (const key of Object.keys(n)) {
    if (n.type === 'apply' && key === 'rhs' && (n.rhs as Node).type === 'function') {
      countCalls((n.rhs as Node).arguments, depth + 1);
      continue;
    }
    if (typeof n[key] === 'object') countCalls(n[key], depth + 1);
  }
}

/** Node types a pure call's arguments may be made of (each compiled by this module). */
const PURE_TYPES = new Set(['string', 'number', 'value', 'name', 'path', 'binary', 'condition', 'block', 'unary', 'function', 'variable']);
/** Keys of nodes that bind variables or group: never in a pure call. */
const IMPURE_KEYS = new Set(['focus', 'index', 'tuple', 'ancestor', 'seekingParent', 'group', 'slot']);

/**
 * Whether a node computes its value from its context value (and `$$`) alone, with no side effect:
 * literals, names and paths, compiled operators, conditions, blocks without bindings,
 * constructors, `$` and `$$`, and calls of FastBuiltins (none reads a clock or a random source)
 * with pure arguments. Counts the nodes into `size.n`.
 */
function isPure(node: unknown, size: { n: number; calls: number }, depth: number): boolean {
  if (depth > 64) return false;
  if (node === null || typeof node !== 'object') return true;
  if (node instanceof RegExp) return false;
  if (Array.isArray(node)) return node.every((c) => isPure(c, size, depth + 1));
  const n = node as Node;
  if (n.type === 'filter') return isPure(n.expr, size, depth + 1); // a stage or predicate
  if (!PURE_TYPES.has(n.type) || !n.compiled) return false;
  size.n++;
  if (n.type === 'function') size.calls++;
  if (n.type === 'variable' && n.value !== '' && (n.value !== '$' || boundNames.has('$'))) return false;
  if (n.type === 'block' && bindsInFrame(n.expressions)) return false;
  if (n.type === 'function' && fastBuiltin(n.procedure as Node) === undefined) return false;
  for (const key of Object.keys(n)) {
    if (IMPURE_KEYS.has(key)) return false;
    if (key === 'compiled' || key === 'leaf' || key === 'procedure') continue;
    if (!isPure(n[key], size, depth + 1)) return false;
  }
  return true;
}

/**
 * A memo slot for a call that occurs more than once in the expression and is pure (isPure): in
 * one evaluation, the same call on the same context object gives the same value, so the value
 * of the last evaluation is kept on the evaluation's root frame (`memo`), by slot, with the
 * context object it was computed on. Only primitive values are kept (an array or object would
 * be shared, and jsonata may flag its sequences), only for contexts that are objects (never
 * changed by an evaluation), and a kept value is reused only when evaluating the call again could
 * not reach the depth limit (`size` bounds the levels it would take), so errors stay the same.
 */
function memoSlot(n: Node): { slot: number; size: number; native: Native } | undefined {
  const key = callKey(n);
  const entry = key === undefined ? undefined : repeatedCalls.get(key);
  if (!entry || entry.count < 2) return undefined;
  const size = { n: 0, calls: 0 };
  // One call only (no call among its arguments): a call leaves its name and position on the
  // built-in's object (`token`, `position`, which an error raised through the built-in later may
  // read), and a kept value must leave the same (see compileFunction).
  if (!isPure(n, size, 0) || size.calls !== 1) return undefined;
  entry.slot ??= nextMemoSlot++;
  return { slot: entry.slot, size: size.n + 1, native: fastBuiltin(n.procedure as Node)!.native };
}

/** The evaluation's root frame as memoSlot uses it. */
interface MemoBase {
  depth: number;
  stack: number;
  plainScope: boolean;
  memo?: unknown[];
}

/** A built-in function: functions.ts's implementation and its parsed signature. */
interface Native {
  _jsonata_function: true;
  implementation: (this: unknown, ...args: unknown[]) => unknown;
  signature?: { validate(args: unknown[], context: unknown): unknown[] };
  token?: unknown;
  position?: number;
}

/**
 * A built-in called by name whose arguments can be checked without its signature's regex (see
 * fastBuiltin): `validate` gives the arguments the signature's validation would give, or
 * undefined for anything else, which takes jsonata's way (and gets its errors).
 */
interface FastBuiltin {
  native: Native;
  validate: (args: unknown[]) => unknown[] | undefined;
}

/**
 * Built-ins whose implementation reads nothing from its `this` (jsonata's focus: environment,
 * input, options) but `createSequence`, so they can be called with a constant one instead of a
 * focus made per call. The rest ($map, $append, $match, $toMillis, …: they call functions, read
 * the options or the evaluation's timestamp) are called as jsonata calls them.
 */
const THIS_FREE = new Set([
  'sum', 'count', 'max', 'min', 'average', 'string', 'substring', 'substringBefore', 'substringAfter', 'lowercase',
  'uppercase', 'length', 'trim', 'pad', 'contains', 'split', 'join', 'formatNumber', 'formatBase', 'formatInteger',
  'parseInteger', 'number', 'floor', 'ceil', 'round', 'abs', 'sqrt', 'power', 'boolean', 'not', 'keys', 'lookup',
  'exists', 'type', 'distinct', 'base64encode', 'base64decode', 'encodeUrlComponent', 'encodeUrl',
  'decodeUrlComponent', 'decodeUrl', 'fromMillis',
]);
const CONSTANT_FOCUS = { createSequence: internals.createSequence };

/** A parameter of a parsed signature (signature.js). */
interface SignatureParam {
  regex: string;
  type: string;
  subtype?: string;
  context?: boolean;
}

/**
 * The fast way to call the built-in a function call's procedure names (`$round(…)`), when the
 * procedure is a built-in's name the expression never rebinds, the implementation is THIS_FREE
 * and its signature's parameters are single values of plain types (no function or `+`
 * parameter). At run time the call takes it only when the procedure evaluates to that very
 * built-in (bindings given to the evaluation may shadow it).
 */
function fastBuiltin(procNode: Node): FastBuiltin | undefined {
  if (procNode.type !== 'variable' || Object.keys(procNode).some((k) => !NEUTRAL.has(k) || k === 'predicate' || k === 'group'
    || k === 'keepArray' || k === 'stages')) return undefined;
  const name = String(procNode.value);
  if (!THIS_FREE.has(name) || boundNames.has(name)) return undefined;
  const native = (internals.staticFrame as Frame).lookup(name) as Native | undefined;
  const params = (native?.signature as { params?: SignatureParam[] } | undefined)?.params;
  if (!native || native._jsonata_function !== true || !params) return undefined;
  const validate = plainValidator(params);
  return validate ? { native, validate } : undefined;
}

interface PlainParam {
  /** The argument symbols (getSymbol) the parameter takes, functions excepted. */
  accepts: string;
  optional: boolean;
  /** Takes the context when its argument is missing (`-`). */
  context: boolean;
  array: boolean;
  subtype?: string;
}

/**
 * signature.js's validate for arguments that match the parameters one to one (each argument's
 * type one its parameter takes, the missing ones optional and not taken from the context): the
 * regex then matches each argument to its own parameter, and validation hands back the
 * arguments, an array parameter's single value wrapped in an array and missing ones as
 * undefined. Returns undefined for anything else (a function argument, a type mismatch, an
 * array of the wrong item types, too many or too few arguments), which the caller leaves to
 * validate itself.
 */
function plainValidator(params: SignatureParam[]): ((args: unknown[]) => unknown[] | undefined) | undefined {
  const specs: PlainParam[] = [];
  for (const p of params) {
    const m = /^\[([a-z]+)\](\??)$/.exec(p.regex);
    if (!m || (p.subtype !== undefined && p.subtype.length !== 1)) return undefined;
    specs.push({ accepts: m[1]!.replace('f', ''), optional: m[2] === '?', context: p.context === true, array: p.type === 'a', subtype: p.subtype });
  }
  const count = specs.length;
  const hasArray = specs.some((p) => p.array);
  return (args) => {
    const n = args.length;
    if (n > count) return undefined;
    for (let i = 0; i < n; i++) if (!specs[i]!.accepts.includes(symbolOf(args[i]))) return undefined;
    for (let i = n; i < count; i++) if (!specs[i]!.optional || specs[i]!.context) return undefined;
    if (n === count && !hasArray) return args;
    const out = new Array<unknown>(count);
    for (let i = 0; i < count; i++) {
      const arg = args[i];
      const spec = specs[i]!;
      if (i >= n || !spec.array) {
        out[i] = arg;
        continue;
      }
      const symbol = symbolOf(arg);
      if (symbol === 'm') {
        out[i] = undefined;
        continue;
      }
      if (symbol !== 'a') {
        if (spec.subtype !== undefined && symbol !== spec.subtype) return undefined;
        out[i] = [arg];
        continue;
      }
      const items = arg as unknown[];
      if (spec.subtype !== undefined && items.length > 0) {
        const type = symbolOf(items[0]);
        if (type !== spec.subtype) return undefined;
        for (let k = 1; k < items.length; k++) if (symbolOf(items[k]) !== type) return undefined;
      }
      out[i] = items;
    }
    return out;
  };
}

/** signature.js's getSymbol: the one-letter type of an argument. */
function symbolOf(value: unknown): string {
  switch (typeof value) {
    case 'string': return 's';
    case 'number': return 'n';
    case 'boolean': return 'b';
    case 'undefined': return 'm';
    case 'function': return 'f';
    case 'object':
      if (value === null) return 'l';
      if (isFunction(value)) return 'f';
      return Array.isArray(value) ? 'a' : 'o';
    default:
      return isFunction(value) ? 'f' : 'm';
  }
}

/** callNative with the arguments validated by a FastBuiltin and the constant focus. */
function callFast(fast: FastBuiltin, args: unknown[]): unknown {
  const proc = fast.native;
  try {
    return proc.implementation.apply(CONSTANT_FOCUS, args);
  } catch (err) {
    const e = err as JsonataError;
    if (typeof e.token === 'undefined' && typeof proc.token !== 'undefined') e.token = proc.token;
    e.position = proc.position || e.position;
    throw err;
  }
}

/**
 * evaluator.ts's apply → applyInner for a built-in, inlined: validate the arguments against the
 * signature, call with jsonata's `focus` as `this`, decorate errors as applyInner does. (A
 * built-in never returns a tail-call thunk: those only pass between lambdas inside `apply`.)
 */
function callNative(proc: Native, args: unknown[], input: unknown, env: Frame): unknown {
  try {
    const validated = proc.signature === undefined ? args : proc.signature.validate(args, input);
    const focus = { environment: env, input, options: (env.base as unknown as { options: unknown }).options, createSequence: internals.createSequence };
    return proc.implementation.apply(focus, validated);
  } catch (err) {
    const e = err as JsonataError;
    if (typeof e.token === 'undefined' && typeof proc.token !== 'undefined') e.token = proc.token;
    e.position = proc.position || e.position;
    throw err;
  }
}

/**
 * Whether evaluating these nodes may bind a variable in the frame they run in: a `:=`, or a path
 * with focus/index/tuple bindings, anywhere but inside a lambda (which has its own frame).
 */
function bindsInFrame(node: unknown, depth = 0): boolean {
  if (depth > 200) return true;
  if (Array.isArray(node)) return node.some((c) => bindsInFrame(c, depth + 1));
  if (!node || typeof node !== 'object' || node instanceof RegExp) return false;
  const n = node as Node;
  if (n.type === 'bind') return true;
  if (n.type === 'lambda') return false;
  if (n.focus !== undefined || n.index !== undefined || n.tuple !== undefined) return true;
  for (const key of Object.keys(n)) {
    if (key === 'compiled' || key === 'slot' || key === 'ancestor') continue;
    if (typeof n[key] === 'object' && bindsInFrame(n[key], depth + 1)) return true;
  }
  return false;
}

/**
 * An object constructor `{ k: v, … }`. With distinct literal string keys and a single context
 * value (not a sequence), it is evaluateGroupExpression's one-group case: each value evaluated
 * once against the context, in the order jsonata iterates its groups (Object.keys: integer-like
 * keys first), and the result a plain object. Anything else is evaluateGroupExpression itself.
 */
function compileObject(n: Node): Compiled {
  const pairs = n.lhs as [Node, Node][];
  const keys = pairs.map(([k]) => (k.type === 'string' && Object.keys(k).every((x) => NEUTRAL.has(x)) ? String(k.value) : undefined));
  const literal = keys.every((k) => k !== undefined && k !== '__proto__' && k !== '_jsonata_lambda' && k !== '_jsonata_function')
    && new Set(keys).size === keys.length;
  const generic: Compiled = (input, env) => evaluateGroupExpression!(n, input, env);
  if (!literal) return generic;
  const index = new Map(keys.map((k, i) => [k!, i]));
  const order = Object.keys(Object.fromEntries(keys.map((k) => [k, true]))).map((k) => index.get(k)!);
  const names = order.map((i) => keys[i]!);
  const values = order.map((i) => sub(pairs[i]![1]));
  return (input, env) => {
    if (Array.isArray(input)) return generic(input, env);
    const result: Record<string, unknown> = {};
    for (let i = 0; i < values.length; i++) {
      const v = values[i]!(input, env);
      if (v !== undefined) result[names[i]!] = v;
    }
    return result;
  };
}

/** The keys a step may have for compileStepsPath (beyond its own compiled shape). */
const STEP_FORBIDDEN = ['focus', 'index', 'tuple', 'ancestor', 'seekingParent', 'consarray'];

/**
 * evaluatePath and evaluateStep for a path whose steps are compiled nodes, with filter stages
 * (`a[x > 1].b[0]`) but without tuple bindings (`@`, `#`, parent `%`) or order-by steps: the
 * same sequences built the same way, without the interpreter's dispatch.
 */
function compileStepsPath(n: Node): Compiled | undefined {
  const steps = n.steps as Node[];
  if (n.tuple !== undefined || n.keepSingletonArray !== undefined || n.seekingParent !== undefined) return undefined;
  for (const [i, step] of steps.entries()) {
    if (!step.compiled || step.type === 'sort') return undefined;
    if (STEP_FORBIDDEN.some((k) => step[k] !== undefined) && !(i === 0 && step.consarray !== undefined && STEP_FORBIDDEN.every((k) => k === 'consarray' || step[k] === undefined))) return undefined;
    const stages = step.stages as { type: string }[] | undefined;
    if (stages && !stages.every((st) => st.type === 'filter')) return undefined;
  }
  const fns = steps.map((s) => s.compiled!);
  const stageExprs = steps.map((s) => (s.stages as { expr: Node }[] | undefined)?.map(compileFilter));
  const firstIsVariable = steps[0]!.type === 'variable';
  const consFirst = steps[0]!.consarray === true;
  const group = n.group as Node | undefined;
  const last = steps.length - 1;
  const createSequence = internals.createSequence as (...items: unknown[]) => unknown[];
  // Leading plain-name steps (`data.items` in `data.items[qty > 0].sku`) are walked directly
  // while they meet single objects, as compilePath does; not on a path with a group-by, which
  // applies to whatever the steps left, empty sequences included.
  let lead = 0;
  if (!group) {
    while (lead < last && isPlainName(steps[lead]!)) lead++;
  }
  const keys = steps.slice(0, lead).map((s) => String(s.value));
  return (input, env) => {
    let inputSequence: unknown[] | undefined;
    let start = 0;
    if (lead > 0 && !Array.isArray(input)) {
      const base = env.base;
      if (base.depth + 1 > base.stack) throw depthError(base);
      let cur = input;
      for (; start < lead; start++) {
        // A name step on a non-object finds nothing: the path is an empty sequence.
        if (cur === null || typeof cur !== 'object' || isFunction(cur)) return createSequence();
        const key = keys[start]!;
        const v = hasOwn.call(cur, key) ? (cur as Record<string, unknown>)[key] : undefined;
        if ((++base.steps & 255) === 0) checkClock!(base);
        if (v === undefined) return createSequence();
        if (Array.isArray(v)) {
          if ((v as Seq).sequence !== undefined || (v as { cons?: unknown }).cons) break; // the general way
          if (v.length === 0) return createSequence();
          // evaluateStep would flatten it into a new sequence of the same items; the next step only reads them.
          inputSequence = v;
          start++;
          break;
        }
        cur = v;
      }
      if (start === lead && inputSequence === undefined) inputSequence = createSequence(cur);
      if (inputSequence === undefined) start = 0; // met a sequence or a cons array: from the beginning
    }
    if (inputSequence === undefined) {
      inputSequence = Array.isArray(input) && !firstIsVariable ? input : createSequence(input);
      start = 0;
    }
    let resultSequence: unknown;
    for (let ii = start; ii < fns.length; ii++) {
      if (ii === 0 && consFirst) {
        resultSequence = fns[0]!(inputSequence, env);
      } else {
        resultSequence = evaluateStep(fns[ii]!, stageExprs[ii], inputSequence as unknown[], env, ii === last, createSequence);
      }
      if (typeof resultSequence === 'undefined' || (resultSequence as unknown[]).length === 0) break;
      inputSequence = resultSequence as unknown[];
    }
    if (group) resultSequence = evaluateGroupExpression!(group, resultSequence, env);
    return resultSequence;
  };
}

function evaluateStep(step: Compiled, stages: Filter[] | undefined, input: unknown[], env: Frame, lastStep: boolean,
  createSequence: (...items: unknown[]) => unknown[]): unknown[] {
  const result = createSequence();
  let arrays = false;
  for (let ii = 0; ii < input.length; ii++) {
    let res = step(input[ii], env);
    if (stages) for (let ss = 0; ss < stages.length; ss++) res = stages[ss]!(res, env);
    if (typeof res !== 'undefined') {
      result.push(res);
      if (Array.isArray(res)) arrays = true;
    }
  }
  // No array among the results: flattening would copy them as they are into a new sequence.
  if (!arrays) {
    checkSequence(result.length, env);
    return result;
  }
  if (lastStep && result.length === 1 && Array.isArray(result[0]) && !(result[0] as Seq).sequence) return result[0] as unknown[];
  // One fresh sequence with no flag but `sequence` (what a boolean filter stage made): flattening
  // would copy its items into a new sequence just like it. (Not a sequence from anywhere else: a
  // variable's value, say, must not become the path's result, which may get flags set.)
  if (result.length === 1 && stages !== undefined && (stages[stages.length - 1] as FreshFilter).fresh === true
    && isBareSequence(result[0])) {
    checkSequence((result[0] as unknown[]).length, env);
    return result[0] as unknown[];
  }
  // flatten the sequence
  const resultSequence = createSequence();
  for (let i = 0; i < result.length; i++) {
    const res = result[i];
    if (!Array.isArray(res) || (res as { cons?: boolean }).cons) {
      resultSequence.push(res);
    } else {
      for (let j = 0; j < res.length; j++) resultSequence.push(res[j]);
    }
  }
  checkSequence(resultSequence.length, env);
  return resultSequence;
}

/** A sequence carrying no flag but `sequence` (no keepSingleton, outerWrapper, tupleStream, cons). */
function isBareSequence(v: unknown): boolean {
  if (!Array.isArray(v) || (v as Seq).sequence !== true) return false;
  const f = v as unknown as Record<string, unknown>;
  return f.keepSingleton === undefined && f.outerWrapper === undefined && f.tupleStream === undefined && f.cons === undefined;
}

/** A name step the direct walk can take: no stages, predicates, group-by or bindings. */
function isPlainName(step: Node): boolean {
  return shapeIs(step, 'name') && step.stages === undefined && step.predicate === undefined && step.group === undefined
    && step.keepArray === undefined;
}

/** D2015 when a sequence outgrows the evaluation's sequence limit. */
function checkSequence(length: number, env: Frame): void {
  const limit = (env.base as unknown as { sequenceLimit: number }).sequenceLimit;
  if (length > limit) throw { code: 'D2015', value: limit, stack: new Error().stack };
}

/** An array constructor `[a, b, …]`: evaluator.ts's evaluateUnary '[' case. */
function compileArray(n: Node): Compiled {
  const items = (n.expressions as Node[]).map((item) => ({ fn: sub(item), nested: item.value === '[' }));
  const cons = n.consarray === true;
  const append = fn.append as (this: unknown, a: unknown, b: unknown) => unknown[];
  return (input, env) => {
    const focus = { options: (env.base as unknown as { options: unknown }).options, createSequence: internals.createSequence };
    let result: unknown[] = [];
    for (let i = 0; i < items.length; i++) {
      const value = items[i]!.fn(input, env);
      if (typeof value !== 'undefined') {
        if (items[i]!.nested) result.push(value);
        else result = append.call(focus, result, value);
      }
    }
    if (cons) Object.defineProperty(result, 'cons', { enumerable: false, configurable: false, value: true });
    return result;
  };
}

/** Unary minus: evaluator.ts's evaluateUnary '-' case. */
function compileNegation(n: Node): Compiled {
  const operand = sub(n.expression);
  const isNumeric = utils.isNumeric as (v: unknown) => boolean;
  return (input, env) => {
    const result = operand(input, env);
    if (typeof result === 'undefined') return undefined;
    if (isNumeric(result)) return -(result as number);
    throw { code: 'D1002', stack: new Error().stack, position: n.position, token: n.value, value: result };
  };
}

/**
 * A function passed as an argument, wrapped as evaluateFunction wraps it. (A module-level maker:
 * tsx's keepNames would add a naming call to a closure declared inside the call's closure.)
 */
function functionArgument(arg: unknown, env: Frame): unknown {
  const f = arg as { (...a: unknown[]): unknown; token?: unknown; position?: unknown; signature?: unknown; regexMatcher?: boolean };
  // A regex's matcher (evaluator.js evaluateRegex): jsonata's apply would validate nothing, call
  // it with `this` null, find no tail call in its result and decorate errors with nothing.
  const plainFunction = typeof f === 'function' && f.regexMatcher === true && f.token === undefined
    && f.position === undefined && f.signature === undefined && !isFunctionObject(f);
  const closure = plainFunction
    ? (...params: unknown[]): unknown => f.apply(null, params)
    : (...params: unknown[]): unknown => apply!(arg, params, null, env);
  (closure as unknown as { arity: number }).arity = getFunctionArity(arg);
  return closure;
}

/**
 * `lhs ~> rhs`: evaluateApplyExpression. A function call on the right is invoked with the left
 * value as its first argument (compiled); a function value on the right (chaining, `~> $f`) is
 * the evaluator's.
 */
function compileApply(n: Node): Compiled {
  const rhs = n.rhs as Node;
  if (rhs.type !== 'function' || !shapeIs(rhs, 'function')) return (input, env) => evaluateApplyExpression!(n, input, env);
  const lhs = sub(n.lhs);
  const call = compileCall(rhs);
  return (input, env) => call(input, env, { context: lhs(input, env) });
}

/**
 * A variable: evaluateVariable. A built-in function the expression never rebinds, in an
 * evaluation whose caller's bindings shadow no built-in (`plainScope`), is read from the built-in
 * frame directly instead of by a walk up the frames, which would end there.
 */
function compileVariable(n: Node): Compiled {
  const name = String(n.value);
  if (name === '') return (input, env) => evaluateVariable!(n, input, env);
  const builtin = (internals.staticFrame as Frame).lookup(name);
  if (builtin !== undefined && !boundNames.has(name)) {
    return (_input, env) => ((env.base as unknown as { plainScope: boolean }).plainScope ? builtin : env.lookup(name));
  }
  return (_input, env) => env.lookup(name);
}

/** jsonata's function objects (built-ins, lambdas) as opposed to plain JavaScript functions. */
function isFunctionObject(f: unknown): boolean {
  const o = f as { _jsonata_function?: unknown; _jsonata_lambda?: unknown };
  return o._jsonata_function === true || o._jsonata_lambda === true;
}

/** A filter stage `[…]` applied to a step's result: evaluateFilter(predicate, input, env). */
type Filter = (input: unknown, env: Frame) => unknown;
/** A filter whose result is always a sequence of its own (`fresh`). */
type FreshFilter = Filter & { fresh?: boolean };

/** Operators whose result is true, false or undefined. */
const BOOLEAN_OPS = new Set(['=', '!=', '<', '<=', '>', '>=', 'in', 'and', 'or']);

/**
 * A filter stage. A predicate that is a comparison or a boolean operator (`[qty > 0]`) yields
 * true, false or nothing, for which evaluateFilter's index and truthiness rules come down to
 * "keep the item when true": that is done directly. Any other predicate is evaluateFilter's.
 */
function compileFilter(stage: { expr: Node }): Filter {
  const predicate = stage.expr;
  const compiled = predicate.compiled;
  if (!compiled || predicate.type !== 'binary' || !BOOLEAN_OPS.has(String(predicate.value))
    || predicate.predicate !== undefined || predicate.group !== undefined || predicate.keepArray !== undefined) {
    return (input, env) => evaluateFilter!(predicate, input, env);
  }
  const createSequence = internals.createSequence as (...items: unknown[]) => unknown[];
  const filter: FreshFilter = (input, env) => {
    const results = createSequence();
    if (input && (input as Seq).tupleStream) return evaluateFilter!(predicate, input, env);
    const items = Array.isArray(input) ? input : createSequence(input);
    for (let i = 0; i < items.length; i++) {
      if (compiled(items[i], env) === true) results.push(items[i]);
    }
    return results;
  };
  filter.fresh = true;
  return filter;
}
