/**
 * The JSON Schema of a pipeline file (docs/pipelines.md). Unknown keys are errors everywhere: a typo such
 * as `filtr:` must not silently disable a filter.
 */
const expression = { type: 'string', minLength: 1, description: 'A JSONata expression.' } as const;

const sinkSpec = {
  type: 'object',
  additionalProperties: false,
  required: ['type'],
  properties: {
    type: { type: 'string', minLength: 1, description: 'The sink plugin name (publish, notify, log, ...).' },
    id: { type: 'string', pattern: '^[A-Za-z0-9_.-]+$', description: 'Names this sink in tests and metrics; defaults to its type (type#2 for a second one).' },
    when: { ...expression, description: 'JSONata over the transformed event; falsy skips this sink.' },
    with: { type: 'object', description: "The sink's configuration, checked against its configSchema." },
  },
} as const;

export const pipelineFileSchema = {
  $schema: 'https://json-schema.org/draft/2020-12/schema',
  $id: 'https://synapse.dev/schemas/pipeline-file.json',
  type: 'object',
  additionalProperties: false,
  required: ['source'],
  properties: {
    name: { type: 'string', pattern: '^[A-Za-z0-9][A-Za-z0-9_.-]*$', description: 'Unique pipeline name; defaults to the file name.' },
    description: { type: 'string', description: 'What the pipeline is for (shown by the admin API).' },
    enabled: { type: 'boolean', description: 'false keeps the file loaded and validated but does not run it.' },
    source: {
      type: 'object',
      description: 'Where events come from: a Redis stream read through a consumer group, or a schedule.',
      additionalProperties: false,
      properties: {
        stream: { type: 'string', minLength: 1, description: 'Redis stream key to consume.' },
        schedule: { type: 'string', pattern: '^[0-9]+(ms|s|m|h|d)$', description: 'Fire on this interval instead of reading a stream (60s, 5m).' },
        group: { type: 'string', minLength: 1, description: 'Consumer group; defaults to the pipeline name.' },
        start: { type: 'string', pattern: '^(\\$|0|[0-9]+(-[0-9]+)?)$', description: 'Where a new group starts: $ (new entries), 0 (all) or an entry id.' },
        codec: { enum: ['json', 'fields'], description: 'json: the envelope is in the payload field; fields: the entry is a flat field map.' },
        envelope: { enum: ['keep', 'wrap'], description: 'keep (default): events as decoded; wrap: an event without a data object gets every key but event, source, timestamp, id, trace_id, correlation_id, service and action moved under data.' },
        batch: { type: 'integer', minimum: 1, maximum: 10000, description: 'Entries per read.' },
        block_ms: { type: 'integer', minimum: 1, maximum: 60000, description: 'How long one read waits for new entries.' },
        claim_idle_ms: { type: 'integer', minimum: 1000, description: 'Reclaim entries another consumer left pending this long.' },
        max_deliveries: { type: 'integer', minimum: 1, description: 'An entry delivered more often than this goes to the DLQ as poison.' },
      },
    },
    validate: {
      type: 'object',
      description: 'Check each event against a JSON Schema; an invalid one goes to the DLQ (or is dropped).',
      additionalProperties: false,
      required: ['schema'],
      properties: {
        schema: { type: 'string', minLength: 1, description: 'A schema $id, or a path relative to this file.' },
        on_invalid: { enum: ['dlq', 'drop'], description: 'What happens to an invalid event: dlq (written to the DLQ with every schema error) or drop (acknowledged and counted).' },
      },
    },
    filter: { ...expression, description: 'A JSONata expression over the event; a falsy result ($boolean rules) filters the event out (acknowledged, counted).' },
    transform: { ...expression, description: 'A JSONata expression over the event; its result is what every sink receives (no result: the event goes to the DLQ).' },
    sink: { ...sinkSpec, description: 'The one sink (or give `sinks:`).' },
    sinks: { type: 'array', minItems: 1, items: sinkSpec, description: 'Several sinks, run side by side, each with an optional `when:` and `id:`.' },
    retry: {
      type: 'object',
      description: 'How a failing sink write is tried again before the event goes to the DLQ.',
      additionalProperties: false,
      properties: {
        attempts: { type: 'integer', minimum: 1, maximum: 100, description: 'Tries per sink write, the first included.' },
        backoff: { enum: ['exponential', 'fixed'], description: 'exponential (doubling, ±20% jitter) or fixed.' },
        delay_ms: { type: 'integer', minimum: 0, description: 'The first wait between tries.' },
        max_delay_ms: { type: 'integer', minimum: 0, description: 'The longest wait between tries.' },
      },
    },
    dlq: { type: 'string', minLength: 1, description: 'DLQ stream; defaults to <stream>:dlq.' },
    expression_timeout_ms: { type: 'integer', minimum: 1, maximum: 60000, description: 'Time limit of one JSONata evaluation.' },
    max_event_bytes: { type: 'integer', minimum: 1, description: 'Larger entries go to the DLQ undecoded.' },
  },
} as const;
