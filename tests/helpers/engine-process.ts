import { spawn, type ChildProcess } from 'node:child_process';
import { freePort } from '../../engine/runtime/redis-server.ts';
import { flushBeforeKill, synapseCommand } from './mutation.ts';
import { REPO_ROOT } from './pipelines.ts';
import { waitFor } from './redis.ts';

export { SYNAPSE_BIN } from './mutation.ts';

/** One JSON log line of the engine (pino). */
export type LogLine = Record<string, unknown> & { msg?: string; level?: number };

/** How a child process ended. */
export interface Exit {
  code: number | null;
  signal: NodeJS.Signals | null;
}

/** A `synapse run` child process and what it has logged so far. */
export interface EngineProcess {
  child: ChildProcess;
  consumer: string;
  /** The port of its admin API (a free one, so engines side by side do not clash). */
  adminPort: number;
  /** Parsed stdout log lines, in order. */
  logs: LogLine[];
  /** Everything it wrote to stderr. */
  stderr(): string;
  /** Resolves when the process has exited. */
  exited: Promise<Exit>;
  /** Whether it is still running. */
  alive(): boolean;
  /** Waits for a log line matching `pred` (already logged or to come). */
  waitForLog(pred: (line: LogLine) => boolean, what: string, timeoutMs?: number): Promise<LogLine>;
  /** Sends `signal` (SIGTERM by default) and waits for the exit, at most `timeoutMs`. */
  stop(signal?: NodeJS.Signals, timeoutMs?: number): Promise<Exit>;
  /** Its exit so far, stderr and last log lines, for failure messages. */
  report(): string;
}

const running = new Set<ChildProcess>();

/**
 * Starts `synapse run --pipelines DIR --schemas DIR --redis URL --port <free>` as a child process
 * named `consumer` (SYNAPSE_CONSUMER) and waits for its "engine started" line (unless `waitStarted`
 * is false). Fails (with the child's output) when it exits or does not start within `startTimeoutMs`.
 */
export async function spawnEngine(opts: {
  pipelines: string;
  schemas: string;
  redisUrl: string;
  consumer: string;
  env?: Record<string, string>;
  startTimeoutMs?: number;
  waitStarted?: boolean;
}): Promise<EngineProcess> {
  const env: NodeJS.ProcessEnv = { ...process.env, SYNAPSE_CONSUMER: opts.consumer, SYNAPSE_LOG_LEVEL: 'info', ...opts.env };
  delete env.REDIS_URL;
  const adminPort = await freePort();
  const args = ['run', '--pipelines', opts.pipelines, '--schemas', opts.schemas, '--redis', opts.redisUrl, '--port', String(adminPort)];
  const command = synapseCommand();
  const child = spawn(process.execPath, [...command.prefix, ...args], {
    cwd: REPO_ROOT,
    env: { ...env, ...command.env },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  command.started(child);
  running.add(child);
  const logs: LogLine[] = [];
  let partial = '';
  let errText = '';
  child.stdout!.setEncoding('utf8').on('data', (chunk: string) => {
    const lines = (partial + chunk).split('\n');
    partial = lines.pop()!;
    for (const line of lines) {
      if (!line.trim()) continue;
      try {
        logs.push(JSON.parse(line) as LogLine);
      } catch {
        logs.push({ msg: line, raw: true });
      }
    }
  });
  child.stderr!.setEncoding('utf8').on('data', (chunk: string) => (errText += chunk));
  const exited = new Promise<Exit>((resolveExit) => {
    child.once('exit', (code, signal) => {
      running.delete(child);
      resolveExit({ code, signal });
    });
  });
  let exit: Exit | undefined;
  void exited.then((e) => (exit = e));

  const describe = () => `engine ${opts.consumer} (exit ${JSON.stringify(exit)}); stderr: ${errText.slice(-2000)}; last logs: ${JSON.stringify(logs.slice(-8))}`;
  const proc: EngineProcess = {
    child,
    consumer: opts.consumer,
    adminPort,
    logs,
    stderr: () => errText,
    exited,
    alive: () => exit === undefined,
    report: describe,
    async waitForLog(pred, what, timeoutMs = 20_000) {
      try {
        return await waitFor(() => {
          const found = logs.find(pred);
          if (!found && exit) throw new Error(`it exited: ${describe()}`);
          return found;
        }, `${opts.consumer} to log ${what}`, timeoutMs);
      } catch (err) {
        throw new Error(`${(err as Error).message}\n${describe()}`);
      }
    },
    async stop(signal = 'SIGTERM', timeoutMs = 15_000) {
      if (exit) return exit;
      // Under Stryker's coverage run: what the child reached, read before a SIGKILL loses it.
      const flushing = signal === 'SIGKILL' ? flushBeforeKill(child) : undefined;
      if (flushing) await flushing;
      child.kill(signal);
      return waitFor(() => exit, `${opts.consumer} to exit after ${signal}`, timeoutMs);
    },
  };
  if (opts.waitStarted !== false) await proc.waitForLog((l) => l.msg === 'engine started', '"engine started"', opts.startTimeoutMs ?? 30_000);
  return proc;
}

/** SIGKILLs every engine child still running (afterEach safety net for failed tests). */
export async function killEngines(): Promise<void> {
  const left = [...running];
  // Under Stryker's coverage run: what the children reached, read before the SIGKILL loses it.
  const flushing = left.map(flushBeforeKill).filter((f) => f !== undefined);
  if (flushing.length) await Promise.all(flushing);
  for (const child of left) child.kill('SIGKILL');
  await Promise.all(left.map((c) => (c.exitCode !== null || c.signalCode !== null ? undefined : new Promise((r) => c.once('exit', r)))));
}

/** Runs a one-shot `synapse` command; resolves with its exit code and output. */
export function runCli(args: string[], opts: { env?: Record<string, string>; timeoutMs?: number; onChild?: (child: ChildProcess) => void } = {}): Promise<{ code: number | null; stdout: string; stderr: string }> {
  const env: NodeJS.ProcessEnv = { ...process.env, ...opts.env };
  delete env.REDIS_URL;
  if (opts.env?.REDIS_URL) env.REDIS_URL = opts.env.REDIS_URL;
  const command = synapseCommand();
  const child = spawn(process.execPath, [...command.prefix, ...args], { cwd: REPO_ROOT, env: { ...env, ...command.env }, stdio: ['ignore', 'pipe', 'pipe'] });
  command.started(child);
  let stdout = '';
  let stderr = '';
  child.stdout.setEncoding('utf8').on('data', (c: string) => (stdout += c));
  child.stderr.setEncoding('utf8').on('data', (c: string) => (stderr += c));
  opts.onChild?.(child);
  return new Promise((resolveRun, reject) => {
    const timer = setTimeout(() => {
      child.kill('SIGKILL');
      reject(new Error(`synapse ${args.join(' ')} did not finish within ${opts.timeoutMs ?? 30_000} ms; stderr: ${stderr}`));
    }, opts.timeoutMs ?? 30_000);
    child.once('close', (code) => {
      clearTimeout(timer);
      resolveRun({ code, stdout, stderr });
    });
  });
}

/** SIGTERMs an engine and fails, with its output, unless it exits 0 within `timeoutMs`. */
export async function stopCleanly(proc: EngineProcess, timeoutMs = 15_000): Promise<void> {
  const exit = await proc.stop('SIGTERM', timeoutMs);
  if (exit.code !== 0 || exit.signal !== null) throw new Error(`expected exit code 0 after SIGTERM: ${proc.report()}`);
}
