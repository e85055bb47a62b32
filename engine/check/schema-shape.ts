import { ANY, NEVER, LeafShape, intersection, union, type Kind, type Shape } from './shape.ts';

/** Finds a schema document by its `$id` (a SchemaRegistry's `get`). */
export type SchemaLookup = (id: string) => { schema: unknown } | undefined;

type Schema = Record<string, unknown>;

/** How deep `$ref`s are followed before a shape gives up and claims nothing (recursive schemas). */
const MAX_REF_DEPTH = 24;

/**
 * The shape of the values a JSON Schema (draft 2020-12) admits. Follows `$ref` (by `$id`, relative
 * to the referring schema's `$id`, with JSON-pointer fragments), `allOf` (every part), `anyOf` and
 * `oneOf` (any branch), `if`/`then`/`else` (either branch), `properties`, `patternProperties`,
 * `additionalProperties`, `items`/`prefixItems`, `type`, `const` and `enum`.
 *
 * Open where the schema is: an object without `additionalProperties: false` may have any other
 * property, of any shape. Keywords it does not model (`not`, `unevaluatedProperties`,
 * `dependentSchemas`, `$dynamicRef`, anchors) only ever make it claim less, never more.
 */
export function schemaShape(schema: unknown, id: string, lookup: SchemaLookup): Shape {
  // The schema's own `#/...` references resolve to itself, registered or not.
  const withRoot: SchemaLookup = (docId) => (docId === id ? { schema } : lookup(docId));
  return build(schema, id, withRoot, 0);
}

function build(schema: unknown, base: string, lookup: SchemaLookup, depth: number): Shape {
  if (schema === true || schema === undefined) return ANY;
  if (schema === false) return NEVER;
  if (!schema || typeof schema !== 'object' || Array.isArray(schema)) return ANY;
  if (depth > MAX_REF_DEPTH) return ANY;
  const s = schema as Schema;
  if (typeof s.$id === 'string') base = resolveUri(s.$id, base) ?? base;
  const sub = (x: unknown) => build(x, base, lookup, depth + 1);

  const parts: Shape[] = [own(s, sub)];
  if (typeof s.$ref === 'string') parts.push(lazy(() => refShape(s.$ref as string, base, lookup, depth)));
  if (Array.isArray(s.allOf)) parts.push(...s.allOf.map(sub));
  if (Array.isArray(s.anyOf)) parts.push(union(s.anyOf.map(sub)));
  if (Array.isArray(s.oneOf)) parts.push(union(s.oneOf.map(sub)));
  if ('if' in s && ('then' in s || 'else' in s)) {
    // Either the condition holds (and `then` with it) or it does not (and `else` applies).
    parts.push(union([intersection([sub(s.if), sub(s.then)]), sub(s.else)]));
  }
  return intersection(parts);
}

/** The constraints a schema states itself (not through $ref or combinators). */
function own(s: Schema, sub: (x: unknown) => Shape): Shape {
  const kinds = kindsOf(s);
  const props = s.properties && typeof s.properties === 'object' ? s.properties as Schema : undefined;
  const patternProps = s.patternProperties && typeof s.patternProperties === 'object' ? s.patternProperties as Schema : undefined;
  const patterns: [RegExp, () => Shape][] = [];
  for (const [pattern, ps] of Object.entries(patternProps ?? {})) {
    try {
      patterns.push([new RegExp(pattern, 'u'), () => sub(ps)]);
    } catch {
      // A pattern JavaScript cannot read: any name might match it, so no name can be ruled out.
      return new LeafShape(kinds);
    }
  }
  const extra = s.additionalProperties === false ? false as const
    : s.additionalProperties === undefined || s.additionalProperties === true ? undefined
      : () => sub(s.additionalProperties);
  let items: (() => Shape) | undefined;
  if (Array.isArray(s.prefixItems)) {
    const prefix = s.prefixItems;
    // Items past the prefix follow `items` (anything when absent; none when false).
    items = () => union([...prefix.map(sub), s.items === false ? NEVER : sub(s.items)]);
  } else if (s.items !== undefined) items = () => sub(s.items);
  return new LeafShape(kinds, {
    props: props ? new Map(Object.entries(props).map(([k, v]) => [k, () => sub(v)])) : undefined,
    patterns,
    extra,
    items,
  });
}

function kindsOf(s: Schema): Set<Kind> | undefined {
  let kinds: Set<Kind> | undefined;
  const narrow = (next: Set<Kind>) => {
    kinds = kinds ? new Set([...kinds].filter((k) => next.has(k))) : next;
  };
  if (typeof s.type === 'string' || Array.isArray(s.type)) {
    const types = (Array.isArray(s.type) ? s.type : [s.type]) as string[];
    narrow(new Set(types.map((t) => (t === 'integer' ? 'number' : t) as Kind)));
  }
  if ('const' in s) narrow(new Set([kindOfValue(s.const)]));
  if (Array.isArray(s.enum)) narrow(new Set(s.enum.map(kindOfValue)));
  return kinds;
}

/** The JSON kind of a value. */
export function kindOfValue(v: unknown): Kind {
  if (v === null) return 'null';
  if (Array.isArray(v)) return 'array';
  switch (typeof v) {
    case 'string': return 'string';
    case 'number': return 'number';
    case 'boolean': return 'boolean';
    default: return 'object';
  }
}

function refShape(ref: string, base: string, lookup: SchemaLookup, depth: number): Shape {
  const uri = resolveUri(ref, base);
  if (!uri) return ANY;
  const hash = uri.indexOf('#');
  const docId = hash < 0 ? uri : uri.slice(0, hash);
  const fragment = hash < 0 ? '' : uri.slice(hash + 1);
  const doc = lookup(docId)?.schema;
  if (doc === undefined) return ANY;
  if (fragment !== '' && !fragment.startsWith('/')) return ANY; // an anchor: not modelled
  let target: unknown = doc;
  for (const raw of fragment.split('/').slice(1)) {
    const key = decodeURIComponent(raw).replace(/~1/g, '/').replace(/~0/g, '~');
    if (!target || typeof target !== 'object') return ANY;
    target = (target as Record<string, unknown>)[key];
  }
  return build(target, docId, lookup, depth + 1);
}

/** A `$ref` or `$id` resolved against the `$id` it appears under. */
export function resolveUri(ref: string, base: string): string | undefined {
  try {
    return new URL(ref, base).href;
  } catch {
    // A base that is not a URL (an $id such as `order`): only same-document refs resolve.
    if (ref.startsWith('#')) return `${base}${ref}`;
    return ref;
  }
}

/** Defers building a shape until it is asked something (so recursive schemas cost nothing up front). */
function lazy(make: () => Shape): Shape {
  let made: Shape | undefined;
  const get = () => (made ??= make());
  return {
    kinds: () => get().kinds(),
    property: (name, within) => get().property(name, within),
    items: () => get().items(),
    names: () => get().names(),
  };
}
