import { readFileSync } from 'node:fs';
import { parse as parseYaml } from 'yaml';

/** PromQL words that are no metric name: keywords, set and grouping operators, modifiers. */
const KEYWORDS = new Set(['by', 'without', 'on', 'ignoring', 'group_left', 'group_right', 'and', 'or', 'unless', 'bool', 'offset', 'atan2', 'inf', 'nan']);

/**
 * The metric names a PromQL expression selects (`foo_bucket` of a histogram as such). Enough of
 * PromQL for dashboards and rules: string literals, label matchers, ranges, Grafana's `$vars`,
 * grouping label lists and function names are skipped; what is left and names something is a
 * metric. Grafana's `label_values(metric{…}, label)` gives its metric (`label_values(label)` none).
 */
export function metricNames(expr: string): string[] {
  let text = expr
    // label_values(metric{…}, label) names a metric; label_values(label) does not.
    .replace(/label_values\(((?:\{[^}]*\}|[^)])*)\)/g, (_, args: string) => {
      const bare = args.replace(/\{[^}]*\}/g, '');
      return bare.includes(',') ? ` ${bare.split(',')[0]} ` : ' ';
    })
    .replace(/"(?:[^"\\]|\\.)*"|'(?:[^'\\]|\\.)*'|`[^`]*`/g, '""')
    .replace(/\{[^}]*\}/g, ' ')
    .replace(/\[[^\]]*\]/g, ' ')
    .replace(/\$\{[^}]*\}|\$[a-zA-Z_][a-zA-Z0-9_]*/g, ' ')
    .replace(/\boffset\s+\S+/g, ' ');
  // Label lists of grouping and matching modifiers: `by (a, b)`, `on(a)`, `group_left(c)`.
  text = text.replace(/\b(by|without|on|ignoring|group_left|group_right)\s*\([^)]*\)/g, ' ');
  const names = new Set<string>();
  for (const m of text.matchAll(/(?<![a-zA-Z0-9_:.])([a-zA-Z_:][a-zA-Z0-9_:]*)(\s*\()?/g)) {
    const [, word, call] = m;
    if (call || KEYWORDS.has(word!.toLowerCase())) continue;
    names.add(word!);
  }
  return [...names].sort();
}

/** Every PromQL expression of a Grafana dashboard: panel targets (rows' too) and query variables. */
export function dashboardExprs(dashboard: unknown): string[] {
  const exprs: string[] = [];
  const walk = (node: unknown): void => {
    if (Array.isArray(node)) {
      node.forEach(walk);
      return;
    }
    if (!node || typeof node !== 'object') return;
    const o = node as Record<string, unknown>;
    if (typeof o.expr === 'string') exprs.push(o.expr);
    if (o.type === 'query' && typeof o.definition === 'string') exprs.push(o.definition);
    for (const v of Object.values(o)) walk(v);
  };
  walk(dashboard);
  return exprs;
}

/** Every `expr` of a Prometheus rules file (alerting and recording rules). */
export function ruleExprs(yamlText: string): string[] {
  const doc = parseYaml(yamlText) as { groups?: { rules?: { expr?: unknown }[] }[] };
  return (doc.groups ?? []).flatMap((g) => g.rules ?? []).map((r) => String(r.expr));
}

/** The metric names the dashboard at `file` queries. */
export function dashboardMetrics(file: string): string[] {
  return [...new Set(dashboardExprs(JSON.parse(readFileSync(file, 'utf8'))).flatMap(metricNames))].sort();
}

/** The metric names the rules file at `file` queries. */
export function ruleMetrics(file: string): string[] {
  return [...new Set(ruleExprs(readFileSync(file, 'utf8')).flatMap(metricNames))].sort();
}

/** The names of the samples of a Prometheus text exposition (a histogram's `_bucket`, `_sum`, `_count`). */
export function exposedNames(text: string): Set<string> {
  const names = new Set<string>();
  for (const line of text.split('\n')) {
    const m = /^([a-zA-Z_:][a-zA-Z0-9_:]*)(?:\{|\s)/.exec(line);
    if (m) names.add(m[1]!);
  }
  return names;
}
