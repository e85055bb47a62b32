import { spawn } from 'node:child_process';
import { readFile } from 'node:fs/promises';
import { resolve } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { freePort } from '../../engine/runtime/redis-server.ts';
import { startTestRedis, waitFor, type TestRedis } from '../helpers/redis.ts';

const root = resolve(import.meta.dirname, '../..');

/** The shell commands of the README's ```sh blocks, comments stripped. */
async function readmeCommands(): Promise<string[]> {
  const text = await readFile(resolve(root, 'README.md'), 'utf8');
  const blocks = [...text.matchAll(/```sh\n([\s\S]*?)```/g)].map((m) => m[1]!);
  return blocks.flatMap((b) => b.split('\n')).map((l) => l.replace(/\s+#\s.*$/, '').trim()).filter(Boolean);
}

function sh(command: string, env: NodeJS.ProcessEnv, timeoutMs = 60_000): Promise<{ code: number | null; out: string }> {
  return new Promise((done) => {
    const child = spawn('bash', ['-c', command], { cwd: root, env: { ...process.env, ...env } });
    let out = '';
    child.stdout.on('data', (d) => (out += d));
    child.stderr.on('data', (d) => (out += d));
    const timer = setTimeout(() => child.kill('SIGKILL'), timeoutMs);
    child.on('close', (code) => {
      clearTimeout(timer);
      done({ code, out });
    });
  });
}

/**
 * Runs a command that does not end by itself (`tail`) until its output matches `wanted`, then
 * stops it: `shown` says whether it did, while still running, within `timeoutMs`.
 */
function firstLine(command: string, env: NodeJS.ProcessEnv, wanted: RegExp, timeoutMs = 60_000): Promise<{ shown: boolean; out: string }> {
  return new Promise((done) => {
    const child = spawn('bash', ['-c', command], { cwd: root, env: { ...process.env, ...env }, detached: true });
    let out = '';
    let finished = false;
    const finish = (shown: boolean) => {
      if (finished) return;
      finished = true;
      clearTimeout(timer);
      try {
        process.kill(-child.pid!, 'SIGKILL');
      } catch {
        // Exited already.
      }
      done({ shown, out });
    };
    const onData = (d: Buffer) => {
      out += d;
      if (wanted.test(out)) finish(true);
    };
    child.stdout.on('data', onData);
    child.stderr.on('data', (d) => (out += d));
    child.on('close', () => finish(false));
    const timer = setTimeout(() => finish(false), timeoutMs);
  });
}

/**
 * The README must stay true: each command it shows runs. The engine itself (`npm start`) runs in
 * this test too; `npm test` is what runs this very test, and `tail` runs until stopped.
 */
describe('the README', () => {
  let redis: TestRedis;
  let port: number;
  let engine: ReturnType<typeof spawn> | undefined;

  beforeAll(async () => {
    redis = await startTestRedis({ own: true });
    port = await freePort();
  });
  afterAll(async () => {
    // Stop the whole process group: what a failed run left behind goes too.
    if (engine?.pid) {
      const group = -engine.pid;
      const alive = () => {
        try {
          process.kill(group, 0);
          return true;
        } catch {
          return false;
        }
      };
      if (alive()) process.kill(group, 'SIGTERM');
      // The engine settles and exits on SIGTERM (while its Redis is still up).
      await waitFor(() => !alive(), 'the engine started by npm start to exit', 20_000);
    }
    await redis?.close();
  });

  it('shows the two newcomer commands', async () => {
    const commands = await readmeCommands();
    expect(commands).toContain('npm install && npm start');
    expect(commands).toContain('npm test');
  });

  it('every other command of it runs and exits 0', async () => {
    const commands = (await readmeCommands()).filter((c) => !['npm install && npm start', 'npm test'].includes(c));
    expect(commands.length).toBeGreaterThan(4);
    const env = { REDIS_URL: redis.url, SYNAPSE_ADMIN_PORT: String(port) };
    // npm start, as the README's first command runs it (the install is what CI did already).
    engine = spawn('npm', ['start'], { cwd: root, env: { ...process.env, ...env }, stdio: ['ignore', 'pipe', 'pipe'], detached: true });
    let log = '';
    engine.stdout!.on('data', (d) => (log += d));
    await waitFor(() => log.includes('admin API listening'), 'npm start to serve the admin API', 60_000);
    for (const command of commands) {
      const isTail = command.startsWith('npx synapse tail');
      const run = command.replace('localhost:8080', `localhost:${port}`);
      if (isTail) {
        // tail follows until stopped; what it shows first are the latest entries (the walkthrough's).
        const { shown, out } = await firstLine(run, env, /^\{"id":"\d+-\d+"/m);
        expect({ command, shown, out: shown ? '' : out }).toEqual({ command, shown: true, out: '' });
        continue;
      }
      const { code, out } = await sh(run, env);
      expect({ command, code, out: code === 0 ? '' : out }).toEqual({ command, code: 0, out: '' });
    }
  }, 400_000); // a dozen CLI starts (seconds each) beside the rest of the suite on two cores
});
