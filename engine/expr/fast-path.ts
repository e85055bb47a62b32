/**
 * A synchronous evaluator for the common subset of JSONata, used before the (asynchronous,
 * comparatively slow) reference interpreter.
 *
 * Exact by construction:
 * - `compileFastPath` accepts an AST only when EVERY node is in the subset below, with no
 *   annotation it does not know (predicates, stages, grouping, focus/index binds, keepArray, ...).
 *   Otherwise there is no fast path and the expression runs on jsonata alone.
 * - At run time the compiled function throws `BAIL` whenever it meets a value outside what it
 *   handles exactly: an array from the input or a binding (sequence / flattening / singleton
 *   rules), a function, a non-finite number, an operand jsonata would reject with an error, a
 *   shadowed built-in, an unbound variable, ... The caller then evaluates that input with jsonata.
 *   The fast path therefore never raises an error of its own and never returns a value jsonata
 *   would not return.
 * Each operator below mirrors the function of node_modules/jsonata/jsonata.js (v2.2) named in its
 * comment; those functions are copied as closely as the subset allows.
 *
 * Subset: string / number / true / false / null literals; paths of plain field names starting at
 * the context, at `$`, `$$` or at a bound variable (`$input.data.x`); `$`, `$$` and bound
 * variables; binary `= != < <= > >= + - * / % & in and or`; unary minus; `a ? b : c` (and the
 * `??` / `?:` forms, which the parser turns into conditions); blocks `(a; b)` without bindings;
 * object constructors with distinct literal string keys; array constructors; calls of $exists,
 * $boolean, $not, $string (one argument), $number, $lowercase, $uppercase, $length, $trim,
 * $substring, $substringBefore, $substringAfter, $contains (string token), $abs, $floor, $ceil.
 * No loops, no recursion, no lambdas: an evaluation costs O(expression size × values touched),
 * so it needs neither jsonata's time limit nor its depth limit (expressions nested deeper than
 * MAX_DEPTH get no fast path, well inside jsonata's stack limit).
 */

/** Thrown by a fast path when jsonata must evaluate this input instead. */
export const BAIL: unique symbol = Symbol('jsonata-fast-path-bail');

export type Bindings = Record<string, unknown> | undefined;
/** Evaluates synchronously; throws `BAIL` when it cannot answer exactly. */
export type FastPath = (input: unknown, bindings?: Bindings) => unknown;

/** Deeper ASTs get no fast path (jsonata's own depth limit is EXPRESSION_STACK_LIMIT = 500). */
export const MAX_DEPTH = 64;

type Eval = (input: unknown, bindings: Bindings) => unknown;
interface Node {
  type?: unknown;
  value?: unknown;
  [key: string]: unknown;
}

/** Thrown inside the compiler when a node is outside the subset. */
const UNSUPPORTED = Symbol('unsupported');

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
  try {
    root = compile(ast, 0);
  } catch (err) {
    if (err === UNSUPPORTED) return undefined;
    throw err;
  }
  return (input, bindings) => {
    // A JSON array input is wrapped by jsonata in an outer singleton sequence: not our business.
    checked(input);
    return root(input, bindings);
  };
}

// ---------------------------------------------------------------------------------------------
// Compiler

function compile(n: unknown, depth: number): Eval {
  if (depth > MAX_DEPTH) unsupported();
  if (!n || typeof n !== 'object' || Array.isArray(n)) unsupported();
  const node = n as Node;
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
      return variable(node);
    case 'path':
      return path(node);
    case 'binary':
      return binary(node, depth);
    case 'unary':
      return unary(node, depth);
    case 'condition':
      return condition(node, depth);
    case 'block':
      return block(node, depth);
    case 'function':
      return call(node, depth);
    default:
      return unsupported();
  }
}

/** The node may carry only `type`, `position` and the listed keys (anything else changes its meaning). */
function only(node: Node, keys: readonly string[]): void {
  for (const key of Object.keys(node)) {
    if (key === 'type' || key === 'position' || key === 'value' || keys.includes(key)) continue;
    unsupported();
  }
}

function literal(value: unknown): Eval {
  return () => value;
}

