import { randomUUID } from 'node:crypto';
import type { Redis } from 'ioredis';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { StreamReader, entryFromBytes, toRecord } from '../../engine/runtime/stream-reader.ts';
import { startTestRedis, waitFor, type TestRedis } from '../helpers/redis.ts';

describe('StreamReader', () => {
  let server: TestRedis;
  let redis: Redis;

  beforeAll(async () => {
    server = await startTestRedis();
    redis = server.client();
  });
  afterAll(async () => server?.close());

  async function consumers(stream: string, group: string): Promise<Record<string, unknown>[]> {
    return ((await redis.xinfo('CONSUMERS', stream, group)) as unknown[][]).map(toRecord);
  }

  it('ensureGroup creates the group once, and passes on any refusal but "the group exists"', async () => {
    const stream = `test-${randomUUID()}`;
    const reader = new StreamReader(redis, redis, stream, 'g', 'me');
    await reader.ensureGroup('0');
    await reader.ensureGroup('$'); // BUSYGROUP: the group is there already
    expect(((await redis.xinfo('GROUPS', stream)) as unknown[][]).map(toRecord).map((g) => g.name)).toEqual(['g']);
    // The source key holds a string, not a stream: the engine must hear of it.
    const wrong = `test-${randomUUID()}`;
    await redis.set(wrong, 'not a stream');
    await expect(new StreamReader(redis, redis, wrong, 'g', 'me').ensureGroup('0')).rejects.toThrow(/^WRONGTYPE/);
  });

  it('read: new entries, or own pending ones after a cursor, as strings; entries deleted while pending come back as ids', async () => {
    const stream = `test-${randomUUID()}`;
    const reader = new StreamReader(redis, redis, stream, 'g', 'me');
    await reader.ensureGroup('0');
    const ids = [];
    for (let i = 1; i <= 3; i++) ids.push(await redis.xadd(stream, '*', 'payload', `{"n":${i}}`));
    const fresh = await reader.read('>', 10, 100);
    expect(fresh).toEqual({ entries: ids.map((id, i) => ({ id, fields: ['payload', `{"n":${i + 1}}`] })), deleted: [] });
    expect(await reader.read('>', 10, 50)).toEqual({ entries: [], deleted: [] }); // nothing new: waits, then nothing
    await redis.xdel(stream, ids[1]!);
    const pending = await reader.read('0', 10, 100);
    expect(pending).toEqual({ entries: [{ id: ids[0], fields: ['payload', '{"n":1}'] }, { id: ids[2], fields: ['payload', '{"n":3}'] }], deleted: [ids[1]] });
    // After a cursor, COUNT at a time: the next of them is the deleted one.
    expect(await reader.read(ids[0]!, 1, 100)).toEqual({ entries: [], deleted: [ids[1]] });
  });

  it('claim takes what another consumer left idle, page by page; withDeliveryCounts reads how often each was delivered', async () => {
    const stream = `test-${randomUUID()}`;
    const reader = new StreamReader(redis, redis, stream, 'g', 'me');
    await reader.ensureGroup('0');
    const ids = [];
    for (let i = 1; i <= 3; i++) ids.push(await redis.xadd(stream, '*', 'payload', `{"n":${i}}`));
    await redis.xreadgroup('GROUP', 'g', 'dead', 'COUNT', 10, 'STREAMS', stream, '>');
    await redis.xdel(stream, ids[2]!);
    const first = await reader.claim('0-0', 0, 1);
    expect(first.entries.map((e) => e.id)).toEqual([ids[0]]);
    expect(first.next).not.toBe('0-0');
    const rest = await reader.claim(first.next, 0, 10);
    expect(rest).toEqual({ next: '0-0', entries: [{ id: ids[1], fields: ['payload', '{"n":2}'] }], deleted: [ids[2]] });
    // Claimed once after the first read: two deliveries each. An entry not pending counts one.
    const counted = await reader.withDeliveryCounts([...first.entries, ...rest.entries, { id: '0-1', fields: [] }]);
    expect(counted.map((e) => e.deliveries)).toEqual([2, 2, 1]);
  });

  it('groupInfo: this group\'s lag and pending count; null lag when Redis cannot tell; undefined for no such group', async () => {
    const stream = `test-${randomUUID()}`;
    const reader = new StreamReader(redis, redis, stream, 'g', 'me');
    await reader.ensureGroup('0');
    await new StreamReader(redis, redis, stream, 'other', 'me').ensureGroup('$');
    const ids = [];
    for (let i = 1; i <= 4; i++) ids.push(await redis.xadd(stream, '*', 'n', String(i)));
    await reader.read('>', 1, 100);
    expect(await reader.groupInfo()).toEqual({ lag: 3, pending: 1 });
    // An entry deleted between the group's last delivery and the end: Redis no longer knows the lag.
    await redis.xdel(stream, ids[2]!);
    expect(await reader.groupInfo()).toEqual({ lag: null, pending: 1 });
    expect(await new StreamReader(redis, redis, stream, 'nosuch', 'me').groupInfo()).toBeUndefined();
  });

  it('entryFromBytes keeps the bytes of a value that is not UTF-8, never of a name', () => {
    const bad = Buffer.from([0xff, 0xfe]);
    const entry = entryFromBytes('1-0', [bad, Buffer.from('ok'), Buffer.from('payload'), bad]);
    expect(entry.fields).toEqual([bad.toString(), 'ok', 'payload', bad.toString()]);
    expect([...entry.binary!.entries()]).toEqual([[3, bad]]);
    expect(entryFromBytes('1-0', [Buffer.from('payload'), Buffer.from('{}')])).toEqual({ id: '1-0', fields: ['payload', '{}'] });
  });

  it('removes idle consumers with nothing pending, and keeps itself and consumers holding entries', async () => {
    const stream = `test-${randomUUID()}`;
    const reader = new StreamReader(redis, redis, stream, 'g', 'me');
    await reader.ensureGroup('0');
    await redis.xadd(stream, '*', 'payload', '{}');
    // 'holder' takes the entry and never acks it; 'idle' reads nothing; 'me' is this process.
    await redis.xreadgroup('GROUP', 'g', 'holder', 'COUNT', 1, 'STREAMS', stream, '>');
    await redis.xgroup('CREATECONSUMER', stream, 'g', 'idle');
    await redis.xgroup('CREATECONSUMER', stream, 'g', 'me');
    await waitFor(async () => (await consumers(stream, 'g')).every((c) => Number(c.idle) > 20), 'the consumers to be idle a little');

    expect(await reader.removeIdleConsumers(20)).toEqual(['idle']);
    expect((await consumers(stream, 'g')).map((c) => c.name).sort()).toEqual(['holder', 'me']);
    // A day (the engine's threshold) has not passed for anyone: nothing more goes, not even a
    // consumer with nothing pending.
    await redis.xgroup('CREATECONSUMER', stream, 'g', 'fresh');
    expect(await reader.removeIdleConsumers(24 * 60 * 60 * 1000)).toEqual([]);
    expect((await consumers(stream, 'g')).map((c) => c.name).sort()).toEqual(['fresh', 'holder', 'me']);
  });

  it('toRecord turns a flat XINFO reply into an object, no key beyond its pairs', () => {
    expect(Object.entries(toRecord(['name', 'g', 'lag', null]))).toEqual([['name', 'g'], ['lag', null]]);
  });
});
