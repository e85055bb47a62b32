import jsonata from 'jsonata';
import type { CompiledPipeline, SinkSpec } from '../config/load-pipeline.ts';
import { SourceDocument, type DocPath } from '../config/source-document.ts';
import { displayPath } from '../errors.ts';
import { compileExpression, type BranchProbe, type CompiledExpression } from '../expr/compile-expression.ts';
import type { Outcome } from '../runner/pipeline-runner.ts';
import { isTruthy } from '../runner/truthy.ts';

/**
 * `synapse test --coverage`: which outcomes a pipeline's test cases reach (sunk per sink,
 * filtered, dropped, DLQ per stage, each `when:` true and false) and which branches of its
 * expressions' conditions (`a ? b : c`, `and`, `or`) no case took.
 *
 * The engine's own pipelines are never touched: the test run is given a copy of the pipeline
 * whose expressions are compiled again with a branch probe (closures.ts, BranchProbe).
 */

/** One outcome a pipeline can have in a test run, and how many events reached it. */
export interface OutcomeCoverage {
  /** `sunk:ID`, `filtered:filter`, `filtered:when`, `dropped`, `dlq:STAGE`, `dlq:sink:ID`, `when:ID:true|false`. */
  key: string;
  label: string;
  count: number;
}

/** One branch of one conditional node of an expression. */
export interface BranchCoverage {
  /** `filter`, `transform`, `sink.when`, `sinks.1.when`. */
  expression: string;
  /** Where the condition starts in the pipeline file. */
  file: string;
  line: number;
  col: number;
  /** `?:`, `and`, `or`. */
  kind: string;
  /** The condition's text up to its operator (`data.error ?`), shortened. */
  text: string;
  /** `then`, `else`; for `and`/`or`, `right` (right side evaluated) or `short` (the left decided). */
  branch: string;
  count: number;
  /** False when the expression runs on the interpreter, which reports no branches. */
  measured: boolean;
}

/** Everything one pipeline's test cases reached. */
export interface PipelineCoverage {
  pipeline: string;
  file: string;
  /** Whether any test file exercised the pipeline. */
  tested: boolean;
  outcomes: OutcomeCoverage[];
  branches: BranchCoverage[];
}

interface AstNode {
  type?: string;
  value?: unknown;
  position?: number;
  [key: string]: unknown;
}

/** A pipeline made to record what its test cases reach. */
export class CoveredPipeline {
  /** The copy to run test cases through: its expressions are probed. */
  readonly pipeline: CompiledPipeline;
  private readonly outcomes = new Map<string, OutcomeCoverage>();
  private readonly branches: BranchCoverage[] = [];
  private tested = false;

  constructor(readonly original: CompiledPipeline) {
    const p = original;
    const doc = SourceDocument.parse(p.file, p.text);
    const add = (key: string, label: string) => this.outcomes.set(key, { key, label, count: 0 });
    for (const s of p.sinks) add(`sunk:${s.id}`, `sunk at ${s.id}`);
    if (p.filter) add('filtered:filter', 'filtered by the filter');
    if (p.sinks.length && p.sinks.every((s) => s.when)) add('filtered:when', "filtered: no sink's when held");
    if (p.validate?.onInvalid === 'drop') add('dropped', 'dropped (invalid, on_invalid: drop)');
    if (p.source.kind === 'stream') add('dlq:decode', 'dlq at decode');
    if (p.validate?.onInvalid === 'dlq') add('dlq:validate', 'dlq at validate');
    if (p.filter) add('dlq:filter', 'dlq at filter');
    if (p.transform) add('dlq:transform', 'dlq at transform');
    for (const s of p.sinks) {
      if (!s.when) continue;
      add(`when:${s.id}:true`, `when of ${s.id}: true`);
      add(`when:${s.id}:false`, `when of ${s.id}: false`);
      // Sinks are replaced by recorders in tests: only a failing `when:` dead-letters there.
      add(`dlq:sink:${s.id}`, `dlq at sink ${s.id} (its when failed)`);
    }

    const fromFile = doc.value as { sink?: unknown } | undefined;
    const sinkPath = (i: number): DocPath => (fromFile && typeof fromFile === 'object' && 'sink' in fromFile && fromFile.sink ? ['sink', 'when'] : ['sinks', i, 'when']);
    const probed = (expr: CompiledExpression | undefined, path: DocPath) => (expr ? this.probe(expr, path, doc, p.expressionTimeoutMs) : undefined);
    const sinks: SinkSpec[] = p.sinks.map((s, i) => {
      const when = probed(s.when, sinkPath(i));
      return when ? { ...s, when: this.recordWhen(s.id, when) } : s;
    });
    this.pipeline = { ...p, filter: probed(p.filter, ['filter']), transform: probed(p.transform, ['transform']), sinks };
  }

