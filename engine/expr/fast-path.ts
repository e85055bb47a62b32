/**
 * A synchronous evaluator for the common subset of JSONata, tried before the (asynchronous,
 * comparatively slow) reference interpreter.
 *
 * Exact by construction:
 * - `compileFastPath` accepts an AST only when EVERY node is in the subset below and carries no
 *   annotation it does not know (predicates, stages, grouping, focus/index binds, keepArray, parent
 *   references, ...). Otherwise there is no fast path and the expression runs on jsonata alone.
 * - At run time the compiled function throws `BAIL` whenever it meets a value outside what it
 *   handles exactly: an array from the input, a binding or a variable (sequence, flattening and
 *   singleton rules), a function, a non-finite number, an operand jsonata would reject with an
 *   error, a shadowed built-in, an unbound variable, ... The caller then evaluates that input with
 *   jsonata. The fast path never raises an error of its own and never returns a value jsonata
 *   would not return.
 * Each operator mirrors the function of node_modules/jsonata/jsonata.js (v2.2) named in its
 * comment; helpers at the end of the file are copies of jsonata's, with BAIL where they throw.
 *
 * Subset:
 * - literals: strings, numbers, true, false, null;
 * - paths of plain field names after a first step that is a field name, `$`, `$$`, a variable or
 *   any subset expression (`data.userId`, `$input.data.x`, `(c ? payload : $).event`);
 * - `$` (context), `$$` (root), variables bound by the caller or by `:=` in the expression;
 * - binary `= != < <= > >= + - * / % & in and or`, unary minus;
 * - `a ? b : c` (and `??` / `?:`, which the parser turns into conditions);
 * - blocks `(a; b; ...)` and `$name := value` bindings (not of `$`/`$$` nor of a built-in the
 *   subset calls);
 * - object constructors with distinct literal string keys; array constructors (neither with a
 *   `:=` among its items: jsonata evaluates those concurrently);
 * - calls of $exists, $boolean, $not, $string (one argument), $number, $lowercase, $uppercase,
 *   $length, $trim, $substring, $substringBefore, $substringAfter, $contains (string token),
 *   $abs, $floor, $ceil.
 * No loops, no recursion, no lambdas: an evaluation costs O(expression size x values touched), so
 * it needs neither jsonata's time limit nor its depth limit (ASTs nested deeper than MAX_DEPTH get
 * no fast path, far inside jsonata's stack limit).
 */

export const BAIL: unique symbol = Symbol('jsonata-fast-path-bail');

export type Bindings = Record<string, unknown> | undefined;
/** Evaluates synchronously; throws `BAIL` when it cannot answer exactly. */
export type FastPath = (input: unknown, bindings?: Bindings) => unknown;

/** Deeper ASTs get no fast path (jsonata's own depth limit is EXPRESSION_STACK_LIMIT = 500). */
export const MAX_DEPTH = 64;

/**
 * A compiled node. `slots` holds the values of the expression's own `:=` variables during one
 * evaluation (UNBOUND until bound).
 */
type Eval = (input: unknown, bindings: Bindings, slots: unknown[]) => unknown;

interface Node {
  type?: unknown;
  value?: unknown;
  [key: string]: unknown;
}

/**
 * A variable frame: the whole expression (jsonata binds top-level `:=` in the frame that holds
 * the caller's bindings) or one block (jsonata gives each block evaluation a fresh frame). Every
 * name bound anywhere in the frame, outside nested blocks, gets a slot.
 */
interface Scope {
  parent: Scope | undefined;
  slots: Map<string, number>;
}

interface Ctx {
  depth: number;
  scope: Scope;
  alloc: { slots: number };
}

/** Thrown inside the compiler when a node is outside the subset. */
const UNSUPPORTED = Symbol('unsupported');
/** A slot whose variable is not bound (yet) in this evaluation. */
const UNBOUND = Symbol('unbound');
const NO_SLOTS: unknown[] = [];

function unsupported(): never {
  throw UNSUPPORTED;
}

