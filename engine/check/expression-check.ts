import jsonata from 'jsonata';
import { ANY, LeafShape, NEVER, elementOf, isAny, isNever, ofKinds, union, type Kind, type Shape } from './shape.ts';

/** A problem an expression check found; `offset` is 0-based within the expression. */
export interface ExpressionFinding {
  severity: 'error' | 'warning';
  offset: number;
  message: string;
}

/** What an expression is checked against. */
export interface ExpressionScope {
  /** The shape of `$` (the expression's input). */
  input: Shape;
  /** Variables the engine binds (`$input` in `when:` and sink expressions). */
  variables?: Record<string, Shape>;
  /** What `$` is called in messages: "the event", "the transform's output". */
  inputName: string;
}

/** The result of checking one expression. */
export interface ExpressionCheck {
  findings: ExpressionFinding[];
  /** The shape of the expression's result, as far as it can be told (ANY where it cannot). */
  output: Shape;
}

interface Node {
  type?: string;
  value?: unknown;
  position?: number;
  [key: string]: unknown;
}

type Env = ReadonlyMap<string, Shape>;

/** Functions whose arguments must be strings (argument indexes), and what they fail with. */
const STRING_ARGS: Record<string, number[]> = {
  uppercase: [0], lowercase: [0], trim: [0], substring: [0], substringBefore: [0], substringAfter: [0],
  length: [0], contains: [0], split: [0], match: [0], replace: [0], pad: [0], base64encode: [0],
  base64decode: [0], encodeUrl: [0], encodeUrlComponent: [0], decodeUrl: [0], decodeUrlComponent: [0],
  toMillis: [0],
};
/** Functions whose arguments must be numbers. */
const NUMBER_ARGS: Record<string, number[]> = {
  abs: [0], floor: [0], ceil: [0], round: [0], sqrt: [0], power: [0, 1], formatNumber: [0],
  formatBase: [0], formatInteger: [0], fromMillis: [0],
};
/** Functions whose argument is an array (or one value) of numbers. */
const NUMBER_ITEMS_ARGS = new Set(['sum', 'max', 'min', 'average']);

const RESULT_KINDS: Record<string, Kind> = {
  string: 'string', uppercase: 'string', lowercase: 'string', trim: 'string', substring: 'string',
  substringBefore: 'string', substringAfter: 'string', join: 'string', pad: 'string', replace: 'string',
  formatNumber: 'string', formatBase: 'string', formatInteger: 'string', fromMillis: 'string', now: 'string',
  base64encode: 'string', base64decode: 'string', encodeUrl: 'string', encodeUrlComponent: 'string',
  decodeUrl: 'string', decodeUrlComponent: 'string', type: 'string',
  number: 'number', sum: 'number', count: 'number', max: 'number', min: 'number', average: 'number',
  round: 'number', floor: 'number', ceil: 'number', abs: 'number', sqrt: 'number', power: 'number',
  length: 'number', millis: 'number', toMillis: 'number', random: 'number', parseInteger: 'number',
  exists: 'boolean', boolean: 'boolean', not: 'boolean', contains: 'boolean',
};

const ARITHMETIC = new Set(['+', '-', '*', '/', '%']);
const COMPARISON = new Set(['=', '!=', '<', '<=', '>', '>=', 'in', 'and', 'or']);

/**
 * Checks one JSONata expression against the shape of its input: every field path that can never
 * exist is an error at its token (with "did you mean" from the names the schema declares there),
 * and an arithmetic operator or a string or number function applied to a field whose type can
 * never fit is a warning. Follows JSONata's semantics where it can tell (paths flatten arrays,
 * `$` and `$$`, variables bound with `:=`, predicates in the items' context) and claims nothing
 * where it cannot (lambda parameters, `*`, `**`, `%`, constructed objects it cannot infer).
 * Never throws on an expression jsonata parses; an expression it does not parse yields no finding.
 */
