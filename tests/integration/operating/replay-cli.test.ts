import type { ChildProcess } from 'node:child_process';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { key, ping, pipelineYaml, useEngines } from '../../helpers/engine.ts';
import { runCli } from '../../helpers/engine-process.ts';
import { heldOnXadd, startTestRedis, waitFor, type TestRedis } from '../../helpers/redis.ts';
import type { Redis } from 'ioredis';

// Ctrl-C on `synapse replay` stops the replay after the chunk in hand, wherever it runs: a replay
// through a pipeline runs in the engine, and must not go on there after the command has ended.
// Redis holds every write (CLIENT PAUSE … WRITE) while the test interrupts, so the replay is
// still on its first chunk of 500 when the signal comes.

const T0 = Date.parse('2026-01-01T00:00:00.000Z');

async function writeHistory(client: Redis, stream: string, n: number): Promise<void> {
  const batch = client.pipeline();
  for (let i = 0; i < n; i++) batch.xadd(stream, `${T0 + i}-0`, 'payload', JSON.stringify(ping(100 + i)));
  await batch.exec();
}

/** Follows a child's stderr as it comes. */
function stderrOf(child: ChildProcess): () => string {
  let text = '';
  child.stderr?.on('data', (c: string) => (text += c));
  return () => text;
}

describe('Ctrl-C on synapse replay', () => {
  let redis: TestRedis;
  let client: Redis;
  beforeAll(async () => {
    redis = await startTestRedis();
    client = redis.client();
  });
  afterAll(async () => {
    await client?.call('CLIENT', 'UNPAUSE').catch(() => undefined);
    client?.disconnect();
    await redis?.close();
  });

  it('--to-stream: stops after the chunk in hand, prints what was done, exits 1', async () => {
    const stream = key('history');
    const target = key('copy');
    await writeHistory(client, stream, 1500);
    await client.call('CLIENT', 'PAUSE', '20000', 'WRITE');
    let child: ChildProcess | undefined;
    const run = runCli(['replay', stream, '--from', '-', '--to', '+', '--to-stream', target, '--redis', redis.url], { onChild: (c) => (child = c) });
    try {
      // It has read its first chunk and waits on the copy.
      await heldOnXadd(client, 'the first chunk held by the paused writes');
      child!.kill('SIGINT');
      const stderr = stderrOf(child!);
      await waitFor(() => stderr().includes('stopping the replay after the chunk in hand'), 'the command to take the Ctrl-C');
    } finally {
      await client.call('CLIENT', 'UNPAUSE');
    }
    const res = await run;
    expect(res.code, res.stderr).toBe(1);
    // The chunk in hand is copied whole; nothing after it.
    expect(JSON.parse(res.stdout.trim())).toEqual({ status: 'cancelled', scanned: 500, matched: 500, written: 500, toStream: target, lastId: `${T0 + 499}-0` });
    expect(await client.xlen(target)).toBe(500);
  });

  describe('--pipeline', () => {
    const { start } = useEngines();

    it('cancels the replay in the engine (DELETE /replay/:id) and exits 1 with the job', async () => {
      const name = key('p');
      const out = key('out');
      const f = await start({ pipelines: { [name]: pipelineYaml({ name, stream: key('in'), out }) } });
      const address = await f.app.listen({ port: 0, host: '127.0.0.1' });
      const stream = key('history');
      await writeHistory(f.client, stream, 1500);
      await f.client.call('CLIENT', 'PAUSE', '20000', 'WRITE');
      let child: ChildProcess | undefined;
      let stderr: () => string = () => '';
      // A trailing slash on --admin is taken as the same address.
      const run = runCli(['replay', stream, '--from', '-', '--to', '+', '--pipeline', name, '--admin', `${address}/`], {
        onChild: (c) => {
          child = c;
          stderr = stderrOf(c);
        },
      });
      try {
        // The job runs in the engine, its first chunk held on the sink's write; the command follows it.
        await heldOnXadd(f.client, 'the first chunk held by the paused writes');
        await waitFor(() => stderr().includes('%'), 'the command to follow the job');
        child!.kill('SIGINT');
        await waitFor(() => stderr().includes('the engine stops the replay after the chunk in hand'), 'the engine to take the cancel');
      } finally {
        await f.client.call('CLIENT', 'UNPAUSE');
      }
      const res = await run;
      expect(res.code, res.stderr).toBe(1);
      const job = JSON.parse(res.stdout.trim());
      expect(job).toMatchObject({ status: 'cancelled', scanned: 500, written: 500 });
      expect(await f.client.xlen(out)).toBe(500);
      // Where to find it, said as soon as the engine took it.
      expect(res.stderr).toContain(`replay ${job.id} running in the engine (GET ${address}/replay/${job.id})`);
      // The engine says the same.
      expect(JSON.parse((await f.inject({ method: 'GET', url: `/replay/${job.id}` })).body)).toMatchObject({ status: 'cancelled', scanned: 500 });
    });
  });
});