function bail(): never {
  throw BAIL;
}

const hasOwn = Object.prototype.hasOwnProperty;
const isEnumerable = Object.prototype.propertyIsEnumerable;

/**
 * Compiles the AST of `jsonata(expr).ast()` into a synchronous evaluator, or returns undefined
 * when the expression uses anything outside the subset.
 */
export function compileFastPath(ast: unknown): FastPath | undefined {
  let root: Eval;
  const alloc = { slots: 0 };
  try {
    const scope = newScope(undefined, ast, alloc);
    root = compile(ast, { depth: 0, scope, alloc });
  } catch (err) {
    if (err === UNSUPPORTED) return undefined;
    throw err;
  }
  const size = alloc.slots;
  return (input, bindings) => {
    // jsonata wraps a JSON array input in an outer singleton sequence: not our business.
    checked(input);
    return root(input, bindings, size === 0 ? NO_SLOTS : new Array<unknown>(size).fill(UNBOUND));
  };
}

// ---------------------------------------------------------------------------------------------
// Compiler

function compile(n: unknown, ctx: Ctx): Eval {
  if (ctx.depth > MAX_DEPTH) unsupported();
  if (!n || typeof n !== 'object' || Array.isArray(n)) unsupported();
  const node = n as Node;
  const inner: Ctx = { depth: ctx.depth + 1, scope: ctx.scope, alloc: ctx.alloc };
  switch (node.type) {
    case 'string':
      only(node, []);
      if (typeof node.value !== 'string') unsupported();
      return literal(node.value);
    case 'number':
      only(node, []);
      if (typeof node.value !== 'number' || !Number.isFinite(node.value)) unsupported();
      return literal(node.value);
    case 'value':
      only(node, []);
      if (node.value !== true && node.value !== false && node.value !== null) unsupported();
      return literal(node.value);
    case 'variable':
      only(node, []);
      return variable(node, ctx);
    case 'path':
      return path(node, inner);
    case 'binary':
      return binary(node, inner);
    case 'unary':
      return unary(node, inner);
    case 'condition':
      return condition(node, inner);
    case 'block':
      return block(node, inner);
    case 'bind':
      return bind(node, inner);
    case 'function':
      return call(node, inner);
    default:
      return unsupported();
  }
}

/** The node may carry only `type`, `position`, `value` and the listed keys (others change its meaning). */
function only(node: Node, keys: readonly string[]): void {
  for (const key of Object.keys(node)) {
    if (key === 'type' || key === 'position' || key === 'value' || keys.includes(key)) continue;
    unsupported();
  }
}

function literal(value: unknown): Eval {
  return () => value;
}

/** A frame for `nodes`, with a slot for each name bound by `:=` in it (outside nested blocks). */
function newScope(parent: Scope | undefined, nodes: unknown, alloc: { slots: number }): Scope {
  const names = new Set<string>();
  collectBinds(nodes, names, 0);
  const slots = new Map<string, number>();
  for (const name of names) slots.set(name, alloc.slots++);
  return { parent, slots };
}

function collectBinds(n: unknown, names: Set<string>, depth: number): void {
  if (depth > 4 * MAX_DEPTH) unsupported();
  if (Array.isArray(n)) {
    for (const item of n) collectBinds(item, names, depth + 1);
    return;
  }
  if (!n || typeof n !== 'object') return;
  const node = n as Node;
  if (node.type === 'block') return; // its own frame
  if (node.type === 'bind') {
    const lhs = node.lhs as Node | undefined;
    if (!lhs || lhs.type !== 'variable' || typeof lhs.value !== 'string') unsupported();
    names.add(lhs.value);
  }
  for (const child of Object.values(node)) {
    if (child && typeof child === 'object') collectBinds(child, names, depth + 1);
  }
}

/**
 * jsonata evaluates the items of an array constructor and the values of an object constructor
 * concurrently (Promise.all): a `:=` in one of them may or may not be seen by its siblings,
 * depending on how their awaits interleave. Such constructors are not in the subset (a `:=`
 * inside a nested block binds in that block's own frame and is fine).
 */