export function checkExpression(source: string, scope: ExpressionScope): ExpressionCheck {
  let ast: Node;
  try {
    ast = jsonata(source).ast() as unknown as Node;
  } catch {
    return { findings: [], output: ANY };
  }
  const walker = new Walker(source, scope);
  const env = new Map(Object.entries(scope.variables ?? {}));
  let output: Shape = ANY;
  try {
    output = walker.walk(ast, scope.input, env, 0);
  } catch {
    // A shape of absurd depth (or a bug here) must never stop a pipeline from loading: a check
    // that cannot finish claims nothing.
    return { findings: [], output: ANY };
  }
  // `a ?? b` is parsed into a node that holds `a` twice: one finding per token and message.
  const seen = new Set<string>();
  const findings = walker.findings.filter((f) => {
    const key = `${f.offset}\u0000${f.message}`;
    return !seen.has(key) && Boolean(seen.add(key));
  });
  return { findings, output };
}

class Walker {
  readonly findings: ExpressionFinding[] = [];

  constructor(private readonly source: string, private readonly scope: ExpressionScope) {}

  walk(node: Node | undefined, ctx: Shape, env: Env, depth: number): Shape {
    if (!node || typeof node !== 'object' || depth > 200) return ANY;
    const next = (n: unknown, c: Shape = ctx, e: Env = env) => this.walk(n as Node, c, e, depth + 1);
    switch (node.type) {
      case 'path':
        return this.path(node, ctx, env, depth);
      case 'name':
        return this.step(node, ctx, [], ctx);
      case 'variable':
        return this.variable(node, ctx, env);
      case 'string': return ofKinds('string');
      case 'number': return ofKinds('number');
      case 'value': return node.value === null ? ofKinds('null') : ofKinds('boolean');
      case 'regex': return ANY;
      case 'binary': return this.binary(node, ctx, env, depth);
      case 'unary': return this.unary(node, ctx, env, depth);
      case 'condition': {
        next(node.condition);
        // A branch may bind a variable (`c ? $x := a : ...`): afterwards it is either shape.
        const thenEnv = new Map(env);
        const elseEnv = new Map(env);
        const out = union([next(node.then, ctx, thenEnv), node.else === undefined ? NEVER : next(node.else, ctx, elseEnv)]);
        if (env instanceof Map) {
          for (const key of new Set([...thenEnv.keys(), ...elseEnv.keys()])) {
            const a = thenEnv.get(key) ?? ANY;
            const b = elseEnv.get(key) ?? ANY;
            if (a !== env.get(key) || b !== env.get(key)) env.set(key, union([a, b]));
          }
        }
        return out;
      }
      case 'block': {
        const scoped = new Map(env);
        let last: Shape = ANY;
        for (const e of (node.expressions as Node[] | undefined) ?? []) last = next(e, ctx, scoped);
        return last;
      }
      case 'bind': {
        const value = next(node.rhs);
        const lhs = node.lhs as Node | undefined;
        if (lhs?.type === 'variable' && env instanceof Map) env.set(String(lhs.value), value);
        return value;
      }
      case 'function':
      case 'partial':
        return this.call(node, ctx, env, depth, []);
      case 'apply': {
        const lhs = next(node.lhs);
        const rhs = node.rhs as Node | undefined;
        // `x ~> $f(a)` is `$f(x, a)`.
        if (rhs?.type === 'function') return this.call(rhs, ctx, env, depth, [{ shape: lhs, node: node.lhs as Node }]);
        next(rhs);
        return ANY;
      }
      case 'lambda': {
        // Parameters are unknown, and so is the context a lambda is applied in: claim nothing
        // about either, but still look inside for `$$` paths.
        // A closure sees its frame's variables as they are when it is called, which may be
        // after they were bound again: inside it, every variable is unknown.
        const scoped = new Map([...env.keys()].map((k): [string, Shape] => [k, ANY]));
        for (const a of (node.arguments as Node[] | undefined) ?? []) scoped.set(String(a.value), ANY);
        next(node.body, ANY, scoped);
        return ANY;
      }
      case 'transform':
        // `| pattern | update |`: the updated copy's shape is not inferred.
        next(node.pattern, ANY);
        return ANY;
      default:
        return ANY;
    }
  }

