/**
 * The one catalogue of Synapse's errors. Every error has a stable `code` (SYN_…) that tests
 * and API replies use; `name` is the class name.
 */

/** Where in a file something is wrong; line and col are 1-based. */
export interface SourceLocation {
  file: string;
  line: number;
  col: number;
}

/** One problem found in a file, printed as `FILE:LINE:COL message`. */
export interface Diagnostic extends SourceLocation {
  message: string;
}

/** Formats a diagnostic the way every Synapse tool prints it: `FILE:LINE:COL message`. */
export function formatDiagnostic(d: Diagnostic): string {
  return `${displayPath(d.file)}:${d.line}:${d.col} ${d.message}`;
}

/** A path as a person wants to read it: relative to the working directory when inside it. */
export function displayPath(file: string): string {
  const cwd = process.cwd() + '/';
  return file.startsWith(cwd) ? file.slice(cwd.length) : file;
}

/** Base of every Synapse error. */
export class SynapseError extends Error {
  readonly code: string = 'SYN_ERROR';
  constructor(message: string, options?: ErrorOptions) {
    super(message, options);
    this.name = new.target.name;
  }
}

/** A file (pipeline, test file, schema) has one or more errors; it is rejected whole. */
export class ConfigInvalidError extends SynapseError {
  override readonly code: string = 'SYN_CONFIG_INVALID';
  constructor(readonly diagnostics: Diagnostic[]) {
    super(diagnostics.map(formatDiagnostic).join('\n'));
  }
}

/** A pipeline file is invalid. */
export class PipelineInvalidError extends ConfigInvalidError {
  override readonly code = 'SYN_PIPELINE_INVALID';
}

/** A schema file or the schema directory is invalid. */
export class SchemaInvalidError extends ConfigInvalidError {
  override readonly code = 'SYN_SCHEMA_INVALID';
}

/** A pipeline test file is invalid. */
export class TestFileInvalidError extends ConfigInvalidError {
  override readonly code = 'SYN_TEST_FILE_INVALID';
}

/** An entry could not be decoded into an event (bad JSON, too large, missing payload). */
export class DecodeError extends SynapseError {
  override readonly code = 'SYN_DECODE';
}

/** A JSONata expression failed at run time, ran too long or recursed too deep. */
export class ExpressionError extends SynapseError {
  override readonly code = 'SYN_EXPRESSION';
}

/**
 * Thrown by a sink for a failure worth retrying (network error, 5xx, Redis busy).
 * The runner retries it with back-off per the pipeline's `retry`. Plain errors are treated alike.
 */
export class RetryableError extends SynapseError {
  override readonly code = 'SYN_RETRYABLE';
}

/** Thrown by a sink for a failure that retrying cannot fix (4xx, bad event): straight to the DLQ. */
export class UnrecoverableError extends SynapseError {
  override readonly code = 'SYN_UNRECOVERABLE';
}

/**
 * Thrown by a sink's `write` when only some messages of a batch failed: `errors[i]` is the error
 * of message i, undefined where it succeeded. Only the failed messages are retried.
 */
export class BatchError extends SynapseError {
  override readonly code = 'SYN_BATCH';
  constructor(readonly errors: ReadonlyArray<Error | undefined>) {
    const failed = errors.filter(Boolean).length;
    super(`${failed} of ${errors.length} messages failed: ${errors.find(Boolean)?.message ?? ''}`);
  }
}

/** A sink was used after `close()`. */
export class SinkClosedError extends SynapseError {
  override readonly code = 'SYN_SINK_CLOSED';
}

/**
 * Redis refused DLQ writes of a settle that acknowledges nothing (replays, schedules); `refused`
 * names each entry and Redis's reply.
 */
export class DlqWriteRefusedError extends SynapseError {
  override readonly code = 'SYN_DLQ_WRITE_REFUSED';
  constructor(readonly refused: { id: string; error: string }[]) {
    super(`Redis refused ${refused.length} DLQ write(s): ${refused[0]?.error}`);
  }
}

/**
 * An admin dry-run or validation did not finish in the worker thread it runs in
 * (docs/security.md): it went past the thread's memory, its time or its byte bound, could not be
 * handed to the thread, found too many requests waiting, or the engine is stopping. The engine
 * itself is untouched; the next request gets a fresh worker when this one had to go.
 */
export class SandboxLimitError extends SynapseError {
  override readonly code = 'SYN_SANDBOX_LIMIT';
  /** The HTTP status it is answered with: the request's fault (422), or the engine's state. */
  readonly statusCode: number;
  constructor(readonly limit: 'memory' | 'time' | 'size' | 'input' | 'busy' | 'gone' | 'stopping' | 'crash', message: string) {
    super(message);
    this.statusCode = limit === 'busy' || limit === 'stopping' ? 503 : limit === 'crash' ? 500 : limit === 'gone' ? 499 : 422;
  }
}

/** A request that names what cannot be (a listing's start that is neither an id nor a time): HTTP 400. */
export class BadRequestError extends SynapseError {
  override readonly code = 'BAD_REQUEST';
  readonly statusCode = 400;
}

/** No Redis could be reached or started. */
export class RedisUnavailableError extends SynapseError {
  override readonly code = 'SYN_REDIS_UNAVAILABLE';
}

// Redis's replies for "not now" (out of memory, read-only replica, persistence failing, loading,
// a script running, a cluster in trouble): the server refused the write, the event did nothing wrong.
const WRITE_REFUSAL = /^(OOM|READONLY|MISCONF|LOADING|BUSY|MASTERDOWN|NOREPLICAS|CLUSTERDOWN|TRYAGAIN)\b/;

/**
 * Whether an error is Redis refusing a write for its own reasons rather than for anything in the
 * event. Such a failure is not dead-lettered: the entry stays pending and the pipeline waits for
 * Redis (see StreamConsumer).
 */
export function isWriteRefusal(err: unknown): boolean {
  return WRITE_REFUSAL.test(errorMessage(err));
}

/** Returns the message of anything thrown, for logs and DLQ reasons. */
export function errorMessage(err: unknown): string {
  if (err instanceof Error) return err.message;
  if (err && typeof err === 'object' && 'message' in err) return String((err as { message: unknown }).message);
  return String(err);
}
