import { describe, expect, it } from 'vitest';
import { checkExpression, didYouMean } from '../../../engine/check/expression-check.ts';
import { checkPipelineExpressions } from '../../../engine/check/check-pipeline.ts';
import { schemaShape } from '../../../engine/check/schema-shape.ts';
import { ANY, type Shape } from '../../../engine/check/shape.ts';

const BASE = 'https://synapse.test/schemas/';

/** Schema documents by $id, as a SchemaRegistry holds them. */
const docs: Record<string, Record<string, unknown>> = {
  [`${BASE}common.json`]: {
    $id: `${BASE}common.json`,
    $defs: {
      customer: { type: 'object', additionalProperties: false, properties: { name: { type: 'string' }, id: { type: 'string' } } },
      item: { type: 'object', additionalProperties: false, properties: { sku: { type: 'string' }, price: { type: 'number' } } },
    },
  },
  [`${BASE}order.json`]: {
    $id: `${BASE}order.json`,
    type: 'object',
    additionalProperties: false,
    required: ['event', 'data'],
    properties: {
      event: { type: 'string' },
      data: {
        type: 'object',
        additionalProperties: false,
        properties: {
          customer: { $ref: 'common.json#/$defs/customer' },
          total: { type: 'number' },
          qty: { type: 'string' },
          amount: { type: ['number', 'string'] },
          items: { type: 'array', items: { $ref: 'common.json#/$defs/item' } },
          tags: { type: 'object', additionalProperties: { type: 'string' } },
          attrs: { type: 'object', patternProperties: { '^x_': { type: 'number' } }, additionalProperties: false },
          meta: { type: 'object' },
          'order id': { type: 'string' },
        },
      },
    },
  },
};
const lookup = (id: string) => (docs[id] ? { schema: docs[id] } : undefined);
const shapeOf = (schema: unknown, id = `${BASE}inline.json`): Shape => schemaShape(schema, id, lookup);
const order = shapeOf(docs[`${BASE}order.json`], `${BASE}order.json`);
const ifThenElse = shapeOf({
  type: 'object',
  if: { properties: { a: { const: 1 } } },
  then: { additionalProperties: false, properties: { a: {}, b: {} } },
  else: { additionalProperties: false, properties: { a: {}, c: {} } },
});

function findings(source: string, input: Shape = order) {
  return checkExpression(source, { input, inputName: 'the event' }).findings;
}
function errors(source: string, input: Shape = order) {
  return findings(source, input).filter((f) => f.severity === 'error');
}

