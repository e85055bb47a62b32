import fc from 'fast-check';
import { resolveUri, type SchemaLookup } from './schema-shape.ts';

type Schema = Record<string, unknown>;

/** A schema with the `$id` its relative `$ref`s resolve against. */
interface Part {
  schema: Schema;
  base: string;
}

/**
 * An internal keyword: values a property must not take (on an object schema: property name →
 * values; on a value's schema: the values). How the "every `else`" alternative keeps clear of
 * the `if`s it stands against (`if: {event: const X}` ⇒ the else side's event is not X).
 */
const EXCLUDE = '\u0000exclude';

/** How many alternatives (anyOf/oneOf branches, if/then/else sides) one level may multiply into. */
const MAX_ALTERNATIVES = 64;
/** How deep generation nests objects and arrays (and follows recursive `$ref`s). */
const MAX_DEPTH = 8;

/**
 * A fast-check arbitrary of values a JSON Schema (draft 2020-12) admits, built from the schema:
 * `$ref` (by `$id` through `lookup`, JSON-pointer fragments), `allOf` (merged), `anyOf`/`oneOf`
 * (a branch each), `if`/`then`/`else` (either side), `const`, `enum`, `type`, `properties` with
 * `required`, `items`/`prefixItems`, lengths, bounds, `pattern` and the usual formats
 * (`date-time`, Synapse's `iso-timestamp`, `date`, `email`, `uri`, `uuid`).
 *
 * Values are built to fit, not guaranteed to: a caller keeps those its validator accepts (what
 * `not`, `oneOf`'s exclusivity, an `if` that a value happens to meet on the other side, or
 * `uniqueItems` may reject).
 */
export function schemaArbitrary(schema: unknown, id: string, lookup: SchemaLookup): fc.Arbitrary<unknown> {
  // The schema's own `#/...` references resolve to itself, registered or not.
  const withRoot: SchemaLookup = (docId) => (docId === id ? { schema } : lookup(docId));
  return new Generator(withRoot).arbitrary([{ schema: asSchema(schema), base: id }], 0);
}

function asSchema(s: unknown): Schema {
  if (s === true || s === undefined) return {};
  if (s === false) return { not: {} };
  return s && typeof s === 'object' && !Array.isArray(s) ? s as Schema : {};
}

class Generator {
  constructor(private readonly lookup: SchemaLookup) {}

  arbitrary(parts: Part[], depth: number): fc.Arbitrary<unknown> {
    const alternatives = this.expand(parts, depth);
    const arbs = alternatives.map((leaves) => this.merged(leaves, depth)).filter((a): a is fc.Arbitrary<unknown> => a !== undefined);
    if (arbs.length === 0) return fc.constant(undefined);
    return arbs.length === 1 ? arbs[0]! : fc.oneof(...arbs);
  }

  /** The alternatives a list of schemas that must all hold comes to, each a list of plain schemas. */
  private expand(parts: Part[], depth: number): Part[][] {
    let out: Part[][] = [[]];
    for (const part of parts) {
      const alts = this.expandOne(part, depth);
      const next: Part[][] = [];
      for (const a of out) for (const b of alts) if (next.length < MAX_ALTERNATIVES) next.push([...a, ...b]);
      out = next;
    }
    return out;
  }

  private expandOne({ schema, base }: Part, depth: number): Part[][] {
    if (typeof schema.$id === 'string') base = resolveUri(schema.$id, base) ?? base;
    const { $ref, allOf, anyOf, oneOf, if: cond, then, else: otherwise, ...own } = schema;
    const lists: Part[][][] = [[[{ schema: own, base }]]];
    if (typeof $ref === 'string' && depth <= MAX_DEPTH) {
      const target = this.resolve($ref, base);
      if (target) lists.push(this.expandOne(target, depth + 1));
    }
    // Conditionals (this schema's own and its allOf items'): the schemas of a stream list one
    // `if: {event: X} then: X's schema` per event type, of which one holds at a time. So the
    // alternatives are each `if`/`then` on its own, and every `else` together — not all 2^n
    // combinations, which would nearly all contradict themselves.
    const conditionals: Schema[] = [];
    if (cond !== undefined && (then !== undefined || otherwise !== undefined)) conditionals.push({ if: cond, then, else: otherwise });
    for (const item of Array.isArray(allOf) ? allOf : []) {
      const s = asSchema(item);
      const keys = Object.keys(s).filter((k) => !['if', 'then', 'else', 'description', '$comment'].includes(k));
      if ('if' in s && keys.length === 0) conditionals.push(s);
      else lists.push(this.expandOne({ schema: s, base }, depth));
    }
    for (const branches of [anyOf, oneOf]) {
      if (Array.isArray(branches)) lists.push(branches.flatMap((s) => this.expandOne({ schema: asSchema(s), base }, depth)));
    }
    if (conditionals.length) {
      const alternatives: Part[][] = [];
      for (const c of conditionals) {
        if (c.then !== undefined) alternatives.push(...this.expand([{ schema: asSchema(c.if), base }, { schema: asSchema(c.then), base }], depth));
      }
      alternatives.push(...this.expand(conditionals.map((c) => ({ schema: { ...asSchema(c.else), [EXCLUDE]: excludedBy(c.if) }, base })), depth));
      lists.push(alternatives);
    }
    let out: Part[][] = [[]];
    for (const alts of lists) {
      const next: Part[][] = [];
      for (const a of out) for (const b of alts) if (next.length < MAX_ALTERNATIVES) next.push([...a, ...b]);
      out = next;
    }
    return out;
  }

