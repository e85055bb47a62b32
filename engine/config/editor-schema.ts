import { pipelineFileSchema } from './pipeline-file-schema.ts';
import { PIPELINE_DEFAULTS } from './load-pipeline.ts';
import { DEFAULT_EXPRESSION_TIMEOUT_MS } from '../expr/compile-expression.ts';
import { testFileSchema } from '../testing/test-file-schema.ts';
import type { SinkDefinition } from '../plugins/define-sink.ts';

/**
 * JSON Schemas for editors (`synapse schema pipeline`, `synapse schema test`): the loader's own
 * schemas written in draft-07, the dialect yaml-language-server reads, with the loader's defaults
 * and descriptions for hover, and each sink's `with:` block checked and completed against the
 * configSchema of the sink its `type` names.
 */

type Json = Record<string, unknown>;

const DRAFT_07 = 'http://json-schema.org/draft-07/schema#';
export const PIPELINE_EDITOR_SCHEMA_ID = 'https://synapse.dev/schemas/editor/pipeline.schema.json';
export const TEST_EDITOR_SCHEMA_ID = 'https://synapse.dev/schemas/editor/pipeline-test.schema.json';

/** The loader's defaults, by the path of the key in a pipeline file. */
const DEFAULTS: Record<string, unknown> = {
  'enabled': true,
  'source.start': PIPELINE_DEFAULTS.start,
  'source.codec': PIPELINE_DEFAULTS.codec,
  'source.envelope': PIPELINE_DEFAULTS.envelope,
  'source.batch': PIPELINE_DEFAULTS.batch,
  'source.block_ms': PIPELINE_DEFAULTS.blockMs,
  'source.claim_idle_ms': PIPELINE_DEFAULTS.claimIdleMs,
  'source.max_deliveries': PIPELINE_DEFAULTS.maxDeliveries,
  'validate.on_invalid': 'dlq',
  'retry.attempts': PIPELINE_DEFAULTS.retry.attempts,
  'retry.backoff': PIPELINE_DEFAULTS.retry.backoff,
  'retry.delay_ms': PIPELINE_DEFAULTS.retry.delayMs,
  'retry.max_delay_ms': PIPELINE_DEFAULTS.retry.maxDelayMs,
  'expression_timeout_ms': DEFAULT_EXPRESSION_TIMEOUT_MS,
  'max_event_bytes': PIPELINE_DEFAULTS.maxEventBytes,
};

/** What a scalar key may hold instead of its value: the loader interpolates it at load. */
const INTERPOLATION = { type: 'string', pattern: '\\$\\{[A-Za-z_][A-Za-z0-9_]*(:-[^}]*)?\\}', description: '${VAR} or ${VAR:-default}, read from the environment when the pipeline loads.' };

/** The pipeline-file schema, with every registered sink's `with:` block. */
export function pipelineEditorSchema(sinks: SinkDefinition<any>[]): Json {
  const schema = toDraft07(structuredClone(pipelineFileSchema) as unknown as Json) as Json & { properties: Record<string, Json> };
  schema.$id = PIPELINE_EDITOR_SCHEMA_ID;
  schema.title = 'Synapse pipeline';
  schema.description = 'A Synapse pipeline file: a stream (or a schedule), schema validation, a JSONata filter and transform, and sinks.';
  withDefaults(schema, []);

  const sorted = [...sinks].sort((a, b) => a.name.localeCompare(b.name));
  const sink = schema.properties.sink as Json & { properties: Record<string, Json> };
  sink.properties.type = {
    ...sink.properties.type,
    enum: sorted.map((s) => s.name),
    description: `The sink plugin:\n${sorted.map((s) => `- ${s.name}: ${s.description}`).join('\n')}`,
  };
  sink.allOf = sorted.map((def) => {
    const config = toDraft07(structuredClone(def.configSchema)) as Json;
    const then: Json = {
      properties: {
        with: {
          ...config,
          description: [`${def.name}: ${def.description}.`, config.description].filter(Boolean).join(' '),
          ...(def.examples?.length ? { examples: structuredClone(def.examples) } : {}),
        },
      },
    };
    // No `with:` is an empty one: a sink with a required setting needs the block.
    if (Array.isArray(config.required) && config.required.length > 0) then.required = ['with'];
    return { if: { properties: { type: { const: def.name } }, required: ['type'] }, then };
  });
  schema.properties.sink = sink;
  schema.properties.sinks = { ...schema.properties.sinks, items: { $ref: '#/properties/sink' } };
  const { $schema, $id, title, description, ...rest } = acceptInterpolation(schema, true) as Json;
  return { $schema, $id, title, description, ...rest };
}