describe('field paths against the input schema', () => {
  describe('nothing claimed', () => {
    const valid: { name: string; source: string; input?: Shape }[] = [
      { name: 'a declared path through a $ref into another schema', source: 'data.customer.name' },
      { name: 'array items: a step looks into the items', source: 'data.items.sku' },
      { name: 'a predicate evaluates in the items\' context', source: 'data.items[price > 1].sku' },
      { name: 'an index predicate', source: 'data.items[0].price' },
      { name: '$$ inside a predicate is the event', source: 'data.items[price > $$.data.total].sku' },
      { name: '$ is the context', source: '$.data.total' },
      { name: 'a variable bound from a path', source: '($c := data.customer; $c.name)' },
      { name: 'lambda parameters are unknown', source: '$map(data.items, function($i){ $i.anything.at.all })' },
      { name: 'a lambda body is not checked against the context', source: '$map(data.items, function($i){ nothing.here })' },
      { name: '* claims nothing below', source: 'data.*.whatever' },
      { name: '** claims nothing below', source: 'data.**.whatever' },
      { name: '% claims nothing', source: 'data.items.%.whatever' },
      { name: 'a focus binding claims nothing after it', source: 'data.items@$i.whatever' },
      { name: 'an index binding claims nothing after it', source: 'data.items#$n.whatever' },
      { name: 'additionalProperties with a schema: any name', source: 'data.tags.anything' },
      { name: 'a name matching patternProperties', source: 'data.attrs.x_width' },
      { name: 'an object with no properties listed is open', source: 'data.meta.anything.deeper' },
      { name: 'a quoted name that exists', source: 'data.`order id`' },
      { name: 'an object constructed in the path', source: '{"a": data.total}.a' },
      { name: 'a grouping object in a path', source: 'data.items{sku: price}.anything' },
      { name: 'a variable rebound in a branch may be either', source: '($c := data.customer; data.total > 1 ? $c := data.items : (); $c.sku)' },
      { name: 'an unknown variable', source: '$nobody.knows' },
      { name: 'no schema: anything', source: 'data.custmer.nme', input: ANY },
      { name: 'an open schema', source: 'data.custmer', input: shapeOf({ type: 'object', properties: { data: { type: 'object' } } }) },
      { name: 'a schema without type: an array of anything might be there', source: 'nope', input: shapeOf({ properties: { a: {} }, additionalProperties: false }) },
      { name: 'allOf of open parts', source: 'b', input: shapeOf({ type: 'object', allOf: [{ properties: { a: {} } }, { properties: { c: {} } }] }) },
      { name: 'anyOf: one branch declares it', source: 'b.x', input: shapeOf({ type: 'object', additionalProperties: false, properties: { b: { anyOf: [{ type: 'string' }, { type: 'object', properties: { x: {} } }] } } }) },
      { name: 'if/then/else: the then branch declares it', source: 'b', input: ifThenElse },
      { name: 'if/then/else: the else branch declares it', source: 'c', input: ifThenElse },
      { name: 'a $ref that does not resolve: anything', source: 'a.b', input: shapeOf({ $ref: 'missing.json' }) },
      { name: 'a recursive schema', source: 'child.child.child.name', input: shapeOf({ $id: `${BASE}tree.json`, type: 'object', additionalProperties: false, properties: { name: {}, child: { $ref: '#' } } }) },
    ];
    for (const c of valid) {
      it(c.name, () => {
        expect(errors(c.source, c.input)).toEqual([]);
      });
    }
  });

  describe('a path that can never exist is an error at its token', () => {
    const invalid: { name: string; source: string; input?: Shape; offset: number; message: RegExp }[] = [
      { name: 'a typo at the top', source: 'evnt = "x"', offset: 0, message: /field 'evnt' can never exist in the event .*did you mean 'event'\?/ },
      { name: 'a typo through a $ref', source: '$uppercase(data.custmer.name)', offset: 16, message: /field 'custmer' can never exist in 'data' .*did you mean 'customer'\?/ },
      { name: 'a typo below a $ref', source: 'data.customer.nme', offset: 14, message: /'nme' can never exist in 'data.customer'.*did you mean 'name'\?/ },
      { name: 'a typo in array items', source: 'data.items.skuu', offset: 11, message: /'skuu' can never exist in 'data.items'.*did you mean 'sku'/ },
      { name: 'a typo inside a predicate', source: 'data.items[prce > 1].sku', offset: 11, message: /'prce' can never exist.*did you mean 'price'/ },
      { name: 'a typo after $$ in a predicate', source: 'data.items[price > $$.data.totl]', offset: 27, message: /'totl'.*did you mean 'total'/ },
      { name: 'a typo after a variable bound from a path', source: '($c := data.customer; $c.nme)', offset: 25, message: /'nme' can never exist in '\$c'.*did you mean 'name'/ },
      { name: 'a field of a string', source: 'data.customer.name.first', offset: 19, message: /'first' can never exist: 'data.customer.name' is a string, which has no fields/ },
      { name: 'a field of a number', source: 'data.total.value', offset: 11, message: /'data.total' is a number/ },
      { name: 'below additionalProperties with a schema', source: 'data.tags.color.hue', offset: 16, message: /'data.tags.color' is a string/ },
      { name: 'a name matching no pattern where others are closed', source: 'data.attrs.width', offset: 11, message: /'width' can never exist/ },
      { name: 'a quoted name', source: 'data.`order idd`', offset: 5, message: /'order idd'.*did you mean 'order id'/ },
      { name: 'in $exists too (it would always be false)', source: '$exists(data.totl)', offset: 13, message: /did you mean 'total'/ },
      { name: 'anyOf: no branch declares it', source: 'b.y', offset: 2, input: shapeOf({ type: 'object', additionalProperties: false, properties: { b: { anyOf: [{ type: 'string' }, { type: 'object', additionalProperties: false, properties: { x: {} } }] } } }), message: /'y' can never exist in 'b'/ },
      { name: 'allOf: a closed part rules a name out', source: 'c', offset: 0, input: shapeOf({ allOf: [{ type: 'object', additionalProperties: false, properties: { a: {}, b: {} } }, { properties: { c: {} } }] }), message: /'c' can never exist/ },
      { name: 'additionalProperties: false sees only its own properties, not allOf\'s', source: 'a', offset: 0, input: shapeOf({ type: 'object', additionalProperties: false, properties: { b: {} }, allOf: [{ properties: { a: {} } }] }), message: /'a' can never exist/ },
      { name: 'if/then/else: neither branch declares it', source: 'd', offset: 0, input: ifThenElse, message: /'d' can never exist in the event \(it allows 'a', 'b', 'c'\)/ },
      { name: 'additionalProperties: false does not see the properties of then', source: 'b', offset: 0, input: shapeOf({ type: 'object', additionalProperties: false, properties: { a: {} }, if: { properties: { a: { const: 1 } } }, then: { properties: { b: {} } } }), message: /'b' can never exist/ },
      { name: 'the second line of an expression', source: '(\n  $x := data;\n  $x.totl\n)', offset: 21, message: /did you mean 'total'/ },
    ];
    for (const c of invalid) {
      it(c.name, () => {
        const found = errors(c.source, c.input);
        expect(found).toHaveLength(1);
        expect(found[0]!.message).toMatch(c.message);
        expect(found[0]!.offset).toBe(c.offset);
      });
    }
  });

  it('reports each wrong path once, and nothing after it on the same path', () => {
    expect(errors('data.custmer.nme.x & data.custmer.y').map((f) => f.offset)).toEqual([5, 26]);
  });
});