/** evaluateVariable: `$` is the context, `$$` the root input (the same here), others bindings. */
function variable(node: Node): Eval {
  const name = node.value;
  if (typeof name !== 'string') unsupported();
  if (name === '' || name === '$') return (input) => input;
  return (_input, bindings) => {
    // jsonata binds the bindings object's own enumerable keys (utils.keys); an unbound name may
    // be a built-in function, $now, $millis, or nothing: jsonata decides.
    if (bindings === null || typeof bindings !== 'object' || !isEnumerable.call(bindings, name)) bail();
    return checked(bindings[name]);
  };
}

/**
 * evaluatePath / evaluateStep / fn.lookup for a non-array input and plain name steps: each step
 * looks the name up in the previous value (undefined unless it is an object owning the key).
 * Arrays anywhere bail: their flattening and singleton rules are jsonata's.
 */
function path(node: Node): Eval {
  only(node, ['steps']);
  const steps = node.steps;
  if (!Array.isArray(steps) || steps.length === 0) unsupported();
  const first = steps[0] as Node;
  // The first step may be a variable ($, $$, $name); every other step is a plain field name.
  const fromVariable = Boolean(first) && typeof first === 'object' && first.type === 'variable';
  let start: Eval = (input) => input;
  if (fromVariable) {
    only(first, []);
    start = variable(first);
  }
  const names: string[] = [];
  for (let i = fromVariable ? 1 : 0; i < steps.length; i++) {
    const step = steps[i] as Node;
    if (!step || typeof step !== 'object' || step.type !== 'name' || typeof step.value !== 'string') unsupported();
    only(step, []);
    names.push(step.value);
  }
  if (names.length === 0) return start;
  if (names.length === 1) {
    const [a] = names as [string];
    return (input, bindings) => lookup(start(input, bindings), a);
  }
  if (names.length === 2) {
    const [a, b] = names as [string, string];
    return (input, bindings) => lookup(lookup(start(input, bindings), a), b);
  }
  return (input, bindings) => {
    let value = start(input, bindings);
    for (let i = 0; i < names.length && value !== undefined; i++) value = lookup(value, names[i]!);
    return value;
  };
}

/** fn.lookup on a checked (non-array, non-function) value. */
function lookup(value: unknown, key: string): unknown {
  if (value !== null && typeof value === 'object' && hasOwn.call(value, key)) {
    return checked((value as Record<string, unknown>)[key]);
  }
  return undefined;
}