  /** Counts the outcomes of one test case's run. */
  record(outcomes: readonly Outcome[]): void {
    this.tested = true;
    for (const o of outcomes) {
      if (o.kind === 'sunk') for (const id of o.sinks) this.hit(`sunk:${id}`);
      else if (o.kind === 'filtered') this.hit('value' in o ? 'filtered:when' : 'filtered:filter');
      else if (o.kind === 'dropped') this.hit('dropped');
      else if (o.kind === 'dlq') this.hit(o.stage === 'sink' && o.sink ? `dlq:sink:${o.sink}` : `dlq:${o.stage}`);
    }
  }

  /** What the test cases reached, and what they did not. */
  result(): PipelineCoverage {
    return {
      pipeline: this.original.name,
      file: this.original.file,
      tested: this.tested,
      outcomes: [...this.outcomes.values()].map((o) => ({ ...o })),
      branches: this.branches.map((b) => ({ ...b })).sort((a, b) => a.line - b.line || a.col - b.col || a.branch.localeCompare(b.branch)),
    };
  }

  private hit(key: string): void {
    const o = this.outcomes.get(key);
    if (o) o.count++;
  }

  /** The expression compiled again with a probe; every conditional node of it is listed. */
  private probe(expr: CompiledExpression, path: DocPath, doc: SourceDocument, timeoutMs: number): CompiledExpression {
    const source = expr.source;
    const name = path.join('.');
    const registered = new Set<string>();
    const entry = (node: AstNode, branch: string, measured: boolean): BranchCoverage => {
      const start = conditionStart(node, source);
      const loc = doc.locateInScalar(path, start);
      const kind = node.type === 'condition' ? '?:' : String(node.value);
      const opEnd = typeof node.position === 'number' ? node.position : start;
      return { expression: name, file: loc.file, line: loc.line, col: loc.col, kind, text: shorten(source.slice(start, opEnd)), branch, count: 0, measured };
    };
    const probe: BranchProbe = {
      register: (node, branches) => {
        registered.add(nodeKey(node));
        const entries = branches.map((b) => entry(node as AstNode, b, true));
        this.branches.push(...entries);
        return (i) => {
          entries[i]!.count++;
        };
      },
    };
    const compiled = compileExpression(source, { timeoutMs, probe, condition: expr.condition });
    // Conditional nodes the compiler left to the interpreter report nothing: listed as unmeasured.
    for (const node of conditionalNodes(jsonata(source).ast() as unknown as AstNode)) {
      if (registered.has(nodeKey(node))) continue;
      const names = node.type === 'condition' ? ['then', 'else'] : ['right', 'short'];
      this.branches.push(...names.map((b) => entry(node, b, false)));
    }
    return compiled;
  }

  /** A `when:` that also counts whether it held. */
  private recordWhen(id: string, when: CompiledExpression): CompiledExpression {
    const count = (value: unknown) => {
      this.hit(`when:${id}:${isTruthy(value)}`);
      return value;
    };
    return {
      source: when.source,
      sync: when.sync,
      condition: when.condition,
      evaluate: (input, bindings) => {
        const r = when.evaluate(input, bindings);
        return when.sync ? count(r) : (r as Promise<unknown>).then(count);
      },
    };
  }
}

function nodeKey(node: { type?: string; value?: unknown; position?: number }): string {
  return `${node.type}:${String(node.value)}:${node.position}`;
}

/** Every condition and `and`/`or` of an AST. */
function conditionalNodes(ast: AstNode): AstNode[] {
  const out: AstNode[] = [];
  const walk = (node: unknown, depth: number): void => {
    if (depth > 300 || !node || typeof node !== 'object' || node instanceof RegExp) return;
    if (Array.isArray(node)) {
      for (const c of node) walk(c, depth + 1);
      return;
    }
    const n = node as AstNode;
    if (n.type === 'condition' || (n.type === 'binary' && (n.value === 'and' || n.value === 'or'))) out.push(n);
    for (const [key, child] of Object.entries(n)) {
      if (key !== 'compiled' && key !== 'leaf' && key !== 'slot' && key !== 'ancestor') walk(child, depth + 1);
    }
  };
  walk(ast, 0);
  return out;
}

/**
 * Where a conditional node's text starts: the leftmost token of its condition (of its left side
 * for `and`/`or`). jsonata records where each token ends; the start is worked out per token kind.
 */
