import { createServer } from 'node:net';
import { isLoopback } from '../../admin/auth.ts';
import { buildAdminServer, listenAdmin } from '../../admin/server.ts';
import { SynapseError, errorMessage } from '../../errors.ts';
import { createLogger } from '../../logger.ts';
import { ConfigWatcher } from '../../runtime/config-watcher.ts';
import { Engine } from '../../runtime/engine.ts';
import { pipelinesDir, schemasDir, type CommonOptions } from '../context.ts';
import { numericSetting } from '../../settings.ts';
import { resolveRunRedis } from '../redis-url.ts';

export interface RunOptions extends CommonOptions {
  pipelines?: string;
  redis?: string;
  port?: string;
  host?: string;
  /** commander's --no-watch sets this false. */
  watch?: boolean;
}

/**
 * A SIGINT repeating the first one within this time is the same Ctrl-C delivered twice, not a
 * second request: under `npm start` it reaches the engine from the terminal and again from npm,
 * which forwards it. (SIGTERM is sent to a process, not a terminal's group: a second one is meant.)
 */
const SAME_CTRL_C_MS = 500;

/**
 * `synapse run`: every pipeline against Redis, the admin API and hot reload, until SIGINT or
 * SIGTERM; then it stops reading, settles and acknowledges what is in hand, and exits 0 — after
 * SYNAPSE_SHUTDOWN_TIMEOUT_MS (10 s) regardless, leaving what was not settled pending (a start
 * still going after that long exits 1). A second signal (not a Ctrl-C delivered twice, see
 * SAME_CTRL_C_MS) exits at once (code 1).
 */
export async function runCommand(opts: RunOptions): Promise<number> {
  const logger = createLogger({ fd: 1 });
  const token = process.env.SYNAPSE_ADMIN_TOKEN || undefined;
  const host = opts.host ?? process.env.SYNAPSE_ADMIN_HOST ?? '127.0.0.1';
  // Empty is unset, as for every setting; a port is written in digits (not `1e3`).
  const portText = (opts.port ?? (process.env.SYNAPSE_ADMIN_PORT?.trim() || '8080')).trim();
  const port = /^[0-9]+$/.test(portText) ? Number(portText) : Number.NaN;
  // Checked before anything starts: an engine whose admin API cannot run must not consume headless.
  if (!isLoopback(host) && !token) {
    throw new SynapseError(`refusing to serve the admin API on ${host} without a token: set SYNAPSE_ADMIN_TOKEN, or bind to loopback (--host 127.0.0.1 or SYNAPSE_ADMIN_HOST)`);
  }
  if (!Number.isInteger(port) || port < 0 || port > 65535) {
    throw new SynapseError(`--port (or SYNAPSE_ADMIN_PORT) must be a port number 0..65535, got '${portText.slice(0, 40)}'`);
  }
  // A port already taken (another engine) fails here, before anything is consumed.
  await portFree(host, port).catch((err: unknown) => {
    throw new SynapseError(listenFailure(err, host, port));
  });
  const redis = await resolveRunRedis(opts, logger);
  const engine = new Engine({ redisUrl: redis.url, pipelinesDir: pipelinesDir(opts.pipelines), schemasDir: schemasDir(opts), logger });
  const watcher = opts.watch === false ? undefined : new ConfigWatcher(engine, logger);
  const wsSecret = process.env.SYNAPSE_WS_SECRET || undefined;
  const shutdownTimeoutMs = numericSetting('SYNAPSE_SHUTDOWN_TIMEOUT_MS', 10_000);

  let stopping = false;
  let adminRef: Awaited<ReturnType<typeof buildAdminServer>> | undefined;
  // Each step looks whether a signal came meanwhile; a stop waits for the step in hand, so it
  // never closes what is still being opened.
  const startup = (async () => {
    await engine.start();
    if (stopping) return;
    let address: string;
    try {
      // The admin server needs the engine's Redis connection (WebSocket hub), so it comes after.
      adminRef = await buildAdminServer({ engine, logger, token, wsSecret });
      if (stopping) return;
      await watcher?.start();
      if (stopping) return;
      address = await listenAdmin(adminRef, host, port, token);
    } catch (err) {
      // No admin API, no engine: an operator could neither see nor stop a headless consumer.
      const message = listenFailure(err, host, port);
      logger.error({ err: errorMessage(err) }, message);
      stopping = true;
      await watcher?.close();
      await adminRef?.close().catch(() => undefined);
      await engine.stop(shutdownTimeoutMs);
      await redis.owned?.stop();
      throw new SynapseError(message);
    }
    logger.info({ address, docs: `${address}/docs`, watching: !!watcher }, 'admin API listening');
  })();
  let first: { signal: NodeJS.Signals; at: number } | undefined;
  const done = new Promise<number>((resolve) => {
    const onSignal = (signal: NodeJS.Signals) => {
      if (signal === 'SIGINT' && first?.signal === 'SIGINT' && Date.now() - first.at < SAME_CTRL_C_MS) return;
      if (stopping) {
        logger.warn({ signal }, 'second signal: exiting now');
        process.exit(1);
      }
      first = { signal, at: Date.now() };
      stopping = true;
      logger.info({ signal }, 'stopping: finishing the batches in hand');
      void (async () => {
        // The start may still be waiting on Redis (for the consumer groups, at most 5 s; on a
        // server that accepts connections and never answers, longer). What is still being opened
        // cannot be closed: the stop waits for the start, at most its time limit, then exits 1.
        let timer: NodeJS.Timeout | undefined;
        const started = await Promise.race([
          startup.then(() => true, () => true),
          new Promise<boolean>((r) => (timer = setTimeout(() => r(false), shutdownTimeoutMs))),
        ]);
        clearTimeout(timer);
        if (!started) {
          logger.error({ timeoutMs: shutdownTimeoutMs }, 'the start did not finish within the time limit of the stop: exiting now');
          process.exit(1);
        }
        await watcher?.close();
        await adminRef?.close();
        await engine.stop(shutdownTimeoutMs);
        await redis.owned?.stop();
      })().then(() => resolve(0), (err) => {
        logger.error({ err }, 'error while stopping');
        resolve(1);
      });
    };
    process.on('SIGINT', onSignal);
    process.on('SIGTERM', onSignal);
  });

  await startup;
  return done;
}

/** Resolves when host:port can be listened on (port 0 always can); rejects with the listen error. */
function portFree(host: string, port: number): Promise<void> {
  if (port === 0) return Promise.resolve();
  return new Promise((resolve, reject) => {
    const probe = createServer();
    probe.once('error', reject);
    probe.listen({ host, port, exclusive: true }, () => probe.close(() => resolve()));
  });
}

/** What to tell the operator when the admin API cannot listen. */
function listenFailure(err: unknown, host: string, port: number): string {
  const code = (err as NodeJS.ErrnoException).code;
  const where = `${host}:${port}`;
  if (code === 'EADDRINUSE') return `the admin API cannot listen on ${where}: the address is in use (another engine?); choose a free port with --port N or SYNAPSE_ADMIN_PORT`;
  if (code === 'EACCES') return `the admin API may not listen on ${where} (EACCES): choose a port above 1023 with --port N or SYNAPSE_ADMIN_PORT`;
  if (code === 'EADDRNOTAVAIL' || code === 'ENOTFOUND') return `the admin API cannot listen on ${where}: no such local address; choose one with --host or SYNAPSE_ADMIN_HOST`;
  return `the admin API failed to start on ${where}: ${errorMessage(err)}`;
}