  private variable(node: Node, ctx: Shape, env: Env): Shape {
    if (node.value === '') return ctx;
    if (node.value === '$') return this.scope.input;
    return env.get(String(node.value)) ?? ANY;
  }

  private path(node: Node, ctx: Shape, env: Env, depth: number): Shape {
    const steps = (node.steps as Node[] | undefined) ?? [];
    const group = node.group as { lhs?: [Node, Node][]; position?: number } | undefined;
    let current = ctx;
    const trail: string[] = [];
    let lost = false;
    for (let i = 0; i < steps.length; i++) {
      const step = steps[i]!;
      // Steps after a grouping `{...}` run over the grouped objects: not inferred.
      if (group && (step.position ?? 0) > (group.position ?? Infinity)) lost = true;
      if (lost) {
        this.walkStages(step, ANY, env, depth);
        continue;
      }
      const from = i === 0 ? current : elementOf(current);
      if (step.type === 'name') {
        current = this.step(step, current, trail, ctx);
        if (isNever(current)) lost = true;
        else trail.push(String(step.value));
      } else if (step.type === 'wildcard' || step.type === 'descendant' || step.type === 'parent') {
        current = ANY;
      } else if (step.type === 'variable' && i === 0) {
        current = this.variable(step, ctx, env);
        trail.push(step.value === '' ? '$' : step.value === '$' ? '$$' : `$${String(step.value)}`);
      } else if (step.type === 'sort') {
        for (const t of (step.terms as { expression?: Node }[] | undefined) ?? []) this.walk(t.expression, elementOf(current), env, depth + 1);
      } else {
        current = this.walk(step, from, env, depth + 1);
        trail.push('(…)');
      }
      this.walkStages(step, current, env, depth);
      // `@$x` binds without moving the context; `#$i` and `%` need the tuple stream: not followed.
      if (step.focus !== undefined || step.tuple || step.ancestor) {
        if (typeof step.focus === 'string' && env instanceof Map) env.set(step.focus, elementOf(current));
        if (typeof step.index === 'string' && env instanceof Map) env.set(step.index, ofKinds('number'));
        lost = true;
        current = ANY;
      }
    }
    if (group) {
      const itemCtx = lost ? ANY : elementOf(current);
      for (const [k, v] of group.lhs ?? []) {
        this.walk(k, itemCtx, env, depth + 1);
        this.walk(v, itemCtx, env, depth + 1);
      }
      return ANY;
    }
    return lost ? ANY : current;
  }

  /** Predicates `[...]` of a step, each evaluated in the context of the step's items. */
  private walkStages(step: Node, current: Shape, env: Env, depth: number): void {
    const stages = [...((step.stages as Node[] | undefined) ?? []), ...((step.predicate as Node[] | undefined) ?? [])];
    for (const stage of stages) {
      if (stage.type === 'filter') this.walk(stage.expr as Node, elementOf(current), env, depth + 1);
      else if (stage.type === 'index' && typeof stage.value === 'string' && env instanceof Map) env.set(stage.value, ofKinds('number'));
    }
  }

  /** One field step from `from`; reports it when it can never exist. */
  private step(node: Node, from: Shape, trail: string[], _ctx: Shape): Shape {
    const name = String(node.value);
    if (isAny(from)) return ANY;
    const next = from.property(name);
    if (!isNever(next)) return next;
    this.findings.push({ severity: 'error', offset: this.nameStart(node), message: this.neverMessage(name, from, trail) });
    return NEVER;
  }

