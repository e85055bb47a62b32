import { createHash } from 'node:crypto';
import { basename, join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  compilePipelineText, loadPipeline, loadPipelines, PIPELINE_DEFAULTS,
  type CompiledPipeline, type LoadContext,
} from '../../../engine/config/load-pipeline.ts';
import { PipelineInvalidError, type Diagnostic } from '../../../engine/errors.ts';
import { SinkRegistry } from '../../../engine/plugins/sink-registry.ts';
import { rejection } from '../support/rejection.ts';
import { loadContext, tempDirs } from '../support/temp-dir.ts';

const EVENT_SCHEMA_ID = 'https://synapse.test/schemas/order-event.json';
const orderEventSchema = JSON.stringify({
  $schema: 'https://json-schema.org/draft/2020-12/schema',
  $id: EVENT_SCHEMA_ID,
  type: 'object',
  required: ['event'],
  properties: { event: { type: 'string' } },
}, null, 2);

/** The sink types a load context knows, as 'unknown sink type' lists them. */
const KNOWN_SINKS = SinkRegistry.withBuiltins().names().join(', ');

const dirs = tempDirs('synapse-load-pipeline-');
let schemaDir: string;
let shared: LoadContext;

beforeAll(async () => {
  schemaDir = await dirs.make({ 'order-event.json': orderEventSchema });
  shared = await loadContext(schemaDir);
});
afterAll(() => dirs.cleanup());

/**
 * The suite's schemas and sinks with the given environment. `fresh` builds a new registry, for a
 * case that adds a path-referenced schema to it.
 */
async function context(env: NodeJS.ProcessEnv = {}, fresh = false): Promise<LoadContext> {
  return fresh ? loadContext(schemaDir, env) : { ...shared, env };
}

/** `FILE:LINE:COL message` with the file shown by base name, as the cases below spell it. */
function show(d: Diagnostic): string {
  return `${basename(d.file)}:${d.line}:${d.col} ${d.message}`;
}

/** Writes `yaml` as `file` in a fresh directory and loads it; returns the error thrown. */
async function loadError(yaml: string, opts: { file?: string; env?: NodeJS.ProcessEnv } = {}): Promise<PipelineInvalidError> {
  const file = opts.file ?? 'p.yaml';
  const dir = await dirs.make({ [file]: yaml });
  return rejection(loadPipeline(join(dir, file), await context(opts.env)), PipelineInvalidError);
}

async function load(yaml: string, opts: { file?: string; env?: NodeJS.ProcessEnv; files?: Record<string, string> } = {}): Promise<CompiledPipeline> {
  const file = opts.file ?? 'p.yaml';
  const dir = await dirs.make({ ...opts.files, [file]: yaml });
  return loadPipeline(join(dir, file), await context(opts.env, opts.files !== undefined));
}

/**
 * Asserts a diagnostic matches `expected`, written `FILE:LINE:COL message-substring`: the location
 * must be exact, the message must contain the substring.
 */
function expectDiagnostic(actual: Diagnostic | undefined, expected: string): void {
  expect(actual, `missing diagnostic ${expected}`).toBeDefined();
  const space = expected.indexOf(' ');
  const where = expected.slice(0, space);
  const message = expected.slice(space + 1);
  const shown = show(actual!);
  expect(shown.slice(0, shown.indexOf(' ')), `location of: ${shown}`).toBe(where);
  expect(actual!.message).toContain(message);
}

interface InvalidCase {
  name: string;
  yaml: string;
  env?: NodeJS.ProcessEnv;
  /** The one diagnostic expected, `FILE:LINE:COL message-substring`. */
  error: string;
}

