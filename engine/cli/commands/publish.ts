import { readFile } from 'node:fs/promises';
import { openRedis } from '../../runtime/redis-client.ts';
import { checkEvent } from '../../config/check-event.ts';
import { completeEvent } from '../../publish/publisher.ts';
import { SynapseError } from '../../errors.ts';
import { xaddFields, xaddPayload } from '../../runtime/sink-context.ts';
import { loadContext, type CommonOptions } from '../context.ts';
import { redisUrlFrom } from '../redis-url.ts';
import { parseJsonLines } from './dry-run.ts';

export interface PublishOptions extends CommonOptions {
  file?: string;
  redis?: string;
  schema?: string;
  validate?: boolean;
  maxlen?: string;
  /** Write flat field maps (for `codec: fields` pipelines) instead of a `payload` field. */
  fields?: boolean;
  /** The `source` of events that have none (default `synapse-cli`). */
  source?: string;
}

/** The `source` `synapse publish` gives an event that names none. */
export const CLI_SOURCE = 'synapse-cli';

/**
 * `synapse publish STREAM (--file FILE.jsonl | JSON)`: completes every event as the Publisher
 * does (`timestamp` now, `source` from --source or `synapse-cli`, where missing), checks it
 * against its schema, and writes nothing if any is invalid; then XADDs them as `payload` fields.
 */
export async function publishCommand(stream: string, json: string | undefined, opts: PublishOptions): Promise<number> {
  if (!json && !opts.file) throw new SynapseError('give an event as JSON, or --file FILE.jsonl');
  const text = opts.file ? await readFile(opts.file, 'utf8') : json!;
  const now = new Date();
  const events = (opts.file ? parseJsonLines(text) : [JSON.parse(text)]).map((e) => completeEvent(e, opts.source ?? CLI_SOURCE, now));
  if (opts.validate !== false) {
    const { schemas } = await loadContext(opts);
    const problems = events.map((e, i) => ({ i, why: checkEvent(e, schemas, opts.schema) })).filter((p) => p.why);
    if (problems.length) {
      for (const p of problems) process.stderr.write(`event ${p.i + 1}: ${p.why}\n`);
      process.stderr.write(`nothing published: ${problems.length} of ${events.length} event(s) invalid\n`);
      return 1;
    }
  }
  const redis = await openRedis(redisUrlFrom(opts), { enableAutoPipelining: true, maxRetriesPerRequest: 3 });
  try {
    const maxlen = opts.maxlen ? Number(opts.maxlen) : undefined;
    const write = opts.fields ? xaddFields : xaddPayload;
    const ids = await Promise.all(events.map((e) => write(redis, stream, e, maxlen)));
    for (const id of ids) process.stdout.write(`${id}\n`);
  } finally {
    redis.disconnect();
  }
  return 0;
}