function noParallelBinds(children: unknown): void {
  const names = new Set<string>();
  collectBinds(children, names, 0);
  if (names.size > 0) unsupported();
}

/** Whether `name` is bound by `:=` in this frame or an enclosing one. */
function boundLocally(scope: Scope | undefined, name: string): boolean {
  for (let s = scope; s; s = s.parent) if (s.slots.has(name)) return true;
  return false;
}

/**
 * evaluateVariable: `$` is the context, `$$` the root input (the same value here); any other
 * name is looked up frame by frame (innermost block first), then in the caller's bindings.
 */
function variable(node: Node, ctx: Ctx): Eval {
  const name = node.value;
  if (typeof name !== 'string') unsupported();
  if (name === '') return (input) => input;
  // `$$ := ...` is refused (see bind), so `$$` is always the root input.
  if (name === '$') return (input) => input;
  const candidates: number[] = [];
  for (let s: Scope | undefined = ctx.scope; s; s = s.parent) {
    const slot = s.slots.get(name);
    if (slot !== undefined) candidates.push(slot);
  }
  if (candidates.length === 0) return (_input, bindings) => fromBindings(bindings, name);
  return (_input, bindings, slots) => {
    for (const slot of candidates) {
      const value = slots[slot];
      if (value !== UNBOUND) return checked(value);
    }
    return fromBindings(bindings, name);
  };
}

function fromBindings(bindings: Bindings, name: string): unknown {
  // jsonata binds the bindings object's own enumerable keys (utils.keys); an unbound name may be
  // a built-in function, $now, $millis, or nothing: jsonata decides.
  if (bindings === null || typeof bindings !== 'object' || !isEnumerable.call(bindings, name)) bail();
  return checked(bindings[name]);
}

/** evaluateBindExpression: binds in the innermost frame and returns the value. */
function bind(node: Node, ctx: Ctx): Eval {
  only(node, ['lhs', 'rhs']);
  if (node.value !== ':=') unsupported();
  const lhs = node.lhs as Node;
  if (!lhs || typeof lhs !== 'object' || lhs.type !== 'variable' || typeof lhs.value !== 'string') unsupported();
  only(lhs, []);
  const name = lhs.value;
  // Rebinding `$`/`$$` or a built-in changes the meaning of other nodes: not in the subset.
  if (name === '' || name === '$' || hasOwn.call(BUILTINS, name)) unsupported();
  const slot = ctx.scope.slots.get(name);
  if (slot === undefined) unsupported();
  const rhs = compile(node.rhs, ctx);
  return (input, bindings, slots) => {
    const value = rhs(input, bindings, slots);
    slots[slot] = value;
    return value;
  };
}

/**
 * evaluatePath / evaluateStep / fn.lookup for a non-array input: the first step is evaluated
 * against the context, then each name is looked up in the previous value (undefined unless it is
 * an object owning the key). Arrays anywhere bail: their flattening and singleton rules are
 * jsonata's.
 */
function path(node: Node, ctx: Ctx): Eval {
  only(node, ['steps']);
  const steps = node.steps;
  if (!Array.isArray(steps) || steps.length === 0) unsupported();
  const first = steps[0] as Node;
  let start: Eval;
  let rest: unknown[];
  if (first && typeof first === 'object' && first.type === 'name') {
    start = (input) => input;
    rest = steps;
  } else {
    const step = compile(first, ctx);
    start = (input, bindings, slots) => {
      const value = step(input, bindings, slots);
      return Array.isArray(value) ? bail() : value;
    };
    rest = steps.slice(1);
  }
  const names: string[] = [];
  for (const s of rest) {
    const step = s as Node;
    if (!step || typeof step !== 'object' || step.type !== 'name' || typeof step.value !== 'string') unsupported();
    only(step, []);
    names.push(step.value);
  }
  if (names.length === 0) return start;
  if (names.length === 1) {
    const [a] = names as [string];
    return (input, bindings, slots) => lookup(start(input, bindings, slots), a);
  }
  if (names.length === 2) {
    const [a, b] = names as [string, string];
    return (input, bindings, slots) => lookup(lookup(start(input, bindings, slots), a), b);
  }
  return (input, bindings, slots) => {
    let value = start(input, bindings, slots);
    for (let i = 0; i < names.length && value !== undefined; i++) value = lookup(value, names[i]!);
    return value;
  };
}

