import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { runCli } from '../../helpers/engine-process.ts';

// A limit set to something that is not a whole number above zero (`10s`, `-1`, `1.5`) must not
// silently become its default — or zero: SYNAPSE_SHUTDOWN_TIMEOUT_MS=10s once forced every stop
// at once; nor a word outside a setting's few (a log level). Every command refuses to start,
// naming each bad setting, before it does anything (`synapse run`: before it touches Redis).

let dir: string;
beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'synapse-settings-'));
});
afterAll(async () => {
  await rm(dir, { recursive: true, force: true });
});

describe('a setting a command cannot take', () => {
  it('exits 1 before connecting, naming every bad setting with its value', async () => {
    // Port 1 answers nothing: an engine that went on would log its connection attempts.
    const res = await runCli(['run', '--pipelines', dir, '--schemas', dir, '--redis', 'redis://127.0.0.1:1', '--no-watch', '--port', '0'], {
      env: { SYNAPSE_SHUTDOWN_TIMEOUT_MS: '10s', SYNAPSE_DLQ_MAXLEN: '-1', SYNAPSE_WS_MAX_CONNECTIONS: '1.5', SYNAPSE_DLQ_MAX_PAYLOAD_BYTES: '4096', SYNAPSE_LOG_FORMAT: 'json', SYNAPSE_LOG_LEVEL: 'verbose' },
      timeoutMs: 20_000,
    });
    expect(res.code, res.stderr).toBe(1);
    expect(res.stderr).toContain("SYNAPSE_SHUTDOWN_TIMEOUT_MS must be a whole number from 1 to 2147483647, got '10s'");
    expect(res.stderr).toContain("SYNAPSE_DLQ_MAXLEN must be a whole number from 1 to 2147483647, got '-1'");
    expect(res.stderr).toContain("SYNAPSE_WS_MAX_CONNECTIONS must be a whole number from 1 to 2147483647, got '1.5'");
    // A log level pino does not know once failed with a stack trace.
    expect(res.stderr).toContain("SYNAPSE_LOG_LEVEL must be one of fatal, error, warn, info, debug, trace, silent, got 'verbose'");
    expect(res.stderr).not.toMatch(/\n\s+at /);
    // A valid one is not named.
    expect(res.stderr).not.toContain('SYNAPSE_DLQ_MAX_PAYLOAD_BYTES');
    expect(res.stdout).not.toContain('connecting to redis');
  });

  it('a port that is not written as a port number (1e3 once bound port 1000): exits 1 naming it', async () => {
    const res = await runCli(['run', '--pipelines', dir, '--schemas', dir, '--redis', 'redis://127.0.0.1:1', '--no-watch'], {
      env: { SYNAPSE_ADMIN_PORT: '1e3', SYNAPSE_LOG_FORMAT: 'json' },
      timeoutMs: 20_000,
    });
    expect(res.code, res.stderr).toBe(1);
    expect(res.stderr).toContain("--port (or SYNAPSE_ADMIN_PORT) must be a port number 0..65535, got '1e3'");
  });

  it('every command checks them: synapse validate does not go on with a nesting depth of abc', async () => {
    const res = await runCli(['validate', dir, '--schemas', dir], { env: { SYNAPSE_CONFIG_MAX_DEPTH: 'abc' }, timeoutMs: 20_000 });
    expect(res.code, res.stderr).toBe(1);
    expect(res.stderr).toBe("SYNAPSE_CONFIG_MAX_DEPTH must be a whole number from 1 to 2147483647, got 'abc'\n");
    expect(res.stdout).toBe('');
  });
});