/**
 * A value from the input or a binding: returned as is when the subset handles it exactly, BAIL
 * otherwise (arrays, functions and jsonata function objects, non-finite numbers, bigints, ...).
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

function binary(node: Node, depth: number): Eval {
  only(node, ['lhs', 'rhs']);
  const lhs = compile(node.lhs, depth + 1);
  const rhs = compile(node.rhs, depth + 1);
  switch (node.value) {
    // evaluateBooleanExpression: the right side is evaluated only when needed.
    case 'and':
      return (i, b) => boolize(lhs(i, b)) && boolize(rhs(i, b));
    case 'or':
      return (i, b) => boolize(lhs(i, b)) || boolize(rhs(i, b));
    // evaluateEqualityExpression
    case '=':
      return (i, b) => {
        const l = lhs(i, b);
        const r = rhs(i, b);
        return l === undefined || r === undefined ? false : isDeepEqual(l, r);
      };
    case '!=':
      return (i, b) => {
        const l = lhs(i, b);
        const r = rhs(i, b);
        return l === undefined || r === undefined ? false : !isDeepEqual(l, r);
      };
    // evaluateComparisonExpression
    case '<':
      return (i, b) => compare(lhs(i, b), rhs(i, b), (l, r) => l < r);
    case '<=':
      return (i, b) => compare(lhs(i, b), rhs(i, b), (l, r) => l <= r);
    case '>':
      return (i, b) => compare(lhs(i, b), rhs(i, b), (l, r) => l > r);
    case '>=':
      return (i, b) => compare(lhs(i, b), rhs(i, b), (l, r) => l >= r);
    // evaluateNumericExpression
    case '+':
      return (i, b) => arithmetic(lhs(i, b), rhs(i, b), (l, r) => l + r);
    case '-':
      return (i, b) => arithmetic(lhs(i, b), rhs(i, b), (l, r) => l - r);
    case '*':
      return (i, b) => arithmetic(lhs(i, b), rhs(i, b), (l, r) => l * r);
    case '/':
      return (i, b) => arithmetic(lhs(i, b), rhs(i, b), (l, r) => l / r);
    case '%':
      return (i, b) => arithmetic(lhs(i, b), rhs(i, b), (l, r) => l % r);
    // evaluateStringConcat
    case '&':
      return (i, b) => {
        const l = lhs(i, b);
        const r = rhs(i, b);
        const ls = l === undefined ? '' : string(l) as string;
        const rs = r === undefined ? '' : string(r) as string;
        return ls.concat(rs);
      };
    // evaluateIncludesExpression
    case 'in':
      return (i, b) => {
        const l = lhs(i, b);
        const r = rhs(i, b);
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

function unary(node: Node, depth: number): Eval {
  switch (node.value) {
    case '-': {
      // evaluateUnary '-'
      only(node, ['expression']);
      const expression = compile(node.expression, depth + 1);
      return (i, b) => {
        const v = expression(i, b);
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
      const compiled = items.map((item) => compile(item, depth + 1));
      const nested = items.map((item) => (item as Node).value === '[');
      return (i, b) => {
        const result: unknown[] = [];
        for (let k = 0; k < compiled.length; k++) {
          const value = compiled[k]!(i, b);
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
        values.push(compile(pair[1], depth + 1));
      }
      return (i, b) => {
        const result: Record<string, unknown> = Object.create(null);
        for (let k = 0; k < keys.length; k++) {
          const value = values[k]!(i, b);
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
function condition(node: Node, depth: number): Eval {
  only(node, ['condition', 'then', 'else']);
  const test = compile(node.condition, depth + 1);
  const then = compile(node.then, depth + 1);
  if (node.else === undefined) return (i, b) => (boolean(test(i, b)) ? then(i, b) : undefined);
  const otherwise = compile(node.else, depth + 1);
  return (i, b) => (boolean(test(i, b)) ? then(i, b) : otherwise(i, b));
}

/** evaluateBlock: every expression in turn, the last one's value (no `:=` in the subset). */
function block(node: Node, depth: number): Eval {
  only(node, ['expressions']);
  const items = node.expressions;
  if (!Array.isArray(items)) unsupported();
  const compiled = items.map((item) => compile(item, depth + 1));
  if (compiled.length === 0) return () => undefined;
  if (compiled.length === 1) return compiled[0]!;
  return (i, b) => {
    let result: unknown;
    for (const c of compiled) result = c(i, b);
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
function call(node: Node, depth: number): Eval {
  // `name` is copied by the parser onto function nodes and never read by the evaluator.
  only(node, ['procedure', 'arguments', 'name']);
  if (node.value !== '(' || node.name !== undefined) unsupported();
  const procedure = node.procedure as Node;
  if (!procedure || typeof procedure !== 'object' || procedure.type !== 'variable' || typeof procedure.value !== 'string') unsupported();
  only(procedure, []);
  const name = procedure.value;
  if (!hasOwn.call(BUILTINS, name)) unsupported();
  const fn = BUILTINS[name]!;
  const argNodes = node.arguments;
  if (!Array.isArray(argNodes) || !fn.arity.includes(argNodes.length)) unsupported();
  const args = argNodes.map((a) => compile(a, depth + 1));
  const allowed = fn.args;
  return (i, b) => {
    // A binding of the same name replaces the built-in (the bindings frame is searched first).
    if (b !== null && typeof b === 'object' && hasOwn.call(b, name)) bail();
    const values = args.map((a) => a(i, b));
    for (let k = 0; k < values.length; k++) {
      if (!allowed[k]!.includes(getSymbol(values[k]))) bail(); // T0410
    }
    const result = fn.impl(...values);
    if (typeof result === 'number' && !Number.isFinite(result)) bail();
    return result;
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