/** fn.lookup on a non-array, non-function value. */
function lookup(value: unknown, key: string): unknown {
  if (value !== null && typeof value === 'object' && hasOwn.call(value, key)) {
    return checked((value as Record<string, unknown>)[key]);
  }
  return undefined;
}

/**
 * A value from the input, a binding or a variable: returned as is when the subset handles it
 * exactly, BAIL otherwise (arrays, functions and jsonata function objects, non-finite numbers,
 * bigints, symbols).
 */
function checked(value: unknown): unknown {
  switch (typeof value) {
    case 'undefined':
    case 'string':
    case 'boolean':
      return value;
    case 'number':
      return Number.isFinite(value) ? value : bail();
    case 'object':
      if (value === null) return value;
      if (Array.isArray(value) || isFunction(value)) bail();
      return value;
    default:
      return bail();
  }
}

function binary(node: Node, ctx: Ctx): Eval {
  only(node, ['lhs', 'rhs']);
  const lhs = compile(node.lhs, ctx);
  const rhs = compile(node.rhs, ctx);
  switch (node.value) {
    // evaluateBooleanExpression: the right side is evaluated only when needed.
    case 'and':
      return (i, b, s) => boolize(lhs(i, b, s)) && boolize(rhs(i, b, s));
    case 'or':
      return (i, b, s) => boolize(lhs(i, b, s)) || boolize(rhs(i, b, s));
    // evaluateEqualityExpression
    case '=':
      return (i, b, s) => {
        const l = lhs(i, b, s);
        const r = rhs(i, b, s);
        return l === undefined || r === undefined ? false : isDeepEqual(l, r);
      };
    case '!=':
      return (i, b, s) => {
        const l = lhs(i, b, s);
        const r = rhs(i, b, s);
        return l === undefined || r === undefined ? false : !isDeepEqual(l, r);
      };
    // evaluateComparisonExpression
    case '<':
      return (i, b, s) => compare(lhs(i, b, s), rhs(i, b, s), (l, r) => l < r);
    case '<=':
      return (i, b, s) => compare(lhs(i, b, s), rhs(i, b, s), (l, r) => l <= r);
    case '>':
      return (i, b, s) => compare(lhs(i, b, s), rhs(i, b, s), (l, r) => l > r);
    case '>=':
      return (i, b, s) => compare(lhs(i, b, s), rhs(i, b, s), (l, r) => l >= r);
    // evaluateNumericExpression
    case '+':
      return (i, b, s) => arithmetic(lhs(i, b, s), rhs(i, b, s), (l, r) => l + r);
    case '-':
      return (i, b, s) => arithmetic(lhs(i, b, s), rhs(i, b, s), (l, r) => l - r);
    case '*':
      return (i, b, s) => arithmetic(lhs(i, b, s), rhs(i, b, s), (l, r) => l * r);
    case '/':
      return (i, b, s) => arithmetic(lhs(i, b, s), rhs(i, b, s), (l, r) => l / r);
    case '%':
      return (i, b, s) => arithmetic(lhs(i, b, s), rhs(i, b, s), (l, r) => l % r);
    // evaluateStringConcat
    case '&':
      return (i, b, s) => {
        const l = lhs(i, b, s);
        const r = rhs(i, b, s);
        const ls = l === undefined ? '' : string(l) as string;
        const rs = r === undefined ? '' : string(r) as string;
        return ls.concat(rs);
      };
    // evaluateIncludesExpression
    case 'in':
      return (i, b, s) => {
        const l = lhs(i, b, s);
        const r = rhs(i, b, s);
        if (l === undefined || r === undefined) return false;
        // `===` on an object is identity: exact here too, but not worth the reasoning.
        if (l !== null && typeof l === 'object') bail();
        if (!Array.isArray(r)) return r === l;
        for (let k = 0; k < r.length; k++) if (r[k] === l) return true;
        return false;
      };
    default:
      return unsupported();
  }
}

