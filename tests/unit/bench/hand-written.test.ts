import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { compileSchema } from '../../../bench/lib/hand-written.ts';

// The benchmark's baseline validates with the same schema as the engine: it must keep compiling
// as the catalog's schemas change (their $refs, the producers' timestamp format).
describe('benchmark baseline', () => {
  it('compiles the platform event schema and accepts what producers write', async () => {
    const validate = await compileSchema(join(import.meta.dirname, '../../../schemas/platform-event.json'));
    expect(validate({ event: 'task-completed', source: 'task-orchestrator', timestamp: '2026-12-01T14:05:00.123456', data: { taskId: 't1' } }), JSON.stringify(validate.errors)).toBe(true);
    expect(validate({ event: 'task-completed', timestamp: 'yesterday', data: {} })).toBe(false);
  });
});