/** The pipeline test-file schema. */
export function testEditorSchema(): Json {
  const { $schema: _, ...schema } = toDraft07(structuredClone(testFileSchema) as unknown as Json) as Json;
  return {
    $schema: DRAFT_07,
    $id: TEST_EDITOR_SCHEMA_ID,
    title: 'Synapse pipeline test',
    description: 'A test file of a Synapse pipeline (NAME.test.yaml beside NAME.yaml): cases, each with input events and what must come out.',
    ...schema,
  };
}

/** Prints a schema as the committed copies hold it: two-space JSON and a final newline. */
export function formatSchema(schema: Json): string {
  return `${JSON.stringify(schema, null, 2)}\n`;
}

function withDefaults(node: Json, path: string[]): void {
  const props = node.properties as Record<string, Json> | undefined;
  if (!props) return;
  for (const [key, sub] of Object.entries(props)) {
    const at = [...path, key];
    const value = DEFAULTS[at.join('.')];
    if (value !== undefined) {
      sub.default = value;
      const text = typeof sub.description === 'string' ? sub.description.replace(/\s*$/, '') : '';
      if (!/default/i.test(text)) sub.description = `${text ? `${text.replace(/\.$/, '')}. ` : ''}Default: ${JSON.stringify(value)}.`;
    }
    withDefaults(sub, at);
  }
}

/**
 * Rewrites 2020-12 keywords into draft-07 ($defs → definitions, prefixItems → items,
 * dependentRequired → dependencies) and drops nested $schema/$id, so that any plugin's
 * configSchema reads the same in a draft-07 editor.
 */
export function toDraft07(node: unknown, top = true): unknown {
  if (Array.isArray(node)) return node.map((n) => toDraft07(n, false));
  if (!node || typeof node !== 'object') return node;
  const out: Json = {};
  for (const [key, value] of Object.entries(node as Json)) {
    if (key === '$schema') continue;
    if (key === '$id' && !top) continue;
    if (key === '$defs') out.definitions = mapValues(value as Json);
    else if (key === 'definitions' || key === 'properties' || key === 'patternProperties') out[key] = mapValues(value as Json);
    else if (key === 'prefixItems') {
      out.items = toDraft07(value, false);
      if ((node as Json).items !== undefined) out.additionalItems = toDraft07((node as Json).items, false);
    } else if (key === 'items' && (node as Json).prefixItems !== undefined) continue;
    else if (key === 'dependentRequired' || key === 'dependentSchemas') out.dependencies = { ...(out.dependencies as Json), ...mapValues(value as Json) };
    else if (key === '$ref' && typeof value === 'string') out.$ref = value.replace('#/$defs/', '#/definitions/');
    else if (key === 'const' || key === 'enum' || key === 'default' || key === 'examples') out[key] = value;
    else out[key] = toDraft07(value, false);
  }
  if (top) out.$schema = DRAFT_07;
  return out;
}

function mapValues(obj: Json): Json {
  return Object.fromEntries(Object.entries(obj).map(([k, v]) => [k, toDraft07(v, false)]));
}

/**
 * Where the loader takes a number, a boolean, one of an enum or a string of a pattern, an editor
 * must also accept `${VAR}` (interpolated before validation: `url: ${HOST:-http://x}/hook`): such a node becomes anyOf the value or an
 * interpolation, keeping its description and default outside for hover.
 */
function acceptInterpolation(node: unknown, top = false): unknown {
  if (Array.isArray(node)) return node.map((n) => acceptInterpolation(n));
  if (!node || typeof node !== 'object') return node;
  const src = node as Json;
  const out: Json = {};
  for (const [key, value] of Object.entries(src)) {
    if (key === 'properties' || key === 'definitions') out[key] = Object.fromEntries(Object.entries(value as Json).map(([k, v]) => [k, acceptInterpolation(v)]));
    else if (key === 'const' || key === 'enum' || key === 'default' || key === 'examples' || key === 'required') out[key] = value;
    else out[key] = acceptInterpolation(value);
  }
  const scalar = src.type === 'integer' || src.type === 'number' || src.type === 'boolean' || (Array.isArray(src.enum) && src.type === undefined)
    || (src.type === 'string' && (src.pattern !== undefined || src.format !== undefined));
  if (top || !scalar) return out;
  const { description, default: dflt, ...value } = out;
  return {
    ...(description !== undefined ? { description } : {}),
    ...(dflt !== undefined ? { default: dflt } : {}),
    anyOf: [value, INTERPOLATION],
  };
}