function compare(l: unknown, r: unknown, op: (l: number | string, r: number | string) => boolean): boolean | undefined {
  const lt = typeof l;
  const rt = typeof r;
  const lc = lt === 'undefined' || lt === 'string' || lt === 'number';
  const rc = rt === 'undefined' || rt === 'string' || rt === 'number';
  if (!lc || !rc) bail(); // T2010
  if (lt === 'undefined' || rt === 'undefined') return undefined;
  if (lt !== rt) bail(); // T2009
  return op(l as number | string, r as number | string);
}

function arithmetic(l: unknown, r: unknown, op: (l: number, r: number) => number): number | undefined {
  if (l !== undefined && !isNumeric(l)) bail(); // T2001
  if (r !== undefined && !isNumeric(r)) bail(); // T2002
  if (l === undefined || r === undefined) return undefined;
  const result = op(l as number, r as number);
  // jsonata returns Infinity / NaN here but fails on them later (D1001, T2001, D3001...).
  return Number.isFinite(result) ? result : bail();
}

/** utils.isNumeric, with BAIL where it throws D1001 (infinite numbers). */
function isNumeric(n: unknown): boolean {
  if (typeof n !== 'number') return false;
  if (Number.isNaN(n)) return false;
  if (!Number.isFinite(n)) bail();
  return true;
}

function unary(node: Node, ctx: Ctx): Eval {
  switch (node.value) {
    case '-': {
      // evaluateUnary '-'
      only(node, ['expression']);
      const expression = compile(node.expression, ctx);
      return (i, b, s) => {
        const v = expression(i, b, s);
        if (v === undefined) return undefined;
        return isNumeric(v) ? -(v as number) : bail(); // D1002
      };
    }
    case '[': {
      // evaluateUnary '[': undefined items are dropped; an item that is itself an array
      // constructor is pushed whole, any other array value is appended item by item (fn.append).
      only(node, ['expressions']);
      const items = node.expressions;
      if (!Array.isArray(items)) unsupported();
      noParallelBinds(items);
      const compiled = items.map((item) => compile(item, ctx));
      const nested = items.map((item) => (item as Node).value === '[');
      return (i, b, s) => {
        const result: unknown[] = [];
        for (let k = 0; k < compiled.length; k++) {
          const value = compiled[k]!(i, b, s);
          if (value === undefined) continue;
          if (nested[k] || !Array.isArray(value)) result.push(value);
          else for (const v of value) result.push(v);
        }
        return result;
      };
    }
    case '{': {
      // evaluateGroupExpression on a non-array context: one group per literal key, each value
      // evaluated against the context; undefined values are left out.
      only(node, ['lhs']);
      const pairs = node.lhs;
      if (!Array.isArray(pairs)) unsupported();
      noParallelBinds(pairs);
      const keys: string[] = [];
      const values: Eval[] = [];
      for (const pair of pairs) {
        if (!Array.isArray(pair) || pair.length !== 2) unsupported();
        const key = pair[0] as Node;
        if (!key || typeof key !== 'object' || key.type !== 'string' || typeof key.value !== 'string') unsupported();
        only(key, []);
        // D1013 (reserved keys) and D1009 (a key produced by two expressions) are jsonata's.
        if (key.value === '_jsonata_lambda' || key.value === '_jsonata_function' || keys.includes(key.value)) unsupported();
        keys.push(key.value);
        values.push(compile(pair[1], ctx));
      }
      return (i, b, s) => {
        const result: Record<string, unknown> = Object.create(null);
        for (let k = 0; k < keys.length; k++) {
          const value = values[k]!(i, b, s);
          if (value !== undefined) result[keys[k]!] = value;
        }
        return result;
      };
    }
    default:
      return unsupported();
  }
}

