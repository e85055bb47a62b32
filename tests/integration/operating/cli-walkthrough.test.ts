import { spawn } from 'node:child_process';
import type { Redis } from 'ioredis';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { SYNAPSE_BIN, runCli } from '../../helpers/engine-process.ts';
import { FIXTURE_SCHEMAS, REPO_ROOT, orderEvent, testKey } from '../../helpers/pipelines.ts';
import { startTestRedis, waitFor, type TestRedis } from '../../helpers/redis.ts';
import { addEvents, readStream } from '../../helpers/streams.ts';

// Issue #12, items 4 and 5: every walkthrough step shows what it promises; publish fills what the
// Publisher fills; replay runs up to now without --to.

let server: TestRedis;
let redis: Redis;

beforeAll(async () => {
  server = await startTestRedis();
  redis = server.client();
});
afterAll(async () => {
  redis?.disconnect();
  await server?.close();
});

/**
 * Runs `synapse tail ARGS`; calls `feed` every 200 ms while it runs (to add entries), until the
 * JSON lines it printed satisfy `until`; then stops it with SIGINT and returns them.
 */
async function tail(args: string[], until: (lines: Record<string, unknown>[]) => boolean, feed?: (lines: Record<string, unknown>[]) => Promise<unknown>) {
  const child = spawn(process.execPath, [SYNAPSE_BIN, 'tail', ...args, '--redis', server.url], { cwd: REPO_ROOT, stdio: ['ignore', 'pipe', 'pipe'] });
  let out = '';
  let err = '';
  child.stdout.setEncoding('utf8').on('data', (d: string) => (out += d));
  child.stderr.setEncoding('utf8').on('data', (d: string) => (err += d));
  const exited = new Promise<number | null>((r) => child.once('exit', r));
  const lines = () => out.split('\n').slice(0, -1).map((l) => JSON.parse(l) as Record<string, unknown>);
  try {
    await waitFor(async () => {
      if (until(lines())) return true;
      if (feed) await feed(lines());
      return false;
    }, `tail ${args.join(' ')} to print what it should (printed: ${out}${err})`, 30_000, 200);
  } finally {
    child.kill('SIGINT');
    await exited;
  }
  return lines();
}

describe('synapse tail', () => {
  it('shows the last 10 entries first, oldest first, then follows', async () => {
    const stream = testKey('tail');
    const ids = await addEvents(redis, stream, Array.from({ length: 15 }, (_, i) => orderEvent(i)));
    let added: string | undefined;
    const shown = await tail([stream], (l) => l.some((x) => x.id === added), async (l) => {
      if (l.length >= 10 && !added) [added] = await addEvents(redis, stream, [orderEvent(100)]);
    });
    expect(shown.map((l) => l.id)).toEqual([...ids.slice(5), added]);
    expect(shown[0]).toMatchObject({ payload: orderEvent(5) });
  }, 60_000);

  it('--last N shows N; --last 0 only what comes; --from ID what comes after ID', async () => {
    const stream = testKey('tail');
    const ids = await addEvents(redis, stream, Array.from({ length: 5 }, (_, i) => orderEvent(i)));
    expect((await tail([stream, '--last', '2'], (l) => l.length >= 2)).map((l) => l.id)).toEqual(ids.slice(3));
    // Nothing is printed until it runs: keep adding entries until one shows.
    const fresh = await tail([stream, '--last', '0'], (l) => l.length > 0, () => addEvents(redis, stream, [orderEvent(99)]));
    expect(fresh.filter((l) => ids.includes(String(l.id)))).toEqual([]);
    expect((await tail([stream, '--from', ids[2]!], (l) => l.length >= 2)).slice(0, 2).map((l) => l.id)).toEqual(ids.slice(3, 5));
  }, 60_000);
});

describe('synapse publish', () => {
  it('fills a missing timestamp (now) and source (--source, else synapse-cli)', async () => {
    const stream = testKey('in');
    const { source: _s, timestamp: _t, ...bare } = orderEvent(1);
    const before = Date.now();
    for (const extra of [[], ['--source', 'billing']]) {
      const r = await runCli(['publish', stream, JSON.stringify(bare), '--schemas', FIXTURE_SCHEMAS, '--redis', server.url, ...extra]);
      expect(r.code, r.stderr).toBe(0);
    }
    const [first, second] = (await readStream(redis, stream)).map((e) => JSON.parse(e.fields.payload!) as { source: string; timestamp: string });
    expect(first).toMatchObject({ ...bare, source: 'synapse-cli' });
    expect(second).toMatchObject({ ...bare, source: 'billing' });
    expect(Date.parse(first!.timestamp)).toBeGreaterThanOrEqual(before - 1000);
  }, 60_000);
});

describe('synapse replay', () => {
  it('without --to replays up to now', async () => {
    const stream = testKey('in');
    const copy = testKey('copy');
    await addEvents(redis, stream, [orderEvent(1), orderEvent(2)]);
    const r = await runCli(['replay', stream, '--from', '2020-01-01T00:00:00Z', '--to-stream', copy, '--redis', server.url]);
    expect(r.code, r.stderr).toBe(0);
    expect((await readStream(redis, copy)).map((e) => JSON.parse(e.fields.payload!))).toEqual([orderEvent(1), orderEvent(2)]);
  }, 60_000);
});
