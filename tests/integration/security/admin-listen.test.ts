import { mkdtemp, rm } from 'node:fs/promises';
import { createServer, type Server } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { runCli } from '../../helpers/engine-process.ts';
import { startTestRedis, type TestRedis } from '../../helpers/redis.ts';

// Issue #10, item 10: when the admin API cannot start, `synapse run` must not go on consuming
// headless: it exits non-zero, saying what to change.

let redis: TestRedis;
let dir: string;
let blocker: Server;
let takenPort: number;

beforeAll(async () => {
  redis = await startTestRedis();
  dir = await mkdtemp(join(tmpdir(), 'synapse-listen-'));
  blocker = createServer();
  await new Promise<void>((r) => blocker.listen(0, '127.0.0.1', r));
  takenPort = (blocker.address() as { port: number }).port;
});
afterAll(async () => {
  await new Promise((r) => blocker?.close(r));
  await redis?.close();
  await rm(dir, { recursive: true, force: true });
});

function run(extra: string[], env: Record<string, string> = {}) {
  return runCli(['run', '--pipelines', dir, '--schemas', dir, '--redis', redis.url, '--no-watch', ...extra], { env: { SYNAPSE_ADMIN_TOKEN: '', SYNAPSE_LOG_FORMAT: 'json', ...env }, timeoutMs: 30_000 });
}

describe('synapse run when the admin API cannot start', () => {
  it('a port in use: exits 1 and names --port', async () => {
    const res = await run(['--port', String(takenPort)]);
    expect(res.code, res.stderr).toBe(1);
    expect(res.stderr).toContain(`cannot listen on 127.0.0.1:${takenPort}: the address is in use`);
    expect(res.stderr).toContain('--port');
  });

  it('a non-loopback address without a token: exits 1 before consuming, and names SYNAPSE_ADMIN_TOKEN', async () => {
    const res = await run(['--host', '0.0.0.0', '--port', '0']);
    expect(res.code, res.stderr).toBe(1);
    expect(res.stderr).toContain('SYNAPSE_ADMIN_TOKEN');
    expect(res.stdout).not.toContain('engine started');
  });
});
