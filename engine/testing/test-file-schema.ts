/** The JSON Schema of a pipeline test file (docs/pipelines.md#tests-pipelinesnametestyaml). */
export const testFileSchema = {
  type: 'object',
  additionalProperties: false,
  required: ['pipeline', 'cases'],
  properties: {
    pipeline: { type: 'string', minLength: 1, description: 'Name of the pipeline under test.' },
    description: { type: 'string', description: 'What the file tests.' },
    cases: {
      type: 'array',
      description: 'The cases: each feeds its input through the real compiled pipeline (no Redis) and checks what came out.',
      minItems: 1,
      items: {
        type: 'object',
        additionalProperties: false,
        required: ['name', 'input', 'expect'],
        properties: {
          name: { type: 'string', minLength: 1, description: 'What the case shows; printed when it fails.' },
          input: { type: 'array', description: 'Events fed in order; a string is a raw payload.' },
          expect: {
            type: 'object',
            description: 'What must come out; without `dlq:` the case expects no DLQ entry at all.',
            additionalProperties: false,
            properties: {
              sink: { type: 'array', description: 'What reached the only sink, deep-equal and in order.' },
              sinks: { type: 'object', additionalProperties: { type: 'array' }, description: 'Per sink id or type.' },
              filtered: { type: 'integer', minimum: 0, description: 'How many events the filter (or every `when:`) left out.' },
              dropped: { type: 'integer', minimum: 0, description: 'How many invalid events `on_invalid: drop` dropped.' },
              dlq: {
                type: 'array',
                description: 'The DLQ entries, in order; each key given must match.',
                items: {
                  type: 'object',
                  additionalProperties: false,
                  properties: {
                    stage: { enum: ['decode', 'validate', 'filter', 'transform', 'sink'], description: 'The stage that failed.' },
                    error: { type: 'string', description: 'A substring of the DLQ reason.' },
                    sink: { type: 'string', description: 'The id (or type) of the sink that failed.' },
                  },
                },
              },
            },
          },
        },
      },
    },
  },
} as const;