  private neverMessage(name: string, from: Shape, trail: string[]): string {
    const where = trail.length ? `'${trail.join('.')}'` : this.scope.inputName;
    const kinds = elementOf(from).kinds();
    if (kinds && !kinds.has('object')) {
      return `field '${name}' can never exist: ${where} is ${describeKinds(kinds)}, which has no fields`;
    }
    const declared = elementOf(from).names().declared;
    const suggestion = didYouMean(name, declared);
    const known = declared.length ? ` (it allows ${declared.slice(0, 8).map((d) => `'${d}'`).join(', ')}${declared.length > 8 ? ', …' : ''})` : '';
    return `field '${name}' can never exist in ${where}${known}${suggestion ? `; did you mean '${suggestion}'?` : ''}`;
  }

  private binary(node: Node, ctx: Shape, env: Env, depth: number): Shape {
    const op = String(node.value);
    const lhs = this.walk(node.lhs as Node, ctx, env, depth + 1);
    const rhs = this.walk(node.rhs as Node, ctx, env, depth + 1);
    if (ARITHMETIC.has(op)) {
      this.expectKind(node.lhs as Node, lhs, 'number', `'${op}' needs numbers`);
      this.expectKind(node.rhs as Node, rhs, 'number', `'${op}' needs numbers`);
      return ofKinds('number');
    }
    if (op === '&') return ofKinds('string');
    if (COMPARISON.has(op)) return ofKinds('boolean');
    if (op === '..') return new LeafShape(new Set(['array']), { items: () => ofKinds('number') });
    return ANY;
  }

  private unary(node: Node, ctx: Shape, env: Env, depth: number): Shape {
    if (node.value === '-') {
      const operand = this.walk(node.expression as Node, ctx, env, depth + 1);
      this.expectKind(node.expression as Node, operand, 'number', `'-' needs a number`);
      return ofKinds('number');
    }
    if (node.value === '[') {
      const items = ((node.expressions as Node[] | undefined) ?? []).map((e) => this.walk(e, ctx, env, depth + 1));
      return new LeafShape(new Set(['array']), { items: () => union(items.map(elementOf)) });
    }
    if (node.value === '{') {
      const props = new Map<string, () => Shape>();
      let closed = true;
      for (const pair of (node.lhs as [Node, Node][] | undefined) ?? []) {
        const [k, v] = pair;
        this.walk(k, ctx, env, depth + 1);
        const value = this.walk(v, ctx, env, depth + 1);
        if (k?.type === 'string' && typeof k.value === 'string') {
          const before = props.get(k.value);
          props.set(k.value, before ? () => union([before(), value]) : () => value);
        } else closed = false;
      }
      return new LeafShape(new Set(['object']), { props, extra: closed ? false : undefined });
    }
    return ANY;
  }

  private call(node: Node, ctx: Shape, env: Env, depth: number, piped: { shape: Shape; node: Node }[]): Shape {
    const proc = node.procedure as Node | undefined;
    const args = [...piped, ...((node.arguments as Node[] | undefined) ?? []).map((a) => ({
      shape: a?.type === 'operator' ? ANY : this.walk(a, ctx, env, depth + 1), node: a,
    }))];
    if (proc?.type !== 'variable') {
      this.walk(proc, ctx, env, depth + 1);
      return ANY;
    }
    const name = String(proc.value);
    // A user's variable of that name shadows the built-in function.
    if (env.has(name)) return ANY;
    for (const i of STRING_ARGS[name] ?? []) {
      const a = args[i];
      if (a) this.expectKind(a.node, a.shape, 'string', `$${name} needs a string`);
    }
    for (const i of NUMBER_ARGS[name] ?? []) {
      const a = args[i];
      if (a) this.expectKind(a.node, a.shape, 'number', `$${name} needs a number`);
    }
    if (NUMBER_ITEMS_ARGS.has(name) && args[0]) this.expectKind(args[0].node, elementOf(args[0].shape), 'number', `$${name} needs numbers`);
    const kind = node.type === 'function' ? RESULT_KINDS[name] : undefined;
    return kind ? ofKinds(kind) : ANY;
  }

