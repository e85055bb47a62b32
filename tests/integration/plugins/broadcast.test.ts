import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { SignJWT } from 'jose';
import type { Redis } from 'ioredis';
import { diagnosticsOf, positionOf } from '../../helpers/config-errors.ts';
import { killEngines, spawnEngine, stopCleanly, type EngineProcess } from '../../helpers/engine-process.ts';
import { FIXTURE_SCHEMAS, pipelineDirs, testKey, type PipelineDoc } from '../../helpers/pipelines.ts';
import { startTestRedis, waitFor, type TestRedis } from '../../helpers/redis.ts';
import { addEvents, groupSettledThrough, readStream } from '../../helpers/streams.ts';
import { closeAllWs, connectWs, openWs, type WsClient } from '../../helpers/ws-client.ts';

/**
 * Three engine processes on one Redis: A runs the broadcast pipelines; B and C run none and only
 * serve WebSocket clients, so whatever their clients receive came from A through Redis pub/sub.
 * C has SYNAPSE_WS_SECRET set: its clients are users only through a JWT.
 */
const SECRET = 'test-ws-secret-0123456789abcdef0123456789';

let server: TestRedis;
let redis: Redis;
const dirs = pipelineDirs();
let emptyDir: string;
let engineA: EngineProcess;
let engineB: EngineProcess;
let engineC: EngineProcess;

/** One stream → channel broadcast pipeline per test, so each test has keys of its own. */
interface Route {
  name: string;
  stream: string;
  channel: string;
}
const route = (label: string): Route => {
  const stream = testKey(label);
  return { name: `bc-${label}-${stream.slice(5, 13)}`, stream, channel: testKey(`${label}-channel`) };
};
const routes = {
  plain: route('plain'),
  other: route('other'),
  filter: route('filter'),
  audience: route('audience'),
  jwt: route('jwt'),
  flood: route('flood'),
};
// Each audience channel also gets a pipeline without audience, on the same channel: its
// messages reach every subscriber, so one arriving proves those published before it have too.
const sentinels = { audience: { ...route('audience-all'), channel: routes.audience.channel }, jwt: { ...route('jwt-all'), channel: routes.jwt.channel } };

function broadcastPipeline(r: Route, audience?: string): PipelineDoc {
  return {
    name: r.name,
    source: { stream: r.stream, start: '0', block_ms: 100 },
    transform: '{ "type": data.type, "n": data.n, "userId": data.userId, "text": data.text }',
    sink: { type: 'broadcast', with: { channel: r.channel, ...(audience ? { audience } : {}) } },
  };
}

function note(n: number, data: Record<string, unknown> = {}): Record<string, unknown> {
  return { event: 'note', source: 'broadcast-test', timestamp: new Date().toISOString(), data: { n, type: 'info', ...data } };
}

const wsUrl = (e: EngineProcess, query = '') => `ws://127.0.0.1:${e.adminPort}/ws${query}`;

async function listening(e: EngineProcess): Promise<void> {
  await e.waitForLog((l) => l.msg === 'admin API listening', '"admin API listening"');
}

beforeAll(async () => {
  server = await startTestRedis();
  redis = server.client();
  const pipelines = await dirs.make([
    broadcastPipeline(routes.plain), broadcastPipeline(routes.other), broadcastPipeline(routes.filter),
    broadcastPipeline(routes.audience, 'userId'), broadcastPipeline(sentinels.audience),
    broadcastPipeline(routes.jwt, 'userId'), broadcastPipeline(sentinels.jwt),
    broadcastPipeline(routes.flood),
  ]);
  emptyDir = await mkdtemp(join(tmpdir(), 'synapse-it-empty-'));
  const common = { schemas: FIXTURE_SCHEMAS, redisUrl: server.url };
  [engineA, engineB, engineC] = await Promise.all([
    spawnEngine({ ...common, pipelines, consumer: 'broadcast-a' }),
    spawnEngine({ ...common, pipelines: emptyDir, consumer: 'broadcast-b' }),
    spawnEngine({ ...common, pipelines: emptyDir, consumer: 'broadcast-c', env: { SYNAPSE_WS_SECRET: SECRET } }),
  ]);
  await Promise.all([listening(engineA), listening(engineB), listening(engineC)]);
});
afterEach(async () => {
  await closeAllWs();
});
afterAll(async () => {
  await closeAllWs();
  const stops = [engineA, engineB, engineC].filter(Boolean).map((e) => stopCleanly(e));
  const results = await Promise.allSettled(stops);
  await killEngines();
  await dirs.cleanup();
  if (emptyDir) await rm(emptyDir, { recursive: true, force: true });
  await server?.close();
  for (const r of results) if (r.status === 'rejected') throw r.reason;
});