// Lines and columns are 1-based; each case's comment names the token the error must point at.
const invalid: InvalidCase[] = [
  {
    name: 'YAML syntax error (unclosed flow map) points where the parser gave up',
    yaml: 'name: a\nsource: { stream: s\nsink: { type: log }\n',
    error: 'p.yaml:3:1 Flow map in block collection must be sufficiently indented and end with a }',
  },
  {
    name: 'YAML syntax error (bad indentation)',
    yaml: 'name: a\nsource:\n  stream: s\n bad: 1\nsink: { type: log }\n',
    error: 'p.yaml:4:1 All mapping items must start at the same column',
  },
  {
    name: 'duplicate key points at the second occurrence',
    yaml: 'name: a\nsource: { stream: s }\nname: b\nsink: { type: log }\n',
    error: 'p.yaml:3:1 Map keys must be unique',
  },
  {
    name: 'unknown top-level key points at the key',
    yaml: 'name: a\nsource: { stream: s }\nfiltr: event = "x"\nsink: { type: log }\n',
    error: "p.yaml:3:1 unknown key 'filtr' in the file (did you mean 'filter'?)",
  },
  {
    name: 'unknown key inside source',
    yaml: 'source:\n  stream: s\n  grop: g\nsink: { type: log }\n',
    error: "p.yaml:3:3 unknown key 'grop' in 'source' (did you mean 'group'?)",
  },
  {
    name: 'unknown key inside retry',
    yaml: 'source: { stream: s }\nsink: { type: log }\nretry:\n  attempts: 2\n  delay: 5\n',
    error: "p.yaml:5:3 unknown key 'delay' in 'retry'",
  },
  {
    name: 'unknown key inside validate',
    yaml: `source: { stream: s }\nsink: { type: log }\nvalidate:\n  schema: ${EVENT_SCHEMA_ID}\n  on_invalud: drop\n`,
    error: "p.yaml:5:3 unknown key 'on_invalud' in 'validate'",
  },
  {
    name: 'unknown key inside a sink',
    yaml: 'source: { stream: s }\nsink:\n  type: log\n  wiht: { level: info }\n',
    error: "p.yaml:4:3 unknown key 'wiht' in 'sink'",
  },
  {
    name: 'on_invalid outside its enum points at the value',
    yaml: `source: { stream: s }\nsink: { type: log }\nvalidate:\n  schema: ${EVENT_SCHEMA_ID}\n  on_invalid: keep\n`,
    error: `p.yaml:5:15 'validate.on_invalid' must be one of: "dlq", "drop"`,
  },
  {
    name: 'no source at all',
    yaml: 'name: a\nsink: { type: log }\n',
    error: "p.yaml:1:1 the file is missing required key 'source'",
  },
  {
    name: 'a document that is not a mapping',
    yaml: '- source\n- sink\n',
    error: 'p.yaml:1:1 a pipeline file must be a YAML mapping',
  },
  {
    name: 'a source with neither stream nor schedule',
    yaml: 'source: {}\nsink: { type: log }\n',
    error: 'p.yaml:1:9 source needs stream: (a Redis stream key) or schedule: (an interval such as 60s)',
  },
  {
    name: 'validate on a schedule source',
    yaml: `source: { schedule: 60s }\nvalidate:\n  schema: ${EVENT_SCHEMA_ID}\nsink: { type: log }\n`,
    error: 'p.yaml:3:3 a schedule source produces tick events; validate: does not apply',
  },
  {
    name: 'a schema path that does not exist',
    yaml: 'source: { stream: s }\nvalidate:\n  schema: ./nope.json\nsink: { type: log }\n',
    error: "p.yaml:3:11 unknown schema './nope.json': not a $id in the schema directory nor a file",
  },
  {
    name: 'a name that is not a valid pipeline name',
    yaml: 'name: "bad name"\nsource: { stream: s }\nsink: { type: log }\n',
    error: `p.yaml:1:7 'name' must match pattern "^[A-Za-z0-9][A-Za-z0-9_.-]*$"`,
  },
  {
    name: 'sink and sinks both given points at sinks',
    yaml: 'source: { stream: s }\nsink: { type: log }\nsinks:\n  - type: log\n',
    error: 'p.yaml:3:1 use either sink: or sinks:, not both',
  },
  {
    name: 'no sink',
    yaml: 'source: { stream: s }\nfilter: "true"\n',
    error: 'p.yaml:1:1 the pipeline has no sink',
  },
  {
    name: 'unknown sink type points at the type value',
    yaml: 'source: { stream: s }\nsink:\n  type: lgo\n',
    error: `p.yaml:3:9 unknown sink type 'lgo' (did you mean 'log'? known: ${KNOWN_SINKS})`,
  },
  {
    name: 'unknown sink type in a sinks list',
    yaml: 'source: { stream: s }\nsinks:\n  - type: log\n  - type: nope\n',
    error: "p.yaml:4:11 unknown sink type 'nope'",
  },
  {
    name: 'publish without stream points at its with: block',
    yaml: 'source: { stream: s }\nsink:\n  type: publish\n  with:\n    maxlen: 5\n',
    error: "p.yaml:5:5 publish sink 'with' is missing required key 'stream'",
  },
  {
    name: 'publish with no with: at all points at the sink',
    yaml: 'source: { stream: s }\nsink:\n  type: publish\n',
    error: "p.yaml:3:3 publish sink 'with' is missing required key 'stream'",
  },
  {
    name: 'publish with an unknown key points at that key',
    yaml: 'source: { stream: s }\nsink:\n  type: publish\n  with:\n    stream: out\n    strem: x\n',
    error: "p.yaml:6:5 unknown key 'strem' in publish sink 'with' (did you mean 'stream'?)",
  },
  {
    name: 'publish with a wrongly typed value points at the value',
    yaml: 'source: { stream: s }\nsinks:\n  - type: publish\n    with: { stream: out, maxlen: lots }\n',
    error: "p.yaml:4:34 publish sink 'with'.maxlen must be integer",
  },
  {
    name: 'log with a level outside its enum',
    yaml: 'source: { stream: s }\nsink: { type: log, with: { level: loud } }\n',
    error: "p.yaml:2:35 log sink 'with'.level must be one of",
  },
  {
    name: 'duplicate sink id points at the second id',
    yaml: 'source: { stream: s }\nsinks:\n  - { type: log, id: out }\n  - { type: log, id: out }\n',
    error: "p.yaml:4:22 duplicate sink id 'out'",
  },
  {
    name: 'bad JSONata in a plain-scalar filter points at the offending token',
    // `event = = "x"`: the second `=` is at offset 8; the scalar starts at column 9.
    yaml: 'source: { stream: s }\nfilter: event = = "x"\nsink: { type: log }\n',
    error: 'p.yaml:2:17 filter: invalid JSONata: The symbol "=" cannot be used as a unary operator',
  },
  {
    name: 'bad JSONata in a double-quoted filter accounts for the quote',
    yaml: 'source: { stream: s }\nfilter: "event = = 1"\nsink: { type: log }\n',
    error: 'p.yaml:2:18 filter: invalid JSONata',
  },
  {
    name: 'bad JSONata in a one-line transform block scalar',
    yaml: 'source: { stream: s }\ntransform: |\n  data.(a + )\nsink: { type: log }\n',
    // `data.(a + )`: the `)` is at offset 10; content starts at column 3 of line 3.
    error: 'p.yaml:3:13 transform: invalid JSONata: The symbol ")" cannot be used as a unary operator',
  },
  {
    name: 'bad JSONata on line 3 of a multi-line transform block scalar points at the token',
    // The `)` is on file line 5 (`    "b": )`), column 10.
    yaml: 'source: { stream: s }\ntransform: |\n  {\n    "a": data.x,\n    "b": )\n  }\nsink: { type: log }\n',
    error: 'p.yaml:5:10 transform: invalid JSONata: The symbol ")" cannot be used as a unary operator',
  },
  {
    name: 'bad JSONata in a sink when: points into the when string',
    yaml: 'source: { stream: s }\nsinks:\n  - type: log\n    when: "a = = 1"\n',
    error: 'p.yaml:4:16 sinks.0.when: invalid JSONata',
  },
  {
    name: '$eval refused in a filter',
    yaml: 'source: { stream: s }\nfilter: $eval(payload)\nsink: { type: log }\n',
    error: 'p.yaml:2:9 filter: $eval is not allowed: it would run event data as code',
  },
  {
    name: '$eval refused as a path step in a quoted filter',
    yaml: 'source: { stream: s }\nfilter: "data.$eval(code)"\nsink: { type: log }\n',
    error: 'p.yaml:2:15 filter: $eval is not allowed',
  },
  {
    name: '$eval refused on line 2 of a multi-line transform points at $eval',
    // `    "a": x.$eval(y)`: `$eval` starts at column 12 of file line 4.
    yaml: 'source: { stream: s }\ntransform: |\n  {\n    "a": x.$eval(y)\n  }\nsink: { type: log }\n',
    error: 'p.yaml:4:12 transform: $eval is not allowed',
  },
  {
    name: 'unknown schema $id points at the schema value',
    yaml: 'source: { stream: s }\nvalidate:\n  schema: https://nope.test/x.json\nsink: { type: log }\n',
    error: `p.yaml:3:11 unknown schema 'https://nope.test/x.json': not a $id in the schema directory nor a file in the schema or pipeline directory (known: ${EVENT_SCHEMA_ID})`,
  },
  {
    name: '${VAR} unset and without default is one error at the value',
    yaml: 'source:\n  stream: ${SYNAPSE_TEST_UNSET}\nsink: { type: log }\n',
    error: 'p.yaml:2:11 environment variable SYNAPSE_TEST_UNSET is not set (write ${SYNAPSE_TEST_UNSET:-default} to give a default)',
  },
  {
    name: '${VAR} set to the empty string counts as unset',
    yaml: 'source: { stream: s }\nsink:\n  type: publish\n  with: { stream: "out-${SYNAPSE_TEST_EMPTY}" }\n',
    env: { SYNAPSE_TEST_EMPTY: '' },
    error: 'p.yaml:4:19 environment variable SYNAPSE_TEST_EMPTY is not set',
  },
  {
    name: 'schedule and stream together points at schedule',
    yaml: 'source:\n  stream: s\n  schedule: 60s\nsink: { type: log }\n',
    error: 'p.yaml:3:3 source has both stream: and schedule:; a pipeline reads one',
  },
  {
    name: 'a stream-only key on a schedule source points at the key',
    yaml: 'source:\n  schedule: 60s\n  batch: 5\nsink: { type: log }\n',
    error: "p.yaml:3:3 'source.batch' applies to stream sources, not to schedule:",
  },
  {
    name: 'source.envelope on a schedule source points at the key',
    yaml: 'source:\n  schedule: 60s\n  envelope: wrap\nsink: { type: log }\n',
    error: "p.yaml:3:3 'source.envelope' applies to stream sources, not to schedule:",
  },
  {
    name: 'source.envelope is keep or wrap',
    yaml: 'source:\n  stream: s\n  envelope: flat\nsink: { type: log }\n',
    error: "p.yaml:3:13 'source.envelope' must be one of: \"keep\", \"wrap\"",
  },
  {
    name: 'a schedule that is not a duration',
    yaml: 'source:\n  schedule: every minute\nsink: { type: log }\n',
    error: "p.yaml:2:13 'source.schedule' must match pattern",
  },
  {
    name: 'wrong type: batch given as a string points at the value',
    yaml: 'source:\n  stream: s\n  batch: "x"\nsink: { type: log }\n',
    error: "p.yaml:3:10 'source.batch' must be integer",
  },
  {
    name: 'wrong type: retry.attempts out of range',
    yaml: 'source: { stream: s }\nsink: { type: log }\nretry: { attempts: 0 }\n',
    error: "p.yaml:3:20 'retry.attempts' must be >= 1",
  },
  {
    name: 'wrong type: sinks given as a mapping',
    yaml: 'source: { stream: s }\nsinks:\n  type: log\n',
    error: "p.yaml:3:3 'sinks' must be array",
  },
];