  /** A warning when a value can never be of `kind` (and is known: not anything, not absent). */
  private expectKind(node: Node | undefined, shape: Shape, kind: Kind, what: string): void {
    const kinds = shape.kinds();
    if (!kinds || kinds.size === 0 || kinds.has(kind) || kinds.has('array')) return;
    // Only a field read from the data is worth a hint; a literal is the author's plain intent.
    const path = node ? this.pathText(node) : undefined;
    if (!path || !node) return;
    this.findings.push({ severity: 'warning', offset: this.start(node), message: `${what}, but '${path}' is ${describeKinds(kinds)} (a run-time error on every event that has it)` });
  }

  /** The text of a plain field path (`data.total`), or undefined for anything else. */
  private pathText(node: Node): string | undefined {
    if (node.type !== 'path') return undefined;
    const steps = (node.steps as Node[] | undefined) ?? [];
    if (!steps.length || steps.some((s) => s.type !== 'name' || s.stages || s.predicate || s.focus !== undefined || s.tuple)) return undefined;
    return steps.map((s) => String(s.value)).join('.');
  }

  /** Where a node's text starts (best effort: jsonata records where a token ends). */
  private start(node: Node): number {
    if (node.type === 'path') {
      const first = (node.steps as Node[] | undefined)?.[0];
      if (first) return this.start(first);
    }
    if (node.type === 'name') return this.nameStart(node);
    if (node.type === 'binary') return this.start(node.lhs as Node);
    const pos = typeof node.position === 'number' ? node.position : 0;
    const len = typeof node.value === 'string' || typeof node.value === 'number' ? String(node.value).length : 1;
    return clamp(pos - len, 0, this.source.length);
  }

  /** Where a name token starts; a quoted name (`` `a b` ``, `"a b"`) starts at its quote. */
  private nameStart(node: Node): number {
    const name = String(node.value);
    const end = typeof node.position === 'number' ? node.position : 0;
    if (this.source.slice(end - name.length, end) === name) return clamp(end - name.length, 0, this.source.length);
    return clamp(end - name.length - 2, 0, this.source.length);
  }
}

function clamp(n: number, lo: number, hi: number): number {
  return Math.max(lo, Math.min(hi, n));
}

function describeKinds(kinds: ReadonlySet<Kind>): string {
  const names = [...kinds].map((k) => (k === 'array' || k === 'object' ? `an ${k}` : k === 'null' ? 'null' : `a ${k}`));
  return names.length === 1 ? names[0]! : `${names.slice(0, -1).join(', ')} or ${names[names.length - 1]}`;
}

/** The declared name closest to `name`, when it is close enough to be a likely typo. */
export function didYouMean(name: string, candidates: readonly string[]): string | undefined {
  let best: string | undefined;
  let bestDistance = Infinity;
  for (const c of candidates) {
    const d = c.toLowerCase() === name.toLowerCase() ? 0.5 : editDistance(name, c);
    if (d < bestDistance) {
      best = c;
      bestDistance = d;
    }
  }
  const limit = Math.max(1, Math.floor(name.length / 3));
  return best !== undefined && bestDistance <= limit ? best : undefined;
}

/** Damerau–Levenshtein (optimal string alignment) distance. */
function editDistance(a: string, b: string): number {
  const d: number[][] = Array.from({ length: a.length + 1 }, (_, i) => [i, ...Array<number>(b.length).fill(0)]);
  for (let j = 0; j <= b.length; j++) d[0]![j] = j;
  for (let i = 1; i <= a.length; i++) {
    for (let j = 1; j <= b.length; j++) {
      const cost = a[i - 1] === b[j - 1] ? 0 : 1;
      d[i]![j] = Math.min(d[i - 1]![j]! + 1, d[i]![j - 1]! + 1, d[i - 1]![j - 1]! + cost);
      if (i > 1 && j > 1 && a[i - 1] === b[j - 2] && a[i - 2] === b[j - 1]) d[i]![j] = Math.min(d[i]![j]!, d[i - 2]![j - 2]! + 1);
    }
  }
  return d[a.length]![b.length]!;
}
