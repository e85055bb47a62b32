/**
 * What a checker knows about a value: the kinds it may have and, for objects and arrays, what
 * may be inside. Built lazily from JSON Schemas (schema-shape.ts) and from expressions
 * (expression-check.ts). Every question a checker asks is answered over-approximately: "can this
 * never happen?" is answered yes only when no value the schema admits could make it happen.
 */

/** JSON kinds; `integer` is folded into `number`. */
export type Kind = 'object' | 'array' | 'string' | 'number' | 'boolean' | 'null';

export const ALL_KINDS: readonly Kind[] = ['object', 'array', 'string', 'number', 'boolean', 'null'];

/** A value's possible shape. */
export interface Shape {
  /** The kinds the value may have; all of them when undefined. */
  kinds(): ReadonlySet<Kind> | undefined;
  /**
   * The shape of property `name` of the value when it is an object (of its items' property when
   * it is an array: JSONata flattens); NEVER where it cannot exist. `within`: the kinds the
   * value is known to have besides (an intersection's other parts may rule out an array).
   */
  property(name: string, within?: ReadonlySet<Kind>): Shape;
  /** The shape of an item when the value is an array. */
  items(): Shape;
  /**
   * Property names declared for the value when it is an object (for "did you mean"), and whether
   * other names are allowed (`open`).
   */
  names(): { declared: string[]; open: boolean };
}

class AnyShape implements Shape {
  kinds() {
    return undefined;
  }
  property(): Shape {
    return ANY;
  }
  items(): Shape {
    return ANY;
  }
  names() {
    return { declared: [], open: true };
  }
}

/** Anything: nothing is claimed about it. */
export const ANY: Shape = new AnyShape();

/** A shape with known kinds and, where given, known members. */
export class LeafShape implements Shape {
  constructor(
    private readonly kindSet: ReadonlySet<Kind> | undefined,
    private readonly members: {
      /** Declared properties, looked up lazily. */
      props?: ReadonlyMap<string, () => Shape>;
      /** patternProperties: a name matching one is given its (intersected) shapes. */
      patterns?: readonly [RegExp, () => Shape][];
      /** Undeclared names: `false` means none may exist; undefined means anything. */
      extra?: (() => Shape) | false;
      /** The shape of every item. */
      items?: () => Shape;
    } = {},
  ) {}

  kinds() {
    return this.kindSet;
  }

  property(name: string, within?: ReadonlySet<Kind>): Shape {
    const kinds = this.kindSet;
    const may = (k: Kind) => (!kinds || kinds.has(k)) && (!within || within.has(k));
    const parts: Shape[] = [];
    if (may('object')) parts.push(this.objectProperty(name));
    if (may('array')) parts.push(this.items().property(name));
    return union(parts);
  }

  private objectProperty(name: string): Shape {
    const { props, patterns, extra } = this.members;
    const declared = props?.get(name);
    const matched = (patterns ?? []).filter(([re]) => re.test(name)).map(([, s]) => s());
    if (declared || matched.length) return intersection([...(declared ? [declared()] : []), ...matched]);
    if (extra === false) return NEVER;
    return extra ? extra() : ANY;
  }

  items(): Shape {
    return this.members.items ? this.members.items() : ANY;
  }

  names() {
    const { props, patterns, extra } = this.members;
    const open = extra !== false || Boolean(patterns?.length);
    if (this.kindSet && !this.kindSet.has('object')) return { declared: [], open: false };
    return { declared: [...(props?.keys() ?? [])], open };
  }
}

/** No value at all: what a path that can never exist yields. */
export const NEVER: Shape = new LeafShape(new Set());

/** A value of one of these kinds, nothing known inside. */
export function ofKinds(...kinds: Kind[]): Shape {
  return new LeafShape(new Set(kinds));
}

/** Whether no value has this shape. */
export function isNever(s: Shape): boolean {
  return s.kinds()?.size === 0;
}

/** Whether nothing at all is known about the value. */
export function isAny(s: Shape): boolean {
  return s === ANY;
}

/** A value of any one of the shapes. */
export function union(parts: readonly Shape[]): Shape {
  const live = parts.filter((p) => !isNever(p));
  if (live.some(isAny)) return ANY;
  if (live.length === 0) return NEVER;
  if (live.length === 1) return live[0]!;
  return new UnionShape(live);
}

/** A value of all the shapes at once. */
export function intersection(parts: readonly Shape[]): Shape {
  const known = parts.filter((p) => !isAny(p));
  if (known.length === 0) return ANY;
  if (known.length === 1) return known[0]!;
  if (known.some(isNever)) return NEVER;
  return new IntersectionShape(known);
}

class UnionShape implements Shape {
  constructor(private readonly parts: readonly Shape[]) {}
  kinds() {
    const out = new Set<Kind>();
    for (const p of this.parts) {
      const k = p.kinds();
      if (!k) return undefined;
      for (const kind of k) out.add(kind);
    }
    return out;
  }
  property(name: string, within?: ReadonlySet<Kind>): Shape {
    return union(this.parts.map((p) => p.property(name, within)));
  }
  items(): Shape {
    return union(this.parts.filter((p) => p.kinds()?.has('array') ?? true).map((p) => p.items()));
  }
  names() {
    const declared = new Set<string>();
    let open = false;
    for (const p of this.parts) {
      const n = p.names();
      n.declared.forEach((d) => declared.add(d));
      open ||= n.open;
    }
    return { declared: [...declared], open };
  }
}

class IntersectionShape implements Shape {
  constructor(private readonly parts: readonly Shape[]) {}
  kinds() {
    let out: Set<Kind> | undefined;
    for (const p of this.parts) {
      const k = p.kinds();
      if (!k) continue;
      out = out ? new Set([...out].filter((x) => k.has(x))) : new Set(k);
    }
    return out;
  }
  property(name: string, within?: ReadonlySet<Kind>): Shape {
    const own = this.kinds();
    const kinds = own && within ? new Set([...own].filter((k) => within.has(k))) : own ?? within;
    if (kinds?.size === 0) return NEVER;
    return intersection(this.parts.map((p) => p.property(name, kinds)));
  }
  items(): Shape {
    return intersection(this.parts.map((p) => p.items()));
  }
  names() {
    // A name is possible only where every part allows it: declared by an open part counts.
    const all = this.parts.map((p) => p.names());
    const declared = new Set<string>();
    for (const n of all) n.declared.forEach((d) => declared.add(d));
    const possible = [...declared].filter((d) => all.every((n) => n.open || n.declared.includes(d)));
    return { declared: possible, open: all.every((n) => n.open) };
  }
}

/** The shape of each value a path step visits: arrays are looked into (JSONata flattens them). */
export function elementOf(s: Shape): Shape {
  return elementAt(s, 0);
}

function elementAt(s: Shape, depth: number): Shape {
  const kinds = s.kinds();
  if (!kinds || depth > 8) return ANY;
  if (!kinds.has('array')) return s;
  const rest = [...kinds].filter((k) => k !== 'array');
  return union([...(rest.length ? [intersection([s, ofKinds(...rest)])] : []), elementAt(s.items(), depth + 1)]);
}
