/** JSON Schemas shared by the admin routes (bodies and replies), so OpenAPI documents them once. */

export const errorReply = {
  type: 'object',
  properties: {
    error: { type: 'string', description: 'A stable, machine-readable code.' },
    message: { type: 'string' },
    diagnostics: {
      type: 'array',
      items: {
        type: 'object',
        properties: { file: { type: 'string' }, line: { type: 'integer' }, col: { type: 'integer' }, message: { type: 'string' } },
      },
    },
  },
  required: ['error', 'message'],
} as const;

export const nameParam = {
  type: 'object',
  required: ['name'],
  properties: { name: { type: 'string', pattern: '^[A-Za-z0-9][A-Za-z0-9_.-]*$' } },
} as const;

export const streamParam = {
  type: 'object',
  required: ['stream'],
  properties: { stream: { type: 'string', minLength: 1, maxLength: 512 } },
} as const;

/** An object whose shape is open (events, sink payloads). */
export const anyObject = { type: 'object', additionalProperties: true } as const;