interface ValidCase {
  name: string;
  yaml: string;
  file?: string;
  env?: NodeJS.ProcessEnv;
  files?: Record<string, string>;
  expect: (p: CompiledPipeline) => void;
}

const valid: ValidCase[] = [
  {
    name: 'a ${VAR} standing for a number is taken as one (batch: ${BATCH:-100})',
    yaml: 'source: { stream: s, batch: "${BATCH:-100}", block_ms: "${BLOCK}" }\nsink: { type: log }\n',
    env: { BLOCK: '250' },
    expect: (p) => {
      expect(p.source).toMatchObject({ batch: 100, blockMs: 250 });
    },
  },
  {
    name: 'minimal file: name from the file name, group = name, dlq = <stream>:dlq, defaults filled in',
    file: 'orders-audit.yaml',
    yaml: 'source: { stream: orders }\nsink: { type: log }\n',
    expect: (p) => {
      expect(p.name).toBe('orders-audit');
      expect(p.source).toEqual({
        kind: 'stream', stream: 'orders', group: 'orders-audit', start: '$', codec: 'json', envelope: 'keep', batch: 100,
        blockMs: 1000, claimIdleMs: 30_000, maxDeliveries: 10,
      });
      expect(p.dlq).toBe('orders:dlq');
      expect(p.retry).toEqual({ attempts: 3, backoff: 'exponential', delayMs: 200, maxDelayMs: 30_000 });
      expect(p.enabled).toBe(true);
      expect(p.expressionTimeoutMs).toBe(100);
      expect(p.maxEventBytes).toBe(PIPELINE_DEFAULTS.maxEventBytes);
      expect(p.validate).toBeUndefined();
      expect(p.filter).toBeUndefined();
      expect(p.transform).toBeUndefined();
      // The sink's configSchema defaults are applied to its with: block.
      expect(p.sinks.map((s) => ({ id: s.id, type: s.type, config: s.config, when: s.when }))).toEqual([
        { id: 'log', type: 'log', config: { level: 'info' }, when: undefined },
      ]);
    },
  },
  {
    name: 'a .yml file name gives the name too',
    file: 'audit.yml',
    yaml: 'source: { stream: orders }\nsink: { type: log }\n',
    expect: (p) => expect([p.name, p.source.kind === 'stream' && p.source.group]).toEqual(['audit', 'audit']),
  },
  {
    name: 'an explicit name is the default group',
    yaml: 'name: order-audit\nsource: { stream: orders }\nsink: { type: log }\n',
    expect: (p) => {
      expect(p.name).toBe('order-audit');
      expect(p.source).toMatchObject({ kind: 'stream', group: 'order-audit' });
    },
  },
  {
    name: 'everything given explicitly is kept',
    yaml: [
      'name: full', 'description: all keys', 'enabled: false',
      'source:', '  stream: orders', '  group: g1', '  start: "0"', '  codec: fields', '  envelope: wrap', '  batch: 7',
      '  block_ms: 50', '  claim_idle_ms: 5000', '  max_deliveries: 4',
      `validate: { schema: "${EVENT_SCHEMA_ID}", on_invalid: drop }`,
      'filter: event = "order-placed"',
      'transform: "{ \\"id\\": data.id }"',
      'sink: { type: publish, with: { stream: out, maxlen: 10 } }',
      'retry: { attempts: 7, backoff: fixed, delay_ms: 10, max_delay_ms: 20 }',
      'dlq: dead-letters', 'expression_timeout_ms: 250', 'max_event_bytes: 4096', '',
    ].join('\n'),
    expect: (p) => {
      expect(p).toMatchObject({
        name: 'full', description: 'all keys', enabled: false, dlq: 'dead-letters',
        expressionTimeoutMs: 250, maxEventBytes: 4096,
        retry: { attempts: 7, backoff: 'fixed', delayMs: 10, maxDelayMs: 20 },
        source: { kind: 'stream', stream: 'orders', group: 'g1', start: '0', codec: 'fields', envelope: 'wrap', batch: 7, blockMs: 50, claimIdleMs: 5000, maxDeliveries: 4 },
      });
      expect(p.validate).toMatchObject({ schemaId: EVENT_SCHEMA_ID, onInvalid: 'drop' });
      expect(p.validate!.schemaFile).toBe(join(schemaDir, 'order-event.json'));
      expect(p.filter!.source).toBe('event = "order-placed"');
      expect(p.transform!.source).toBe('{ "id": data.id }');
      expect(p.sinks.map((s) => [s.id, s.config])).toEqual([['publish', { stream: 'out', maxlen: 10 }]]);
    },
  },
  {
    name: 'validate.on_invalid defaults to dlq',
    yaml: `source: { stream: s }\nvalidate: { schema: "${EVENT_SCHEMA_ID}" }\nsink: { type: log }\n`,
    expect: (p) => {
      expect(p.validate!.onInvalid).toBe('dlq');
      expect(p.validate!.validator({ event: 'x' })).toBe(true);
      expect(p.validate!.validator({})).toBe(false);
    },
  },
  {
    name: 'validate.schema as a path relative to the pipeline file',
    yaml: 'source: { stream: s }\nvalidate: { schema: ./local/ping.json }\nsink: { type: log }\n',
    files: { 'local/ping.json': JSON.stringify({ $id: 'https://synapse.test/schemas/ping.json', type: 'object', required: ['ping'] }) },
    expect: (p) => {
      expect(p.validate!.schemaId).toBe('https://synapse.test/schemas/ping.json');
      expect(p.validate!.validator({ ping: 1 })).toBe(true);
      expect(p.validate!.validator({ pong: 1 })).toBe(false);
    },
  },
  {
    name: '${VAR:-default} takes the default when unset',
    yaml: 'source:\n  stream: ${SYNAPSE_TEST_STREAM:-orders}\nsink: { type: log }\n',
    expect: (p) => expect(p.source).toMatchObject({ stream: 'orders', group: 'p' }),
  },
  {
    name: '${VAR:-default} takes the environment value when set, and ${VAR} inside a longer string',
    yaml: 'source:\n  stream: ${SYNAPSE_TEST_STREAM:-orders}\nsink: { type: publish, with: { stream: "copy-${SYNAPSE_TEST_STREAM}-x" } }\n',
    env: { SYNAPSE_TEST_STREAM: 'payments' },
    expect: (p) => {
      expect(p.source).toMatchObject({ stream: 'payments' });
      expect(p.sinks[0]!.config).toEqual({ stream: 'copy-payments-x' });
      expect(p.dlq).toBe('payments:dlq');
    },
  },
  {
    name: '$${X} is a literal ${X}, never looked up',
    yaml: 'description: "costs $${PRICE} each"\nsource: { stream: "s-$${X}" }\nsink: { type: log }\n',
    env: { PRICE: '3', X: 'nope' },
    expect: (p) => {
      expect(p.description).toBe('costs ${PRICE} each');
      expect(p.source).toMatchObject({ stream: 's-${X}' });
    },
  },
  {
    name: 'a schedule source: tick pipeline with its own DLQ name',
    file: 'heartbeat.yaml',
    yaml: 'source: { schedule: 90s }\nsink: { type: log }\n',
    expect: (p) => {
      expect(p.source).toEqual({ kind: 'schedule', every: '90s', everyMs: 90_000, codec: 'json', envelope: 'keep' });
      expect(p.dlq).toBe('schedule:heartbeat:dlq');
    },
  },
  {
    name: 'sinks get ids: the type, then type#2; an explicit id wins; when: is compiled',
    yaml: [
      'source: { stream: s }',
      'sinks:',
      '  - { type: publish, with: { stream: a } }',
      '  - { type: publish, with: { stream: b }, when: "kind = \'b\'" }',
      '  - { type: log, id: audit }',
      '',
    ].join('\n'),
    expect: (p) => {
      expect(p.sinks.map((s) => s.id)).toEqual(['publish', 'publish#2', 'audit']);
      expect(p.sinks.map((s) => s.when?.source)).toEqual([undefined, "kind = 'b'", undefined]);
      expect(p.sinks[2]!.definition.name).toBe('log');
    },
  },
  {
    name: 'YAML anchors and aliases within the limit resolve',
    yaml: 'source: { stream: orders }\nsinks:\n  - &out { type: publish, with: { stream: copies } }\n  - *out\n',
    expect: (p) => {
      expect(p.sinks.map((s) => [s.id, s.config])).toEqual([['publish', { stream: 'copies' }], ['publish#2', { stream: 'copies' }]]);
    },
  },
];