  private resolve(ref: string, base: string): Part | undefined {
    const uri = resolveUri(ref, base);
    if (!uri) return undefined;
    const hash = uri.indexOf('#');
    const docId = hash < 0 ? uri : uri.slice(0, hash);
    const fragment = hash < 0 ? '' : uri.slice(hash + 1);
    let target = this.lookup(docId)?.schema;
    if (target === undefined || (fragment !== '' && !fragment.startsWith('/'))) return undefined;
    for (const raw of fragment.split('/').slice(1)) {
      if (!target || typeof target !== 'object') return undefined;
      target = (target as Record<string, unknown>)[decodeURIComponent(raw).replace(/~1/g, '/').replace(/~0/g, '~')];
    }
    return { schema: asSchema(target), base: docId };
  }

  /** One arbitrary for plain schemas (no combinators left) that must all hold. */
  private merged(leaves: Part[], depth: number): fc.Arbitrary<unknown> | undefined {
    const schemas = leaves.map((l) => l.schema);
    const excluded = new Set(schemas.flatMap((s) => (Array.isArray(s[EXCLUDE]) ? (s[EXCLUDE] as unknown[]).map((v) => JSON.stringify(v)) : [])));
    const allowed = (v: unknown) => !excluded.has(JSON.stringify(v));
    const withConst = schemas.find((s) => 'const' in s);
    if (withConst) return allowed(withConst.const) ? fc.constant(withConst.const) : undefined;
    const enums = schemas.filter((s) => Array.isArray(s.enum)).map((s) => s.enum as unknown[]);
    if (enums.length) {
      const values = enums.reduce((a, b) => a.filter((v) => b.some((w) => JSON.stringify(w) === JSON.stringify(v)))).filter(allowed);
      return values.length ? fc.constantFrom(...values) : undefined;
    }
    let types: Set<string> | undefined;
    for (const s of schemas) {
      if (s.type === undefined) continue;
      const t = new Set((Array.isArray(s.type) ? s.type : [s.type]) as string[]);
      // `integer` is a kind of number: number ∩ integer is integer.
      if (t.has('number')) t.add('integer');
      types = types ? new Set([...types].filter((x) => t.has(x) || (x === 'number' && t.has('integer')))) : t;
    }
    if (types?.has('integer') && types.has('number')) types.delete('integer');
    const kinds = types ? [...types] : [guessType(schemas)];
    const arbs = kinds.map((k) => this.ofType(k, leaves, depth)).filter((a): a is fc.Arbitrary<unknown> => a !== undefined);
    if (!arbs.length) return undefined;
    const arb = arbs.length === 1 ? arbs[0]! : fc.oneof(...arbs);
    return excluded.size ? arb.filter(allowed) : arb;
  }

