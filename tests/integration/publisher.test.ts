import { randomUUID } from 'node:crypto';
import { resolve } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { EventInvalidError, Publisher } from '../../engine/publish/publisher.ts';
import { startTestRedis, type TestRedis } from '../helpers/redis.ts';

const SCHEMAS = resolve(import.meta.dirname, '../../schemas');

function taskCompleted(taskId: string) {
  return { event: 'task-completed', service: 'task-orchestrator', action: 'complete', data: { taskId, userId: 'u-1', title: 'Report' } };
}

describe('Publisher: schema-checked publishing from a service', () => {
  let server: TestRedis;

  beforeAll(async () => {
    server = await startTestRedis({ own: true, persistent: true });
  });
  afterAll(async () => server?.close());

  it('validates against the schema chosen by type, fills source and timestamp, and XADDs', async () => {
    const stream = `test-${randomUUID()}`;
    const publisher = await Publisher.connect({ redis: server.url, schemas: SCHEMAS, source: 'task-orchestrator' });
    try {
      const id = await publisher.publish(stream, taskCompleted('t-1'));
      const rows = await server.client().xrange(stream, '-', '+');
      expect(rows.map(([gotId]) => gotId)).toEqual([id]);
      const event = JSON.parse(rows[0]![1][1]!);
      expect(event).toMatchObject({ event: 'task-completed', source: 'task-orchestrator', data: { taskId: 't-1' } });
      expect(Date.parse(event.timestamp)).not.toBeNaN();
    } finally {
      await publisher.close();
    }
  });

  it('refuses an invalid event with the schema errors, and writes nothing', async () => {
    const stream = `test-${randomUUID()}`;
    const publisher = await Publisher.connect({ redis: server.url, schemas: SCHEMAS, source: 'task-orchestrator' });
    try {
      await expect(publisher.publish(stream, { event: 'task-completed', data: { userId: 'u-1' } })).rejects.toThrow(EventInvalidError);
      await expect(publisher.publish(stream, { event: 'task-completed', data: { userId: 'u-1' } })).rejects.toThrow(/taskId/);
      await expect(publisher.publish(stream, { event: 'no-such-type', data: {} })).rejects.toThrow(/no schema declares event type 'no-such-type'/);
      // All or nothing: one bad event among good ones writes none of them.
      await expect(publisher.publishAll(stream, [taskCompleted('t-2'), { event: 'task-completed', data: {} }])).rejects.toThrow(EventInvalidError);
      expect(await server.client().xlen(stream)).toBe(0);
    } finally {
      await publisher.close();
    }
  });

  it('rides out a short Redis outage with retries and back-off', async () => {
    const stream = `test-${randomUUID()}`;
    const publisher = await Publisher.connect({ redis: server.url, schemas: SCHEMAS, source: 'task-orchestrator', attempts: 8, delayMs: 200 });
    try {
      await publisher.publish(stream, taskCompleted('before'));
      await server.owned!.stop();
      const during = publisher.publish(stream, taskCompleted('during'));
      await new Promise((r) => setTimeout(r, 500)); // the outage itself, not a wait for a result
      await server.owned!.restart();
      await expect(during).resolves.toMatch(/^\d+-\d+$/);
      const events = (await server.client().xrange(stream, '-', '+')).map(([, f]) => JSON.parse(f[1]!).data.taskId);
      expect(events).toEqual(['before', 'during']);
    } finally {
      await publisher.close();
    }
  });
});