describe('compiling a pipeline file', () => {
  describe('valid', () => {
    for (const c of valid) {
      it(c.name, async () => {
        const p = await load(c.yaml, { file: c.file, env: c.env, files: c.files });
        c.expect(p);
      });
    }
  });

  describe('invalid: every problem reported as FILE:LINE:COL', () => {
    for (const c of invalid) {
      it(c.name, async () => {
        const err = await loadError(c.yaml, { env: c.env });
        expect(err.code).toBe('SYN_PIPELINE_INVALID');
        expectDiagnostic(err.diagnostics[0], c.error);
        // One mistake, one message: a knock-on error at the same spot would only confuse.
        expect(err.diagnostics.map(show)).toHaveLength(1);
        // The error message itself is the diagnostics, one per line.
        expect(err.message.split('\n')).toHaveLength(err.diagnostics.length);
        expect(err.message).toContain(`:${err.diagnostics[0]!.line}:${err.diagnostics[0]!.col} `);
      });
    }
  });

  it('names the file by its full path in each diagnostic', async () => {
    const dir = await dirs.make({ 'p.yaml': 'source: { stream: s }\nfiltr: 1\nsink: { type: log }\n' });
    const err = await rejection(loadPipeline(join(dir, 'p.yaml'), await context()), PipelineInvalidError);
    expect(err.diagnostics).toEqual([{ file: join(dir, 'p.yaml'), line: 2, col: 1, message: "unknown key 'filtr' in the file (did you mean 'filter'?)" }]);
  });

  it('reports every compile-stage problem of a file, in file order', async () => {
    const err = await loadError([
      'source: { stream: s }',
      'filter: "a = = 1"',
      'transform: "$eval(x)"',
      'sinks:',
      '  - type: lgo',
      '  - type: publish',
      '    with: { stream: out, strem: x }',
      '',
    ].join('\n'));
    expect(err.diagnostics.map(show)).toEqual([
      'p.yaml:2:14 filter: invalid JSONata: The symbol "=" cannot be used as a unary operator',
      'p.yaml:3:13 transform: $eval is not allowed: it would run event data as code',
      `p.yaml:5:11 unknown sink type 'lgo' (did you mean 'log'? known: ${KNOWN_SINKS})`,
      "p.yaml:7:26 unknown key 'strem' in publish sink 'with' (did you mean 'stream'?)",
    ]);
  });

  it('reports every shape problem of a file at once', async () => {
    const err = await loadError('source:\n  stream: s\n  grop: g\n  batch: x\nfiltr: 1\nretry: { attempts: 0 }\nsink: { type: log }\n');
    expect(err.diagnostics.map(show)).toEqual([
      "p.yaml:3:3 unknown key 'grop' in 'source' (did you mean 'group'?)",
      "p.yaml:4:10 'source.batch' must be integer",
      "p.yaml:5:1 unknown key 'filtr' in the file (did you mean 'filter'?)",
      "p.yaml:6:20 'retry.attempts' must be >= 1",
    ]);
  });

  it('reports shape problems and expression/sink problems of the same file together', async () => {
    // An unknown key in one part must not hide a bad filter or an unknown sink elsewhere (SPEC §3:
    // every error in a file is reported).
    const err = await loadError('source:\n  stream: s\n  grop: g\nfilter: "a = = 1"\nsink: { type: lgo }\n');
    expect(err.diagnostics.map(show)).toEqual([
      "p.yaml:3:3 unknown key 'grop' in 'source' (did you mean 'group'?)",
      'p.yaml:4:14 filter: invalid JSONata: The symbol "=" cannot be used as a unary operator',
      `p.yaml:5:15 unknown sink type 'lgo' (did you mean 'log'? known: ${KNOWN_SINKS})`,
    ]);
  });

  it('compilePipelineText compiles text as if read from the file, with the hash of the text', async () => {
    const text = 'source: { stream: orders }\nsink: { type: log }\n';
    const p = await compilePipelineText('/virtual/dir/from-text.yaml', text, await context());
    expect(p.name).toBe('from-text');
    expect(p.file).toBe('/virtual/dir/from-text.yaml');
    expect(p.hash).toBe(createHash('sha256').update(text).digest('hex'));
  });

  it('compilePipelineText reports problems against the given file name', async () => {
    const err = await rejection(compilePipelineText('/virtual/put.yaml', 'source: { stream: s }\nsink: { type: nope }\n', await context()), PipelineInvalidError);
    expect(err.diagnostics.map(show)).toEqual([`put.yaml:2:15 unknown sink type 'nope' (known: ${KNOWN_SINKS})`]);
  });

  it('a missing file is a PipelineInvalidError at 1:1', async () => {
    const dir = await dirs.make();
    const err = await rejection(loadPipeline(join(dir, 'gone.yaml'), await context()), PipelineInvalidError);
    expect(err.diagnostics).toHaveLength(1);
    expectDiagnostic(err.diagnostics[0], 'gone.yaml:1:1 cannot read file: ENOENT');
  });
});