  private ofType(type: string, leaves: Part[], depth: number): fc.Arbitrary<unknown> | undefined {
    const schemas = leaves.map((l) => l.schema);
    const num = (key: string, pick: (a: number, b: number) => number) => {
      const vals = schemas.map((s) => s[key]).filter((v): v is number => typeof v === 'number');
      return vals.length ? vals.reduce((a, b) => pick(a, b)) : undefined;
    };
    switch (type) {
      case 'null': return fc.constant(null);
      case 'boolean': return fc.boolean();
      case 'integer':
      case 'number': {
        const exMin = num('exclusiveMinimum', Math.max);
        const exMax = num('exclusiveMaximum', Math.min);
        let min = num('minimum', Math.max);
        let max = num('maximum', Math.min);
        if (type === 'integer') {
          if (exMin !== undefined) min = Math.max(min ?? -Infinity, Math.floor(exMin) + 1);
          if (exMax !== undefined) max = Math.min(max ?? Infinity, Math.ceil(exMax) - 1);
          const lo = Math.ceil(min ?? -1_000_000);
          const hi = Math.floor(max ?? Math.max(lo, 0) + 1_000_000);
          return lo <= hi ? fc.integer({ min: lo, max: hi }) : undefined;
        }
        const lo = Math.max(min ?? -1e9, exMin ?? -Infinity);
        const hi = Math.min(max ?? 1e9, exMax ?? Infinity);
        if (lo > hi) return undefined;
        return fc.oneof(
          fc.double({ min: lo, max: hi, noNaN: true, noDefaultInfinity: true, minExcluded: exMin !== undefined && lo === exMin, maxExcluded: exMax !== undefined && hi === exMax }),
          fc.integer({ min: Math.ceil(Math.max(lo, -1e6)), max: Math.floor(Math.min(hi, 1e6)) }).filter((n) => n > (exMin ?? -Infinity) && n < (exMax ?? Infinity)),
        ).map((n) => (Object.is(n, -0) ? 0 : n));
      }
      case 'string': return this.string(schemas);
      case 'array': {
        if (depth >= MAX_DEPTH) return fc.constant([]);
        const itemParts = leaves.flatMap((l) => (l.schema.items !== undefined && typeof l.schema.items === 'object' ? [{ schema: asSchema(l.schema.items), base: l.base }] : []));
        const item = this.arbitrary(itemParts, depth + 1);
        const minItems = num('minItems', Math.max) ?? 0;
        const maxItems = Math.min(num('maxItems', Math.min) ?? minItems + 4, minItems + 4);
        return minItems <= maxItems ? fc.array(item, { minLength: minItems, maxLength: maxItems }) : undefined;
      }
      case 'object': {
        if (depth >= MAX_DEPTH) return fc.constant({});
        const required = new Set(schemas.flatMap((s) => (Array.isArray(s.required) ? s.required as string[] : [])));
        const names = new Set<string>(required);
        for (const s of schemas) for (const k of Object.keys((s.properties as Schema | undefined) ?? {})) names.add(k);
        const record: Record<string, fc.Arbitrary<unknown>> = {};
        for (const name of names) {
          // `name: false` somewhere: the property must be absent.
          if (schemas.some((s) => (s.properties as Schema | undefined)?.[name] === false)) {
            if (required.has(name)) return undefined;
            continue;
          }
          const parts = leaves.flatMap((l) => {
            const p = (l.schema.properties as Schema | undefined)?.[name];
            const not = (l.schema[EXCLUDE] as Record<string, unknown[]> | undefined)?.[name];
            if (not) return [...(p !== undefined ? [{ schema: asSchema(p), base: l.base }] : []), { schema: { [EXCLUDE]: not }, base: l.base }];
            if (p !== undefined) return [{ schema: asSchema(p), base: l.base }];
            const extra = l.schema.additionalProperties;
            return extra && typeof extra === 'object' ? [{ schema: asSchema(extra), base: l.base }] : [];
          });
          record[name] = this.arbitrary(parts, depth + 1);
        }
        return fc.record(record, { requiredKeys: [...required] });
      }
      default: return undefined;
    }
  }

  private string(schemas: Schema[]): fc.Arbitrary<unknown> {
    const format = schemas.map((s) => s.format).find((f) => typeof f === 'string');
    const pattern = schemas.map((s) => s.pattern).find((p) => typeof p === 'string') as string | undefined;
    const minLength = Math.max(0, ...schemas.map((s) => (typeof s.minLength === 'number' ? s.minLength : 0)));
    const maxLength = Math.min(minLength + 24, ...schemas.map((s) => (typeof s.maxLength === 'number' ? s.maxLength : Infinity)));
    const dates = fc.date({ min: new Date('2000-01-01T00:00:00Z'), max: new Date('2099-12-31T23:59:59Z'), noInvalidDate: true });
    switch (format) {
      case 'date-time': return dates.map((d) => d.toISOString());
      // Synapse's format: with an offset, or naive (a Python producer's utcnow()).
      case 'iso-timestamp': return fc.tuple(dates, fc.boolean()).map(([d, naive]) => (naive ? d.toISOString().slice(0, -1) : d.toISOString()));
      case 'date': return dates.map((d) => d.toISOString().slice(0, 10));
      case 'email': return fc.emailAddress();
      case 'uri':
      case 'url': return fc.webUrl();
      case 'uuid': return fc.uuid();
      case 'ipv4': return fc.ipV4();
      default: break;
    }
    if (pattern !== undefined) {
      try {
        return fc.stringMatching(new RegExp(pattern, 'u')).filter((s) => s.length >= minLength && s.length <= Math.max(maxLength, minLength));
      } catch {
        // A pattern fast-check cannot read: plain strings, kept only when the validator agrees.
      }
    }
    return fc.string({ minLength, maxLength: Math.max(maxLength, minLength) });
  }
}

/** Per property, the values an `if` of consts and enums matches (so its else side avoids them). */
function excludedBy(cond: unknown): Record<string, unknown[]> {
  const props = asSchema(cond).properties;
  const out: Record<string, unknown[]> = {};
  for (const [name, s] of Object.entries((props as Schema | undefined) ?? {})) {
    const p = asSchema(s);
    if ('const' in p) out[name] = [p.const];
    else if (Array.isArray(p.enum)) out[name] = p.enum;
  }
  return out;
}

function guessType(schemas: Schema[]): string {
  const has = (k: string) => schemas.some((s) => k in s);
  if (has('properties') || has('required') || has('additionalProperties')) return 'object';
  if (has('items') || has('prefixItems') || has('minItems')) return 'array';
  if (has('pattern') || has('minLength') || has('format')) return 'string';
  if (has('minimum') || has('maximum')) return 'number';
  return 'string';
}