/** A user's token for engine C: HS256, signed with `secret`, sub = userId. */
async function tokenFor(userId: string, secret = SECRET): Promise<string> {
  return new SignJWT({}).setProtectedHeader({ alg: 'HS256' }).setSubject(userId).setIssuedAt().setExpirationTime('10m').sign(new TextEncoder().encode(secret));
}

async function publishNotes(r: Route, notes: Record<string, unknown>[]): Promise<string[]> {
  const ids = await addEvents(redis, r.stream, notes);
  await waitFor(() => groupSettledThrough(redis, r.stream, r.name, ids.at(-1)!), `${r.name} settled`);
  return ids;
}

const ns = (messages: Record<string, unknown>[]) => messages.map((m) => m.n as number).sort((a, b) => a - b);

describe('broadcast sink: WebSocket clients of every replica, through Redis pub/sub', () => {
  it('a client connected to engine B receives what a pipeline on engine A sinks; other channels stay apart', async () => {
    const onB = await connectWs(wsUrl(engineB));
    const onA = await connectWs(wsUrl(engineA));
    const elsewhere = await connectWs(wsUrl(engineB));
    await onB.subscribe(routes.plain.channel);
    await onA.subscribe(routes.plain.channel);
    await elsewhere.subscribe(routes.other.channel);

    await publishNotes(routes.plain, [1, 2, 3].map((n) => note(n, { text: `hello ${n}` })));
    const got = await onB.waitForCount(routes.plain.channel, 3);
    expect(got).toHaveLength(3);
    expect(ns(got)).toEqual([1, 2, 3]);
    expect(got.find((m) => m.n === 2)).toEqual({ type: 'info', n: 2, text: 'hello 2' });
    expect(onB.messages.filter((m) => m.channel !== undefined).every((m) => m.channel === routes.plain.channel)).toBe(true);
    expect(ns(await onA.waitForCount(routes.plain.channel, 3))).toEqual([1, 2, 3]);

    // The other channel's subscriber gets the other channel's messages only.
    await publishNotes(routes.other, [note(10)]);
    expect(ns(await elsewhere.waitForCount(routes.other.channel, 1))).toEqual([10]);
    expect(elsewhere.received(routes.plain.channel)).toEqual([]);
    expect(onB.received(routes.other.channel)).toEqual([]);
  });

  it('a subscription filter passes only matching messages', async () => {
    const errorsOnly = await connectWs(wsUrl(engineB));
    const everything = await connectWs(wsUrl(engineB));
    await errorsOnly.subscribe(routes.filter.channel, { filter: { type: 'error' } });
    await everything.subscribe(routes.filter.channel);

    const types = ['info', 'error', 'info', 'error', 'warning', 'error'];
    await publishNotes(routes.filter, types.map((type, i) => note(i + 1, { type })));
    await everything.waitForCount(routes.filter.channel, 6);
    // A client gets messages in publish order: once the filtered client has a later error (7),
    // every earlier message has had its chance to reach it.
    await publishNotes(routes.filter, [note(7, { type: 'error' })]);
    const got = await errorsOnly.waitFor((m) => m.channel === routes.filter.channel && (m.message as { n?: number }).n === 7, 'the last error');
    expect(got).toBeDefined();
    expect(ns(errorsOnly.received(routes.filter.channel))).toEqual([2, 4, 6, 7]);
    expect(errorsOnly.received(routes.filter.channel).every((m) => m.type === 'error')).toBe(true);
  });

  it('without a secret, a message with an audience reaches only the client that named itself that user', async () => {
    const u1 = await connectWs(wsUrl(engineB));
    const u2 = await connectWs(wsUrl(engineB));
    const anonymous = await connectWs(wsUrl(engineB));
    const ch = routes.audience.channel;
    expect(await u1.subscribe(ch, { userId: 'u1' })).toMatchObject({ subscribed: ch, userId: 'u1' });
    expect(await u2.subscribe(ch, { userId: 'u2' })).toMatchObject({ subscribed: ch, userId: 'u2' });
    await anonymous.subscribe(ch);

    await publishNotes(routes.audience, [note(1, { userId: 'u1' }), note(2, { userId: 'u2' }), note(3, { userId: 'u1' })]);
    await u1.waitForCount(ch, 2);
    await u2.waitForCount(ch, 1);
    await publishNotes(sentinels.audience, [note(99, { text: 'for everyone' })]);
    for (const c of [u1, u2, anonymous]) await c.waitFor((m) => m.channel === ch && (m.message as { n?: number }).n === 99, 'the message for everyone');

    expect(ns(u1.received(ch))).toEqual([1, 3, 99]);
    expect(ns(u2.received(ch))).toEqual([2, 99]);
    expect(ns(anonymous.received(ch))).toEqual([99]);
  });

  it('with SYNAPSE_WS_SECRET, a client is a user only through a JWT (?token=, sub = userId)', async () => {
    const ch = routes.jwt.channel;
    const u1 = await connectWs(wsUrl(engineC, `?token=${await tokenFor('u1')}`));
    const u2 = await connectWs(wsUrl(engineC, `?token=${await tokenFor('u2')}`));
    // Naming yourself u1 in the subscribe message counts for nothing when a secret is set.
    const impostor = await connectWs(wsUrl(engineC));
    expect(u1.messages[0]).toEqual({ hello: 'synapse', userId: 'u1' });
    expect(impostor.messages[0]).toEqual({ hello: 'synapse', userId: null });
    await u1.subscribe(ch);
    await u2.subscribe(ch);
    expect(await impostor.subscribe(ch, { userId: 'u1' })).toMatchObject({ subscribed: ch, userId: null });

    await publishNotes(routes.jwt, [note(1, { userId: 'u1' }), note(2, { userId: 'u2' }), note(3, { userId: 'u1' })]);
    await u1.waitForCount(ch, 2);
    await u2.waitForCount(ch, 1);
    await publishNotes(sentinels.jwt, [note(99)]);
    for (const c of [u1, u2, impostor]) await c.waitFor((m) => m.channel === ch && (m.message as { n?: number }).n === 99, 'the message for everyone');

    expect(ns(u1.received(ch))).toEqual([1, 3, 99]);
    expect(ns(u2.received(ch))).toEqual([2, 99]);
    expect(ns(impostor.received(ch))).toEqual([99]);
  });

  it.each([
    { name: 'signed with another secret', token: () => tokenFor('u1', 'not-the-secret-at-all-0123456789abcdef') },
    { name: 'not a JWT', token: async () => 'garbage' },
    { name: 'expired', token: () => new SignJWT({}).setProtectedHeader({ alg: 'HS256' }).setSubject('u1').setIssuedAt(Math.floor(Date.now() / 1000) - 7200).setExpirationTime(Math.floor(Date.now() / 1000) - 3600).sign(new TextEncoder().encode(SECRET)) },
    { name: 'without sub', token: () => new SignJWT({}).setProtectedHeader({ alg: 'HS256' }).setIssuedAt().sign(new TextEncoder().encode(SECRET)) },
  ])('a token $name is refused: the socket is closed with 4401 before any hello', async ({ token }) => {
    const client: WsClient = await openWs(wsUrl(engineC, `?token=${encodeURIComponent(await token())}`));
    const { code, reason } = await client.closed;
    expect(code).toBe(4401);
    expect(reason).toMatch(/^invalid token/);
    expect(client.messages.filter((m) => m.hello)).toEqual([]);
  });

  it('clients that never read do not slow the pipeline: 2000 events settle, and a reading client gets them all', async () => {
    const ch = routes.flood.channel;
    const deadOnA = await connectWs(wsUrl(engineA));
    const deadOnB = await connectWs(wsUrl(engineB));
    const reader = await connectWs(wsUrl(engineB));
    await deadOnA.subscribe(ch);
    await deadOnB.subscribe(ch);
    await reader.subscribe(ch);
    deadOnA.pause();
    deadOnB.pause();

    const n = 2000;
    const text = 'x'.repeat(8 * 1024); // 16 MB in all: more than socket buffers and the 1 MiB slow-client limit
    const ids = await addEvents(redis, routes.flood.stream, Array.from({ length: n }, (_, i) => note(i + 1, { text })));
    await waitFor(() => groupSettledThrough(redis, routes.flood.stream, routes.flood.name, ids.at(-1)!), 'all 2000 entries settled', 25_000);
    const got = await reader.waitForCount(ch, n, 25_000);
    expect(new Set(ns(got)).size).toBe(n);
    expect(await redis.exists(`${routes.flood.stream}:dlq`)).toBe(0);
    // The dead clients were dropped, each by its own engine (SPEC: over 1 MiB queued, 100 misses in a row).
    for (const e of [engineA, engineB]) {
      await e.waitForLog((l) => l.msg === 'disconnecting a WebSocket client too slow to keep up', 'the slow client dropped', 10_000);
    }

    // Both engines still serve new clients.
    for (const e of [engineA, engineB]) {
      const fresh = await connectWs(wsUrl(e));
      await fresh.subscribe(ch);
      await fresh.close();
      expect(e.alive()).toBe(true);
    }
    expect((await readStream(redis, routes.flood.stream)).length).toBe(n);
  }, 90_000); // 16 MB through two engines: its waits add up to more than the default 30 s on a busy machine
});