describe('loadPipelines', () => {
  const good = (name: string, stream = 'orders') => `name: ${name}\nsource: { stream: ${stream} }\nsink: { type: log }\n`;

  it('loads every pipeline file of a directory, sorted, ignoring test files and other files', async () => {
    const dir = await dirs.make({
      'b.yaml': good('bee'),
      'a.yml': good('ay'),
      'a.test.yaml': 'pipeline: ay\ncases: []\n',
      'notes.md': '# not a pipeline',
    });
    const loaded = await loadPipelines([dir], await context());
    expect(loaded.pipelines.map((p) => p.name)).toEqual(['ay', 'bee']);
    expect(loaded.errors).toEqual([]);
    expect(loaded.rejected.size).toBe(0);
  });

  it('rejects an invalid file whole and still loads the others', async () => {
    const dir = await dirs.make({ 'a.yaml': good('ay'), 'bad.yaml': 'source: { stream: s }\nsink: { type: nope }\n' });
    const loaded = await loadPipelines([dir], await context());
    expect(loaded.pipelines.map((p) => p.name)).toEqual(['ay']);
    expect([...loaded.rejected.keys()]).toEqual([join(dir, 'bad.yaml')]);
    expect(loaded.errors.map(show)).toEqual([`bad.yaml:2:15 unknown sink type 'nope' (known: ${KNOWN_SINKS})`]);
  });

  it('accepts single files as well as directories, and skips paths that do not exist', async () => {
    const dir = await dirs.make({ 'a.yaml': good('ay'), 'b.yaml': good('bee') });
    const loaded = await loadPipelines([join(dir, 'b.yaml'), join(dir, 'missing-dir')], await context());
    expect(loaded.pipelines.map((p) => p.name)).toEqual(['bee']);
  });

  it('two files claiming the same name are both an error, each naming the other file', async () => {
    // The name is on line 1 of both, so 1:1 is also where the name is written.
    const dir = await dirs.make({ 'a.yaml': good('dup'), 'b.yaml': good('dup', 'payments'), 'c.yaml': good('other') });
    const loaded = await loadPipelines([dir], await context());
    expect(loaded.pipelines.map((p) => p.name)).toEqual(['other']);
    expect([...loaded.rejected.keys()].sort()).toEqual([join(dir, 'a.yaml'), join(dir, 'b.yaml')]);
    const a = loaded.rejected.get(join(dir, 'a.yaml'))!;
    const b = loaded.rejected.get(join(dir, 'b.yaml'))!;
    expectDiagnostic(a[0], `a.yaml:1:1 duplicate pipeline name 'dup', also in ${join(dir, 'b.yaml')}`);
    expectDiagnostic(b[0], `b.yaml:1:1 duplicate pipeline name 'dup', also in ${join(dir, 'a.yaml')}`);
  });

  it('a name taken from the file name can clash with an explicit name', async () => {
    const dir = await dirs.make({ 'dup.yaml': 'source: { stream: s }\nsink: { type: log }\n', 'z.yaml': good('dup') });
    const loaded = await loadPipelines([dir], await context());
    expect(loaded.pipelines.filter((p) => p.name === 'dup').length).toBeLessThan(2);
    expect(loaded.errors.some((d) => d.message.startsWith("duplicate pipeline name 'dup', also in "))).toBe(true);
  });
});

