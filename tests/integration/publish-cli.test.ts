import { writeFile, mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Redis } from 'ioredis';
import { runCli } from '../helpers/engine-process.ts';
import { FIXTURE_SCHEMAS, orderEvent, testKey } from '../helpers/pipelines.ts';
import { startTestRedis, type TestRedis } from '../helpers/redis.ts';
import { readStream } from '../helpers/streams.ts';

let server: TestRedis;
let redis: Redis;
let tmp: string;

beforeAll(async () => {
  server = await startTestRedis();
  redis = server.client();
  tmp = await mkdtemp(join(tmpdir(), 'synapse-it-publish-'));
});
afterAll(async () => {
  await rm(tmp, { recursive: true, force: true });
  await server?.close();
});

function publish(stream: string, ...args: string[]) {
  return runCli(['publish', stream, ...args, '--schemas', FIXTURE_SCHEMAS, '--redis', server.url]);
}

describe('synapse publish', () => {
  it('writes a valid event as the payload of one entry and prints its id', async () => {
    const stream = testKey('in');
    const event = orderEvent(1);
    const result = await publish(stream, JSON.stringify(event));
    expect(result.code, result.stderr).toBe(0);
    const entries = await readStream(redis, stream);
    expect(entries).toHaveLength(1);
    expect(result.stdout.trim()).toBe(entries[0]!.id);
    expect(Object.keys(entries[0]!.fields)).toEqual(['payload']);
    expect(JSON.parse(entries[0]!.fields.payload!)).toEqual(event);
  });

  const refused: { name: string; event: unknown; error: RegExp }[] = [
    {
      name: 'an event invalid against its schema',
      event: { ...orderEvent(1), data: { orderId: 'o-1', amount: 'lots' } },
      error: /event 1: invalid against https:\/\/synapse\.test\/schemas\/order-event\.json: data\.amount: must be number/,
    },
    { name: 'an event type no schema declares', event: { ...orderEvent(1), event: 'order-shipped' }, error: /event 1: no schema declares event type 'order-shipped'/ },
    { name: 'an event without a type', event: { source: 'x', data: {} }, error: /event 1: the event has no 'event' type/ },
    { name: 'a JSON array', event: [orderEvent(1)], error: /event 1: an event must be a JSON object/ },
  ];

  it.each(refused)('refuses $name: exit 1, nothing written', async ({ event, error }) => {
    const stream = testKey('in');
    const result = await publish(stream, JSON.stringify(event));
    expect(result.code).toBe(1);
    expect(result.stderr).toMatch(error);
    expect(result.stderr).toMatch(/nothing published: 1 of 1 event\(s\) invalid/);
    expect(result.stdout).toBe('');
    expect(await redis.exists(stream)).toBe(0);
  });

  it('--file: one invalid line among valid ones means nothing is written; all valid means all are, in order', async () => {
    const stream = testKey('in');
    const mixed = join(tmp, 'mixed.jsonl');
    await writeFile(mixed, [orderEvent(1), { ...orderEvent(2), data: { orderId: 'o-2' } }, orderEvent(3)].map((e) => JSON.stringify(e)).join('\n'));
    const refusedRun = await publish(stream, '--file', mixed);
    expect(refusedRun.code).toBe(1);
    expect(refusedRun.stderr).toMatch(/event 2: invalid against .*data: must have required property 'amount'/);
    expect(refusedRun.stderr).toMatch(/nothing published: 1 of 3 event\(s\) invalid/);
    expect(await redis.exists(stream)).toBe(0);

    const valid = join(tmp, 'valid.jsonl');
    const events = [orderEvent(1), orderEvent(2, 'order-cancelled'), orderEvent(3)];
    await writeFile(valid, events.map((e) => JSON.stringify(e)).join('\n') + '\n');
    const okRun = await publish(stream, '--file', valid);
    expect(okRun.code, okRun.stderr).toBe(0);
    const entries = await readStream(redis, stream);
    expect(entries.map((e) => JSON.parse(e.fields.payload!))).toEqual(events);
    expect(okRun.stdout.trim().split('\n')).toEqual(entries.map((e) => e.id));
  });
});
