import { spawn, type ChildProcess } from 'node:child_process';
import { randomUUID } from 'node:crypto';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { freePort } from '../../../engine/runtime/redis-server.ts';
import { runCli } from '../../helpers/engine-process.ts';
import { FIXTURE_SCHEMAS, REPO_ROOT, orderEvent, ordersPipeline, pipelineDirs, testKey } from '../../helpers/pipelines.ts';
import { startTestRedis, waitFor, type TestRedis } from '../../helpers/redis.ts';
import { addEvents } from '../../helpers/streams.ts';

// Issue #12, item 7: signals reach the engine however it is started, and a second engine on a
// busy admin port exits non-zero without consuming.

let server: TestRedis;
const dirs = pipelineDirs();
const started: ChildProcess[] = [];

beforeAll(async () => {
  server = await startTestRedis();
});
afterEach(() => {
  // Whatever a failed test left running: its whole process group.
  for (const child of started.splice(0)) {
    try {
      process.kill(-child.pid!, 'SIGKILL');
    } catch {
      // Gone already.
    }
  }
});
afterAll(async () => {
  await dirs.cleanup();
  await server?.close();
});

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}

/** `npm start` in its own process group, over one pipeline; resolves once the admin API listens. */
async function npmStart() {
  const port = await freePort();
  const pipelines = await dirs.make([ordersPipeline({ stream: testKey('in'), out: testKey('out') })]);
  const npm = spawn('npm', ['start'], {
    cwd: REPO_ROOT, detached: true, stdio: ['ignore', 'pipe', 'pipe'],
    env: { ...process.env, REDIS_URL: server.url, SYNAPSE_ADMIN_PORT: String(port), SYNAPSE_PIPELINES: pipelines, SYNAPSE_SCHEMAS: FIXTURE_SCHEMAS, SYNAPSE_LOG_FORMAT: 'json', SYNAPSE_CONSUMER: '' },
  });
  started.push(npm);
  let out = '';
  npm.stdout!.on('data', (d) => (out += d));
  npm.stderr!.on('data', (d) => (out += d));
  const exited = new Promise<number | null>((r) => npm.once('exit', (code) => r(code)));
  await waitFor(() => out.includes('admin API listening'), 'npm start to serve the admin API', 60_000);
  // The consumer name is <host>-<pid> of the engine process.
  const consumer = /"consumer":"([^"]+)"/.exec(out)![1]!;
  const enginePid = Number(consumer.split('-').pop());
  expect(enginePid).not.toBe(npm.pid);
  expect(alive(enginePid)).toBe(true);
  return { npm, enginePid, port, exited, out: () => out };
}

describe('npm start', () => {
  it('SIGTERM to the npm process stops the engine: it settles, exits and frees its port', async () => {
    const run = await npmStart();
    process.kill(run.npm.pid!, 'SIGTERM');
    await waitFor(() => !alive(run.enginePid), 'the engine to exit', 20_000);
    await run.exited;
    expect(run.out()).toContain('engine stopped');
    expect(run.out()).not.toContain('second signal');
    // The port is free again.
    await expect(fetch(`http://127.0.0.1:${run.port}/health`)).rejects.toThrow();
  }, 90_000);

  it('Ctrl-C (SIGINT to the terminal\'s process group, which npm forwards again) stops the engine gracefully, once', async () => {
    const run = await npmStart();
    process.kill(-run.npm.pid!, 'SIGINT');
    await waitFor(() => !alive(run.enginePid), 'the engine to exit', 20_000);
    await run.exited;
    expect(run.out()).toContain('engine stopped');
    expect(run.out().match(/stopping: finishing the batches in hand/g)).toHaveLength(1);
    expect(run.out()).not.toContain('second signal');
  }, 90_000);
});

describe('a second engine on a busy admin port', () => {
  it('exits 1 naming the port, and consumes nothing', async () => {
    const port = await freePort();
    const first = spawn(process.execPath, [`${REPO_ROOT}/bin/synapse.mjs`, 'run', '--pipelines', await dirs.make([]), '--schemas', FIXTURE_SCHEMAS, '--redis', server.url, '--port', String(port)], {
      cwd: REPO_ROOT, detached: true, stdio: ['ignore', 'pipe', 'pipe'], env: { ...process.env, SYNAPSE_LOG_FORMAT: 'json' },
    });
    started.push(first);
    let out = '';
    first.stdout!.on('data', (d) => (out += d));
    await waitFor(() => out.includes('admin API listening'), 'the first engine', 60_000);

    const stream = testKey('in');
    const doc = ordersPipeline({ stream, out: testKey('out'), name: `second-${randomUUID().slice(0, 8)}` });
    const client = server.client();
    await addEvents(client, stream, [orderEvent(1)]);
    const second = await runCli(['run', '--pipelines', await dirs.make([doc]), '--schemas', FIXTURE_SCHEMAS, '--redis', server.url, '--port', String(port)], { env: { SYNAPSE_LOG_FORMAT: 'json' }, timeoutMs: 60_000 });
    expect(second.code, second.stderr).toBe(1);
    expect(second.stderr).toContain(`cannot listen on 127.0.0.1:${port}: the address is in use`);
    expect(second.stdout).not.toContain('engine started');
    // It never joined the stream: no consumer group was made.
    expect(await client.xinfo('GROUPS', stream)).toEqual([]);
    client.disconnect();
  }, 90_000);
});