describe('help while writing (issue #12, item 5)', () => {
  it('an unset ${VAR} is reported once, at its first use, and causes no knock-on errors', async () => {
    const yaml = [
      'name: p',
      'source:',
      '  stream: s',
      '  batch: ${SYNAPSE_TEST_UNSET_BATCH}',
      'sink:',
      '  type: http',
      '  with: { url: "${SYNAPSE_TEST_UNSET_URL}" }',
      'description: ${SYNAPSE_TEST_UNSET_BATCH} events a batch',
      '',
    ].join('\n');
    const err = await loadError(yaml);
    // Without the rule: `'source.batch' must be integer` and the http sink's url pattern as well.
    expect(err.diagnostics.map(show)).toEqual([
      'p.yaml:4:10 environment variable SYNAPSE_TEST_UNSET_BATCH is not set (write ${SYNAPSE_TEST_UNSET_BATCH:-default} to give a default); also used at 8:14',
      'p.yaml:7:16 environment variable SYNAPSE_TEST_UNSET_URL is not set (write ${SYNAPSE_TEST_UNSET_URL:-default} to give a default)',
    ]);
  });

  it.each([
    { what: 'a misspelt top-level key', yaml: 'name: p\nsource:\n  stream: s\ntransfrom: "x"\nsink:\n  type: log\n', hint: "unknown key 'transfrom' in the file (did you mean 'transform'?)" },
    { what: 'a misspelt sink type', yaml: 'name: p\nsource:\n  stream: s\nsink:\n  type: publsh\n', hint: "unknown sink type 'publsh' (did you mean 'publish'?" },
    { what: 'a misspelt schema $id', yaml: `name: p\nsource:\n  stream: s\nvalidate:\n  schema: ${EVENT_SCHEMA_ID.replace('order', 'ordr')}\nsink:\n  type: log\n`, hint: `(did you mean '${EVENT_SCHEMA_ID}'?)` },
  ])('$what gets a "did you mean" with the nearest known name', async ({ yaml, hint }) => {
    const err = await loadError(yaml);
    expect(err.diagnostics.map((d) => d.message).join('\n')).toContain(hint);
  });

  it('a name far from every known one gets no guess', async () => {
    const err = await loadError('name: p\nsource:\n  stream: s\nsink:\n  type: kafka\n');
    expect(err.diagnostics[0]!.message).not.toContain('did you mean');
  });
});