/** evaluateCondition: fn.boolean of the condition picks the branch. */
function condition(node: Node, ctx: Ctx): Eval {
  only(node, ['condition', 'then', 'else']);
  const test = compile(node.condition, ctx);
  const then = compile(node.then, ctx);
  if (node.else === undefined) return (i, b, s) => (boolean(test(i, b, s)) ? then(i, b, s) : undefined);
  const otherwise = compile(node.else, ctx);
  return (i, b, s) => (boolean(test(i, b, s)) ? then(i, b, s) : otherwise(i, b, s));
}

/** evaluateBlock: a fresh frame, every expression in turn, the last one's value. */
function block(node: Node, ctx: Ctx): Eval {
  only(node, ['expressions']);
  const items = node.expressions;
  if (!Array.isArray(items)) unsupported();
  const scope = newScope(ctx.scope, items, ctx.alloc);
  const inner: Ctx = { depth: ctx.depth, scope, alloc: ctx.alloc };
  const compiled = items.map((item) => compile(item, inner));
  const own = [...scope.slots.values()];
  if (compiled.length === 0) return () => undefined;
  if (own.length === 0 && compiled.length === 1) return compiled[0]!;
  return (i, b, s) => {
    for (const slot of own) s[slot] = UNBOUND;
    let result: unknown;
    for (const c of compiled) result = c(i, b, s);
    return result;
  };
}

// ---------------------------------------------------------------------------------------------
// Built-in functions

/**
 * A built-in: `args` lists, per parameter, the signature symbols (getSymbol) jsonata's validator
 * accepts at that position when every argument is supplied; `arity` the accepted argument
 * counts. When each supplied argument matches its own parameter, jsonata's greedy signature regex
 * maps them one to one and passes them unchanged, so the implementation sees what jsonata's does.
 */
interface Builtin {
  arity: readonly number[];
  args: readonly string[];
  impl: (...args: unknown[]) => unknown;
}

const BUILTINS: Record<string, Builtin> = {
  exists: { arity: [1], args: ['asnblfom'], impl: (arg) => arg !== undefined },
  boolean: { arity: [1], args: ['asnblfom'], impl: (arg) => boolean(arg) },
  not: { arity: [1], args: ['asnblfom'], impl: (arg) => (arg === undefined ? undefined : !boolean(arg)) },
  string: { arity: [1], args: ['asnblfom'], impl: (arg) => string(arg) },
  number: { arity: [1], args: ['nsbm'], impl: (arg) => number(arg) },
  lowercase: { arity: [1], args: ['sm'], impl: (str) => (str === undefined ? undefined : (str as string).toLowerCase()) },
  uppercase: { arity: [1], args: ['sm'], impl: (str) => (str === undefined ? undefined : (str as string).toUpperCase()) },
  length: { arity: [1], args: ['sm'], impl: (str) => (str === undefined ? undefined : stringToArray(str as string).length) },
  trim: { arity: [1], args: ['sm'], impl: (str) => trim(str as string | undefined) },
  substring: { arity: [2, 3], args: ['sm', 'nm', 'nm'], impl: (str, start, length) => substring(str as string | undefined, start as number, length as number | undefined) },
  substringBefore: { arity: [2], args: ['sm', 'sm'], impl: (str, chars) => substringBefore(str as string | undefined, chars as string) },
  substringAfter: { arity: [2], args: ['sm', 'sm'], impl: (str, chars) => substringAfter(str as string | undefined, chars as string) },
  contains: { arity: [2], args: ['sm', 'sm'], impl: (str, token) => (str === undefined || token === undefined ? undefined : (str as string).indexOf(token as string) !== -1) },
  abs: { arity: [1], args: ['nm'], impl: (arg) => (arg === undefined ? undefined : Math.abs(arg as number)) },
  floor: { arity: [1], args: ['nm'], impl: (arg) => (arg === undefined ? undefined : Math.floor(arg as number)) },
  ceil: { arity: [1], args: ['nm'], impl: (arg) => (arg === undefined ? undefined : Math.ceil(arg as number)) },
};

