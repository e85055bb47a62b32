import { resolve } from 'node:path';
import { beforeAll, describe, expect, it } from 'vitest';
import { checkEvent } from '../../../engine/config/check-event.ts';
import { SchemaRegistry } from '../../../engine/config/schema-registry.ts';
import { REPO_ROOT } from '../../helpers/pipelines.ts';

describe('checkEvent: an event is checked as pipelines will see it', () => {
  let schemas: SchemaRegistry;
  beforeAll(async () => {
    schemas = await SchemaRegistry.load(resolve(REPO_ROOT, 'schemas'));
  });

  const envelope = (data: Record<string, unknown>) => ({ event: 'inference-complete', source: 'cyrex', timestamp: '2026-12-01T14:05:00.123456', data });

  it('takes null as absent and a naive timestamp as UTC (Cyrex publish_inference without its optional arguments)', () => {
    const event = envelope({ model_name: 'm', version: '3', latency_ms: 12.5, success: true, user_id: null, cost: null, metadata: {} });
    expect(checkEvent(event, schemas)).toBeUndefined();
    // The event itself is left as the producer wrote it.
    expect(event.data).toHaveProperty('user_id', null);
  });

  it('still names a required field that is null', () => {
    expect(checkEvent(envelope({ model_name: null, version: '3', latency_ms: 1, success: true }), schemas))
      .toContain("data: must have required property 'model_name'");
  });

  it('refuses a timestamp that is not ISO 8601', () => {
    expect(checkEvent({ ...envelope({ model_name: 'm', version: '3', latency_ms: 1, success: true }), timestamp: '01/12/2026 14:05' }, schemas))
      .toContain('timestamp: must match format "iso-timestamp"');
  });
});