describe('type hints (warnings)', () => {
  const warnings = (source: string) => findings(source).filter((f) => f.severity === 'warning');
  const hints: { source: string; offset: number; message: RegExp }[] = [
    { source: '$uppercase(data.total)', offset: 11, message: /\$uppercase needs a string, but 'data.total' is a number/ },
    { source: 'data.total * data.qty', offset: 13, message: /'\*' needs numbers, but 'data.qty' is a string/ },
    { source: 'data.total ~> $uppercase()', offset: 0, message: /\$uppercase needs a string/ },
    { source: '$sum(data.items.sku)', offset: 5, message: /\$sum needs numbers, but 'data.items.sku' is a string/ },
    { source: '-data.qty', offset: 1, message: /'-' needs a number/ },
    { source: '$round(data.customer.name)', offset: 7, message: /\$round needs a number/ },
  ];
  for (const h of hints) {
    it(h.source, () => {
      const found = warnings(h.source);
      expect(found).toHaveLength(1);
      expect(found[0]!.message).toMatch(h.message);
      expect(found[0]!.offset).toBe(h.offset);
    });
  }
  const fine = [
    '$uppercase(data.customer.name)', 'data.total * 2', '$sum(data.items.price)', '$string(data.total)',
    // number or string: it may fit
    'data.amount * 2', '$uppercase(data.amount)',
    // an array: its items may fit ($uppercase of a one-item array works)
    '$uppercase(data.items)', 'data.meta.x * 2', '"a" & data.total',
    // a user's variable named like a function
    '($uppercase := function($v){ $v }; $uppercase(data.total))',
  ];
  for (const source of fine) it(`no hint: ${source}`, () => expect(warnings(source)).toEqual([]));
});