/** evaluateFunction + validateArguments + the native implementation. */
function call(node: Node, ctx: Ctx): Eval {
  // `name` is copied by the parser onto function nodes and never read by the evaluator.
  only(node, ['procedure', 'arguments', 'name']);
  if (node.value !== '(' || node.name !== undefined) unsupported();
  const procedure = node.procedure as Node;
  if (!procedure || typeof procedure !== 'object' || procedure.type !== 'variable' || typeof procedure.value !== 'string') unsupported();
  only(procedure, []);
  const name = procedure.value;
  if (!hasOwn.call(BUILTINS, name) || boundLocally(ctx.scope, name)) unsupported();
  const fn = BUILTINS[name]!;
  const argNodes = node.arguments;
  if (!Array.isArray(argNodes) || !fn.arity.includes(argNodes.length)) unsupported();
  const args = argNodes.map((a) => compile(a, ctx));
  const allowed = fn.args;
  const impl = fn.impl;
  // A binding of the same name replaces the built-in (the bindings frame is searched first).
  const shadowed = (b: Bindings): boolean => b !== null && typeof b === 'object' && hasOwn.call(b, name);
  const finish = (result: unknown): unknown => (typeof result === 'number' && !Number.isFinite(result) ? bail() : result);
  if (args.length === 1) {
    const [a0] = args as [Eval];
    const [t0] = allowed as [string];
    return (i, b, s) => {
      if (shadowed(b)) bail();
      const v0 = a0(i, b, s);
      if (!t0.includes(getSymbol(v0))) bail(); // T0410
      return finish(impl(v0));
    };
  }
  return (i, b, s) => {
    if (shadowed(b)) bail();
    const values = args.map((a) => a(i, b, s));
    for (let k = 0; k < values.length; k++) {
      if (!allowed[k]!.includes(getSymbol(values[k]))) bail(); // T0410
    }
    return finish(impl(...values));
  };
}

/** The signature validator's getSymbol. */
function getSymbol(value: unknown): string {
  if (isFunction(value)) return 'f';
  switch (typeof value) {
    case 'string': return 's';
    case 'number': return 'n';
    case 'boolean': return 'b';
    case 'object':
      if (value === null) return 'l';
      return Array.isArray(value) ? 'a' : 'o';
    default: return 'm';
  }
}

// ---------------------------------------------------------------------------------------------
// Copies of jsonata's helpers (BAIL where jsonata throws)

/** utils.isFunction */
function isFunction(arg: unknown): boolean {
  return Boolean((arg && ((arg as { _jsonata_function?: unknown })._jsonata_function === true
    || (arg as { _jsonata_lambda?: unknown })._jsonata_lambda === true)) || typeof arg === 'function');
}

/** fn.boolean */
function boolean(arg: unknown): boolean | undefined {
  if (arg === undefined) return undefined;
  let result = false;
  if (Array.isArray(arg)) {
    if (arg.length === 1) {
      result = boolean(arg[0]) as boolean;
    } else if (arg.length > 1) {
      result = arg.filter((val) => boolean(val)).length > 0;
    }
  } else if (typeof arg === 'string') {
    if (arg.length > 0) result = true;
  } else if (isNumeric(arg)) {
    if (arg !== 0) result = true;
  } else if (arg !== null && typeof arg === 'object' && !isFunction(arg)) {
    if (Object.keys(arg).length > 0) result = true;
  } else if (typeof arg === 'boolean' && arg === true) {
    result = true;
  }
  return result;
}

/** boolize: fn.boolean with undefined as false. */
function boolize(value: unknown): boolean {
  return boolean(value) ?? false;
}

