/** The JSON Schema of a pipeline test file (SPEC §6). */
export const testFileSchema = {
  type: 'object',
  additionalProperties: false,
  required: ['pipeline', 'cases'],
  properties: {
    pipeline: { type: 'string', minLength: 1, description: 'Name of the pipeline under test.' },
    description: { type: 'string' },
    cases: {
      type: 'array',
      minItems: 1,
      items: {
        type: 'object',
        additionalProperties: false,
        required: ['name', 'input', 'expect'],
        properties: {
          name: { type: 'string', minLength: 1 },
          input: { type: 'array', description: 'Events fed in order; a string is a raw payload.' },
          expect: {
            type: 'object',
            additionalProperties: false,
            properties: {
              sink: { type: 'array', description: 'What reached the only sink, deep-equal and in order.' },
              sinks: { type: 'object', additionalProperties: { type: 'array' }, description: 'Per sink id or type.' },
              filtered: { type: 'integer', minimum: 0 },
              dropped: { type: 'integer', minimum: 0 },
              dlq: {
                type: 'array',
                items: {
                  type: 'object',
                  additionalProperties: false,
                  properties: {
                    stage: { enum: ['decode', 'validate', 'filter', 'transform', 'sink'] },
                    error: { type: 'string', description: 'A substring of the DLQ reason.' },
                    sink: { type: 'string' },
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
