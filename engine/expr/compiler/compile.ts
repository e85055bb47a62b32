/**
 * The compiler's entry: a JSONata AST (from jsonata's parser, `jsonata(src).ast()`) in, a
 * synchronous evaluator out. The rooms:
 *
 * - closures.ts: AST nodes → JavaScript closures (paths, predicates, operators, conditions,
 *   blocks, constructors, function calls), composed at compile time;
 * - evaluator.js: a synchronous port of jsonata 2.2's evaluator, for the nodes closures.ts leaves
 *   to it (lambdas, order-by, tuple bindings, ranges, regex literals, transforms) and for
 *   calling functions; frames, sequences and errors are shared with the closures;
 * - functions.js, datetime.js, signature.js, utils.js: jsonata 2.2's function library, made
 *   synchronous (MIT, notices kept);
 * - limits.ts: the time budget (also counted inside native loops) and the string-size bound;
 * - regex.ts: the one place regexes are built (linear-time fallback).
 */
import { compileTree, type BranchProbe } from './closures.ts';
import { prepare } from './evaluator.js';

/** Limits of one evaluation (SPEC §4); a missing or 0 limit is no limit. */
export interface EvaluationLimits {
  /** Milliseconds one evaluation may run (error D1012). */
  timeout?: number;
  /** Deepest nesting of evaluation steps, recursion included (error D1011). */
  stack?: number;
  /** Longest sequence one evaluation may build (error D2015). */
  sequence?: number;
}

/** A compiled expression: evaluates synchronously, throws jsonata's error objects (`{ code, position, message }`). */
export interface CompiledAst {
  evaluate(input: unknown, bindings?: Record<string, unknown>): unknown;
}

interface AstNode {
  type?: string;
  value?: unknown;
  [key: string]: unknown;
}

/**
 * Whether compiled code evaluates this AST exactly as jsonata does. One construct is not: a `:=`
 * binding written directly as an item of an array constructor or as a value of a group-by object
 * (`[$x := 1, $x]`, `{"a": $f := …, "b": $f()}`), outside any block or lambda. jsonata evaluates
 * those items concurrently (`Promise.all`), so whether a later item sees the binding depends on
 * its promise scheduling; compiled code evaluates in order. Such expressions stay on the
 * interpreter.
 */
export function isCompilable(ast: unknown): boolean {
  return !hasConcurrentBinding(ast as AstNode, false);
}

/** `inConcurrent`: under an array item / group value with no block or lambda in between. */
function hasConcurrentBinding(node: unknown, inConcurrent: boolean): boolean {
  if (Array.isArray(node)) return node.some((n) => hasConcurrentBinding(n, inConcurrent));
  if (!node || typeof node !== 'object' || node instanceof RegExp) return false;
  const n = node as AstNode;
  if (n.type === 'bind' && inConcurrent) return true;
  if (n.type === 'block' || n.type === 'lambda') inConcurrent = false;
  if (n.type === 'unary' && n.value === '[') {
    if ((n.expressions as unknown[]).some((item) => hasConcurrentBinding(item, true))) return true;
  }
  if (n.type === 'unary' && n.value === '{' && hasConcurrentBinding(n.lhs, true)) return true;
  if (n.group && hasConcurrentBinding((n.group as AstNode).lhs, true)) return true;
  for (const [key, child] of Object.entries(n)) {
    if (key === 'group' || (n.type === 'unary' && (key === 'expressions' || key === 'lhs'))) continue;
    if (child && typeof child === 'object' && hasConcurrentBinding(child, inConcurrent)) return true;
  }
  return false;
}

/**
 * Compiles an AST. Its nodes get their compiled closures attached (`compiled`), so the AST
 * should be the compiler's own; jsonata's interpreter ignores them. A `probe` records the branches
 * conditional nodes take (closures.ts, BranchProbe).
 */
export function compileAst(ast: unknown, limits: EvaluationLimits = {}, probe?: BranchProbe): CompiledAst {
  compileTree(ast, probe);
  return prepare(ast, limits) as CompiledAst;
}