describe('broadcast sink config is checked at load, errors as FILE:LINE:COL', () => {
  const cases: { name: string; with: string; needle: string; offset?: number; message: string }[] = [
    {
      name: 'a JSONata syntax error in audience points inside the expression',
      with: '    channel: notifications\n    audience: data.userId ~> ~> $string\n',
      needle: '~> ~>', offset: 3,
      message: "broadcast sink 'with.audience': invalid JSONata",
    },
    {
      name: 'an unclosed call in a quoted audience points at its end, inside the quotes',
      with: "    channel: notifications\n    audience: '$lowercase(userId'\n",
      needle: "'$lowercase(userId'", offset: 18,
      message: "broadcast sink 'with.audience': invalid JSONata: Expected \")\" before end of expression",
    },
    { name: 'no channel', with: '    audience: userId\n', needle: 'audience', message: "broadcast sink 'with' is missing required key 'channel'" },
    { name: 'an unknown key', with: '    channel: c\n    users: all\n', needle: 'users', message: "unknown key 'users' in broadcast sink 'with'" },
    { name: 'a channel that is not a string', with: '    channel: [a, b]\n', needle: '[a, b]', message: "broadcast sink 'with'.channel must be string" },
  ];
  it.each(cases)('$name', async (c) => {
    const text = `name: bad-broadcast\nsource: { stream: s }\nsink:\n  type: broadcast\n  with:\n${c.with}`;
    const diagnostics = await diagnosticsOf(text);
    expect(diagnostics.map((d) => d.message)).toHaveLength(1);
    expect(diagnostics[0]!.message).toContain(c.message);
    expect({ line: diagnostics[0]!.line, col: diagnostics[0]!.col }).toEqual(positionOf(text, c.needle, c.offset ?? 0));
  });
});
