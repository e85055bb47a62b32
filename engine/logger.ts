import { pino, destination, type Logger, type DestinationStream } from 'pino';

/**
 * The one root logger. Components take children: `root.child({ pipeline, sink })`.
 * Level from SYNAPSE_LOG_LEVEL (default info); JSON lines, to stderr unless told otherwise,
 * so that commands whose output is data (dry-run, tail) keep stdout clean.
 */
export function createLogger(opts: { level?: string; fd?: number; stream?: DestinationStream } = {}): Logger {
  const level = opts.level ?? process.env.SYNAPSE_LOG_LEVEL ?? 'info';
  return pino({ level, base: { service: 'synapse' } }, opts.stream ?? destination({ fd: opts.fd ?? 2, sync: false }));
}

/** A logger that discards everything (tests, dry-runs). */
export const silentLogger: Logger = pino({ level: 'silent' });