describe('sink expressions against the transform\'s inferred output', () => {
  const transform = '{ "userId": data.customer.id, "total": data.total, "lines": data.items.{ "sku": sku } }';
  const check = (sites: { path: string[]; source: string; over: 'event' | 'output' }[]) => checkPipelineExpressions(order, sites);

  it('a typo in a sink expression, with did-you-mean from the constructed keys', () => {
    const found = check([
      { path: ['transform'], source: transform, over: 'event' },
      { path: ['sink', 'with', 'audience'], source: 'usrId', over: 'output' },
    ]);
    expect(found).toEqual([{ path: ['sink', 'with', 'audience'], offset: 0, severity: 'error',
      message: "sink.audience: field 'usrId' can never exist in the transform's output (it allows 'userId', 'total', 'lines'); did you mean 'userId'?" }]);
  });

  it('paths into values the transform copied keep their schema', () => {
    const found = check([
      { path: ['transform'], source: transform, over: 'event' },
      { path: ['sinks', '0', 'when'], source: 'total.x or lines.skus', over: 'output' },
    ]);
    expect(found.map((f) => f.message)).toEqual([
      "sinks.0.when: field 'x' can never exist: 'total' is a number, which has no fields",
      "sinks.0.when: field 'skus' can never exist in 'lines' (it allows 'sku'); did you mean 'sku'?",
    ]);
  });

  it('$input is the event', () => {
    const found = check([
      { path: ['transform'], source: transform, over: 'event' },
      { path: ['sinks', '0', 'when'], source: '$input.data.totl > 1', over: 'output' },
    ]);
    expect(found.map((f) => f.message)).toEqual([expect.stringMatching(/'totl' can never exist in '\$input.data'/)]);
  });

  it('without a transform, sink expressions read the event itself', () => {
    const found = check([{ path: ['sink', 'with', 'key'], source: 'data.custmer.id', over: 'output' }]);
    expect(found.map((f) => f.offset)).toEqual([5]);
  });

  const uninferred = [
    '$merge([{ "a": 1 }, data])',
    '{ data.customer.id: data.total }',
    'data.total > 1 ? { "a": 1 } : data.meta',
    '$ ~> | data | { "extra": 1 } |',
  ];
  for (const t of uninferred) {
    it(`nothing claimed where the output cannot be inferred: ${t}`, () => {
      expect(check([
        { path: ['transform'], source: t, over: 'event' },
        { path: ['sink', 'with', 'key'], source: 'anything.at.all', over: 'output' },
      ])).toEqual([]);
    });
  }

  it('a condition between two closed objects is closed too', () => {
    const found = check([
      { path: ['transform'], source: 'data.total > 1 ? { "a": 1 } : data', over: 'event' },
      { path: ['sink', 'with', 'key'], source: 'anything', over: 'output' },
    ]);
    expect(found.map((f) => f.message)).toEqual([expect.stringMatching(/'anything' can never exist in the transform's output \(it allows 'a', 'customer'/)]);
  });

  it('a block ending in an object, and a condition between two objects, are inferred', () => {
    const found = check([
      { path: ['transform'], source: '($t := data.total; data.total > 1 ? { "big": $t } : { "small": $t })', over: 'event' },
      { path: ['sink', 'with', 'key'], source: 'big & small & medium', over: 'output' },
    ]);
    expect(found.map((f) => f.offset)).toEqual([14]);
  });
});

describe('didYouMean', () => {
  it('suggests a close name, case differences first, and nothing when none is close', () => {
    expect(didYouMean('custmer', ['customer', 'total'])).toBe('customer');
    expect(didYouMean('userid', ['users', 'userId'])).toBe('userId');
    expect(didYouMean('qqq', ['customer', 'total'])).toBeUndefined();
  });
});