function conditionStart(node: AstNode, source: string): number {
  const left = (node.type === 'condition' ? node.condition : node.lhs) as AstNode | undefined;
  let best = typeof node.position === 'number' ? node.position - 1 : 0;
  const walk = (n: unknown, depth: number): void => {
    if (depth > 300 || !n || typeof n !== 'object' || n instanceof RegExp) return;
    if (Array.isArray(n)) {
      for (const c of n) walk(c, depth + 1);
      return;
    }
    const a = n as AstNode;
    if (typeof a.position === 'number') best = Math.min(best, tokenStart(a, source));
    for (const [key, child] of Object.entries(a)) {
      if (key !== 'compiled' && key !== 'leaf' && key !== 'slot' && key !== 'ancestor' && key !== 'value') walk(child, depth + 1);
    }
  };
  walk(left, 0);
  return Math.max(0, best);
}

function tokenStart(n: AstNode, source: string): number {
  const end = n.position!;
  switch (n.type) {
    case 'string': {
      // The literal's quote: scan back over escapes to the opening one.
      const quote = source[end - 1];
      for (let i = end - 2; i >= 0; i--) if (source[i] === quote && source[i - 1] !== '\\') return i;
      return end - String(n.value).length - 2;
    }
    case 'name': {
      const name = String(n.value);
      return source.slice(end - name.length, end) === name ? end - name.length : end - name.length - 2;
    }
    case 'variable':
      return end - String(n.value).length - 1;
    case 'number': {
      let i = end - 1;
      while (i > 0 && /[0-9.eE+-]/.test(source[i - 1]!)) i--;
      return i;
    }
    case 'value':
    case 'binary':
    case 'condition':
      return end - String(n.value).length;
    default:
      return end - 1;
  }
}

/** An expression excerpt on one line, at most 40 characters. */
function shorten(text: string): string {
  const one = text.replace(/\s+/g, ' ').trim();
  return one.length <= 40 ? one : `${one.slice(0, 18)}…${one.slice(-21)}`;
}

/** Prints coverage as `synapse test --coverage` shows it. */
export function formatCoverage(results: readonly PipelineCoverage[]): string {
  const out = ['coverage: what the test cases reach, per pipeline'];
  for (const r of results) {
    out.push(`${displayPath(r.file)} (pipeline ${r.pipeline})`);
    if (!r.tested) {
      out.push('  no test file: nothing reached');
      continue;
    }
    const reached = r.outcomes.filter((o) => o.count > 0);
    const missed = r.outcomes.filter((o) => o.count === 0);
    out.push(`  outcomes: ${reached.length} of ${r.outcomes.length} reached`);
    for (const o of reached) out.push(`    ✓ ${o.label} (${o.count} event${o.count === 1 ? '' : 's'})`);
    for (const o of missed) out.push(`    ✗ ${o.label}`);
    const measured = r.branches.filter((b) => b.measured);
    const taken = measured.filter((b) => b.count > 0);
    if (!r.branches.length) {
      out.push('  branches: none (no ?:, and or or in its expressions)');
    } else {
      const notTaken = measured.filter((b) => b.count === 0);
      out.push(`  branches: ${taken.length} of ${measured.length} taken${notTaken.length ? '; not taken:' : ''}`);
      for (const b of notTaken) out.push(`    ${displayPath(b.file)}:${b.line}:${b.col} ${b.expression}: ${b.text} → ${branchLabel(b)}`);
      const unmeasured = new Map<string, number>();
      for (const b of r.branches) if (!b.measured) unmeasured.set(b.expression, (unmeasured.get(b.expression) ?? 0) + 1);
      for (const [e, n] of unmeasured) out.push(`    ${e}: ${n} branch(es) not measured (evaluated by the jsonata interpreter, which reports none)`);
    }
  }
  return out.join('\n');
}

function branchLabel(b: BranchCoverage): string {
  if (b.kind === '?:') return b.branch === 'then' ? 'then' : 'else';
  const decides = b.kind === 'and' ? 'false' : 'true';
  const evaluates = b.kind === 'and' ? 'true' : 'false';
  return b.branch === 'short' ? `left side ${decides} (short-circuit)` : `left side ${evaluates} (right side evaluated)`;
}

/** The coverage of every pipeline a test run touches, one CoveredPipeline per pipeline file. */
export class CoverageCollector {
  private readonly byFile = new Map<string, CoveredPipeline>();

  /** The probed copy to run a pipeline's cases through (made once per pipeline file). */
  cover(pipeline: CompiledPipeline): CoveredPipeline {
    let c = this.byFile.get(pipeline.file);
    if (!c) {
      c = new CoveredPipeline(pipeline);
      this.byFile.set(pipeline.file, c);
    }
    return c;
  }

  /** Coverage per pipeline, by file name. */
  results(): PipelineCoverage[] {
    return [...this.byFile.values()].map((c) => c.result()).sort((a, b) => a.file.localeCompare(b.file));
  }
}
