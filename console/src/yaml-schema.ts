/**
 * Completion and hover for pipeline YAML from the pipeline JSON Schema (editor/pipeline.schema.json,
 * made by `npm run editor-schemas`: every key, with each sink's `with:` keys under if/then on its
 * `type`). A small outline of the block-style YAML (keys and list items by indentation) says
 * where the cursor is; it tolerates the half-typed lines the editor sees, which a YAML parser
 * would reject.
 */
import type { CompletionContext, CompletionResult, Completion } from '@codemirror/autocomplete';
import type { EditorView } from '@codemirror/view';

type Schema = Record<string, any>;

/** A line of the outline: a `key:` (with its inline value) or a list item `- `. */
export interface OutlineNode {
  kind: 'root' | 'key' | 'item';
  key?: string;
  value?: string;
  /** Column of the key, or of the dash. */
  col: number;
  /** Column of an item's content. */
  inner: number;
  line: number;
  parent?: OutlineNode;
  children: OutlineNode[];
}

const KEY = /^([A-Za-z0-9_$.\-]+|"[^"]*"|'[^']*')\s*:(?:\s+(.*)|\s*)$/;
const BARE = /^([A-Za-z0-9_$.\-]*)$/;

function unquote(k: string): string {
  return /^["']/.test(k) ? k.slice(1, -1) : k;
}

/** The outline of a YAML text (line numbers from 0). */
export function outline(text: string): { root: OutlineNode; byLine: OutlineNode[][] } {
  const root: OutlineNode = { kind: 'root', col: -1, inner: 0, line: -1, children: [] };
  const byLine: OutlineNode[][] = [];
  const stack: OutlineNode[] = [root];
  const lines = text.split('\n');
  const attach = (node: OutlineNode) => {
    for (;;) {
      const top = stack[stack.length - 1]!;
      const fits = top.kind === 'root'
        || (node.kind === 'key' && ((top.kind === 'key' && top.col < node.col) || (top.kind === 'item' && top.inner <= node.col)))
        || (node.kind === 'item' && ((top.kind === 'key' && (top.col < node.col || (top.col === node.col && !top.value))) || (top.kind === 'item' && top.inner <= node.col)));
      if (fits) break;
      stack.pop();
    }
    node.parent = stack[stack.length - 1]!;
    node.parent.children.push(node);
    stack.push(node);
  };
  /** Column of the key whose block scalar (`|`, `>`) the lines below belong to, while they are indented past it. */
  let blockOf = -1;
  lines.forEach((raw, line) => {
    const nodes: OutlineNode[] = [];
    byLine[line] = nodes;
    const trimmed = raw.trimEnd();
    if (!trimmed.trim()) return;
    let col = raw.length - raw.trimStart().length;
    // Text of a block scalar (an expression, say) holds no keys, even where it looks like one.
    if (blockOf >= 0 && col > blockOf) return;
    blockOf = -1;
    if (trimmed.trim().startsWith('#') || trimmed.startsWith('---')) return;
    let rest = raw.slice(col);
    while (rest === '-' || rest.startsWith('- ')) {
      const after = rest.slice(1);
      const inner = col + 1 + (after.length - after.trimStart().length);
      const item: OutlineNode = { kind: 'item', col, inner: rest === '-' ? col + 2 : inner, line, children: [] };
      attach(item);
      nodes.push(item);
      col = item.inner;
      rest = after.trimStart();
    }
    const m = KEY.exec(rest.replace(/\s+#.*$/, ''));
    if (m) {
      const node: OutlineNode = { kind: 'key', key: unquote(m[1]!), value: m[2]?.trim() || undefined, col, inner: col, line, children: [] };
      attach(node);
      nodes.push(node);
      if (node.value && /^[|>][0-9+-]*$/.test(node.value)) blockOf = col;
    }
  });
  return { root, byLine };
}

/** Where a node sits: its ancestors' keys and items, outermost first (`['sinks', '[]', 'with']`). */
export function pathOf(node: OutlineNode): OutlineNode[] {
  const out: OutlineNode[] = [];
  for (let n: OutlineNode | undefined = node; n && n.kind !== 'root'; n = n.parent) out.unshift(n);
  return out;
}

/** Scalar values of the keys of a mapping (an item's or a key's children), for if/then. */
function scalars(container: OutlineNode | undefined): Record<string, string> {
  const out: Record<string, string> = {};
  for (const c of container?.children ?? []) if (c.kind === 'key' && c.key && c.value) out[c.key] = unquote(c.value);
  return out;
}

function deref(root: Schema, s: Schema | undefined): Schema | undefined {
  let cur = s;
  for (let i = 0; cur && typeof cur.$ref === 'string' && cur.$ref.startsWith('#/') && i < 10; i++) {
    let t: any = root;
    for (const part of cur.$ref.slice(2).split('/')) t = t?.[part.replace(/~1/g, '/').replace(/~0/g, '~')];
    cur = t;
  }
  return cur;
}

/** Whether an `if` schema holds for a mapping's scalar values (the const/enum tests the schema uses). */
function ifHolds(cond: Schema, values: Record<string, string>): boolean {
  for (const req of cond.required ?? []) if (!(req in values)) return false;
  for (const [k, sub] of Object.entries<Schema>(cond.properties ?? {})) {
    if (!(k in values)) continue;
    if ('const' in sub && String(sub.const) !== values[k]) return false;
    if (Array.isArray(sub.enum) && !sub.enum.map(String).includes(values[k]!)) return false;
  }
  return true;
}

/** The subschemas that apply to a mapping: the schema, its allOf/anyOf/oneOf, and each then whose if holds. */
function branches(root: Schema, s: Schema | undefined, values: Record<string, string>, depth = 0): Schema[] {
  const base = deref(root, s);
  if (!base || depth > 6) return [];
  const out = [base];
  for (const k of ['allOf', 'anyOf', 'oneOf'] as const) for (const b of base[k] ?? []) out.push(...branches(root, b, values, depth + 1));
  if (base.if && base.then && ifHolds(base.if, values)) out.push(...branches(root, base.then, values, depth + 1));
  return out;
}

/** Properties a mapping may have, merged over its branches (the first description wins). */
function propertiesOf(root: Schema, s: Schema | undefined, values: Record<string, string>): Map<string, Schema> {
  const props = new Map<string, Schema>();
  for (const b of branches(root, s, values)) {
    for (const [k, v] of Object.entries<Schema>(b.properties ?? {})) {
      const prev = props.get(k);
      props.set(k, prev ? { ...v, ...prev, description: prev.description ?? v.description } : v);
    }
  }
  return props;
}

/** The schema of the mapping a node's children live in (undefined when the path leaves the schema). */
function schemaOf(root: Schema, path: OutlineNode[]): Schema | undefined {
  let s: Schema | undefined = root;
  for (const n of path) {
    if (!s) return undefined;
    const values = scalars(n.parent);
    if (n.kind === 'item') {
      const arr = branches(root, s, values).find((b) => b.items);
      s = deref(root, arr?.items);
    } else {
      s = propertiesOf(root, s, values).get(n.key!);
    }
  }
  return s;
}

/** What a hover or a completion says about a property. */
export function describe(prop: Schema, root: Schema): string {
  const parts: string[] = [];
  const all = branches(root, prop, {});
  const desc = all.find((b) => b.description)?.description;
  if (desc) parts.push(desc);
  const enums = all.flatMap((b) => b.enum ?? (b.const !== undefined ? [b.const] : []));
  if (enums.length) parts.push(`one of: ${[...new Set(enums)].map(String).join(', ')}`);
  const types = [...new Set(all.map((b) => b.type).flat().filter(Boolean))];
  if (types.length) parts.push(`type: ${types.join(' | ')}`);
  const def = all.find((b) => b.default !== undefined)?.default;
  if (def !== undefined) parts.push(`default: ${JSON.stringify(def)}`);
  return parts.join('\n');
}

/** Values a property takes that can be listed: its enums, consts, booleans. */
function valuesOf(prop: Schema, root: Schema): string[] {
  const all = branches(root, prop, {});
  const out = new Set<string>();
  for (const b of all) {
    for (const e of b.enum ?? []) out.add(String(e));
    if (b.const !== undefined) out.add(String(b.const));
    if (b.type === 'boolean') { out.add('true'); out.add('false'); }
  }
  return [...out];
}

/** Completion: keys of the mapping the cursor is in (not yet present), or a key's listed values. */
export function schemaCompletion(root: Schema) {
  return (ctx: CompletionContext): CompletionResult | null => {
    const line = ctx.state.doc.lineAt(ctx.pos);
    const before = line.text.slice(0, ctx.pos - line.from);
    const text = ctx.state.doc.toString();
    // The line as typed so far, with a placeholder key so the outline places it.
    const valueMatch = /^(\s*(?:-\s+)*)([A-Za-z0-9_$.\-]+):\s+([^\s#]*)$/.exec(before);
    if (valueMatch) {
      const lines = text.split('\n');
      lines[line.number - 1] = before;
      const { byLine } = outline(lines.join('\n'));
      const node = byLine[line.number - 1]!.find((n) => n.kind === 'key');
      if (!node) return null;
      const prop = schemaOf(root, pathOf(node));
      if (!prop) return null;
      const options = valuesOf(prop, root).map((v): Completion => ({ label: v, type: 'enum' }));
      return options.length ? { from: ctx.pos - valueMatch[3]!.length, options, validFor: /^[\w.-]*$/ } : null;
    }
    const keyMatch = /^(\s*(?:-\s+)*)([A-Za-z0-9_$.\-]*)$/.exec(before);
    if (!keyMatch || (!keyMatch[2] && !ctx.explicit && !/-\s+$/.test(keyMatch[1]!))) return null;
    const lines = text.split('\n');
    lines[line.number - 1] = `${keyMatch[1]}${keyMatch[2] || '__cursor__'}:`;
    const { byLine } = outline(lines.join('\n'));
    const node = byLine[line.number - 1]!.find((n) => n.kind === 'key');
    if (!node?.parent) return null;
    const mapping = node.parent;
    const schema = mapping.kind === 'root' ? root : schemaOf(root, pathOf(mapping));
    if (!schema) return null;
    const present = new Set(mapping.children.filter((c) => c !== node && c.kind === 'key').map((c) => c.key));
    const props = propertiesOf(root, schema, scalars(mapping));
    const options = [...props.entries()].filter(([k]) => !present.has(k)).map(([k, p]): Completion => ({
      label: k, type: 'property', apply: `${k}: `, info: describe(p, root) || undefined,
    }));
    return options.length ? { from: ctx.pos - keyMatch[2]!.length, options, validFor: /^[\w$.-]*$/ } : null;
  };
}

/** Hover: the description (type, values, default) of the key under the pointer. */
export function schemaHover(root: Schema) {
  return (view: EditorView, pos: number) => {
    const line = view.state.doc.lineAt(pos);
    const { byLine } = outline(view.state.doc.toString());
    const node = byLine[line.number - 1]?.find((n) => n.kind === 'key');
    if (!node || !node.key) return null;
    const start = line.from + node.col;
    const end = start + line.text.slice(node.col).indexOf(':');
    if (pos < start || pos > end) return null;
    const prop = schemaOf(root, pathOf(node));
    if (!prop) return null;
    const info = describe(prop, root);
    if (!info) return null;
    return {
      pos: start, end, above: true,
      create: () => {
        const dom = document.createElement('div');
        dom.className = 'cm-schema-hover';
        const title = document.createElement('strong');
        title.textContent = pathOf(node).map((n) => (n.kind === 'item' ? '[]' : n.key)).join('.');
        const body = document.createElement('div');
        body.textContent = info;
        dom.append(title, body);
        return { dom };
      },
    };
  };
}
