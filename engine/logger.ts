import { pino, destination, type Logger, type DestinationStream } from 'pino';
import pretty from 'pino-pretty';
import { choiceSetting } from './settings.ts';

/**
 * The one root logger. Components take children: `root.child({ pipeline, sink })`.
 * Level from SYNAPSE_LOG_LEVEL (default info); JSON lines, to stderr unless told otherwise,
 * so that commands whose output is data (dry-run, tail) keep stdout clean.
 */
export function createLogger(opts: { level?: string; fd?: number; stream?: DestinationStream } = {}): Logger {
  const level = opts.level ?? choiceSetting('SYNAPSE_LOG_LEVEL') ?? 'info';
  const fd = opts.fd ?? 2;
  return pino({ level, base: { service: 'synapse' } }, opts.stream ?? (wantsPretty(fd) ? prettyStream(fd) : destination({ fd, sync: false })));
}

/**
 * Human-readable lines on a terminal, JSON lines everywhere else (files, pipes, log shippers);
 * SYNAPSE_LOG_FORMAT=json or =pretty decides instead.
 */
function wantsPretty(fd: number): boolean {
  const format = choiceSetting('SYNAPSE_LOG_FORMAT');
  if (format) return format === 'pretty';
  return (fd === 1 ? process.stdout : process.stderr).isTTY === true;
}

function prettyStream(fd: number): DestinationStream {
  return pretty({ destination: fd, colorize: true, translateTime: 'SYS:HH:MM:ss.l', ignore: 'pid,hostname,service', singleLine: true, sync: true });
}

/** A logger that discards everything (tests, dry-runs). */
export const silentLogger: Logger = pino({ level: 'silent' });