/** fn.string (without prettify) */
function string(arg: unknown): string | undefined {
  if (arg === undefined) return undefined;
  if (typeof arg === 'string') return arg;
  if (isFunction(arg)) return '';
  if (typeof arg === 'number' && !Number.isFinite(arg)) bail(); // D3001
  return JSON.stringify(arg, stringReplacer);
}

function stringReplacer(_key: string, val: unknown): unknown {
  if (val !== undefined && val !== null && isNumeric(val)) {
    return !Number.isInteger(val) ? Number((val as number).toPrecision(15)) : val;
  }
  return val && isFunction(val) ? '' : val;
}

/** fn.number */
function number(arg: unknown): number | undefined {
  if (arg === undefined) return undefined;
  if (typeof arg === 'number') return arg;
  if (typeof arg === 'string' && /^-?[0-9]+(\.[0-9]+)?([Ee][-+]?[0-9]+)?$/.test(arg) && !isNaN(parseFloat(arg)) && isFinite(arg as unknown as number)) {
    return parseFloat(arg);
  }
  if (typeof arg === 'string' && /^(0[xX][0-9A-Fa-f]+)|(0[oO][0-7]+)|(0[bB][0-1]+)$/.test(arg)) return Number(arg);
  if (arg === true) return 1;
  if (arg === false) return 0;
  return bail(); // D3030
}

/** utils.stringToArray: code points. */
function stringToArray(str: string): string[] {
  const arr: string[] = [];
  for (const char of str) arr.push(char);
  return arr;
}

/** fn.trim */
function trim(str: string | undefined): string | undefined {
  if (str === undefined) return undefined;
  let result = str.replace(/[ \t\n\r]+/gm, ' ');
  if (result.charAt(0) === ' ') result = result.substring(1);
  if (result.charAt(result.length - 1) === ' ') result = result.substring(0, result.length - 1);
  return result;
}

/** fn.substring */
function substring(str: string | undefined, start: number, length: number | undefined): string | undefined {
  if (str === undefined) return undefined;
  const strArray = stringToArray(str);
  const strLength = strArray.length;
  if (strLength + start < 0) start = 0;
  if (length !== undefined) {
    if (length <= 0) return '';
    const end = start >= 0 ? start + length : strLength + start + length;
    return strArray.slice(start, end).join('');
  }
  return strArray.slice(start).join('');
}

/** fn.substringBefore */
function substringBefore(str: string | undefined, chars: string): string | undefined {
  if (str === undefined) return undefined;
  const pos = str.indexOf(chars);
  return pos > -1 ? str.substr(0, pos) : str;
}

/** fn.substringAfter */
function substringAfter(str: string | undefined, chars: string): string | undefined {
  if (str === undefined) return undefined;
  const pos = str.indexOf(chars);
  return pos > -1 ? str.substr(pos + chars.length) : str;
}

/** utils.isDeepEqual */
function isDeepEqual(lhs: unknown, rhs: unknown): boolean {
  if (lhs === rhs) return true;
  if (typeof lhs === 'object' && typeof rhs === 'object' && lhs !== null && rhs !== null) {
    if (Array.isArray(lhs) && Array.isArray(rhs)) {
      if (lhs.length !== rhs.length) return false;
      for (let ii = 0; ii < lhs.length; ii++) {
        if (!isDeepEqual(lhs[ii], rhs[ii])) return false;
      }
      return true;
    }
    let lkeys = Object.getOwnPropertyNames(lhs);
    let rkeys = Object.getOwnPropertyNames(rhs);
    if (lkeys.length !== rkeys.length) return false;
    lkeys = lkeys.sort();
    rkeys = rkeys.sort();
    for (let ii = 0; ii < lkeys.length; ii++) {
      if (lkeys[ii] !== rkeys[ii]) return false;
    }
    for (let ii = 0; ii < lkeys.length; ii++) {
      const key = lkeys[ii]!;
      if (!isDeepEqual((lhs as Record<string, unknown>)[key], (rhs as Record<string, unknown>)[key])) return false;
    }
    return true;
  }
  return false;
}
