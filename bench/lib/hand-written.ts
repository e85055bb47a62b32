import { startProfile } from './profile.ts';
import { readdir, readFile } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import { Ajv2020, type ValidateFunction } from 'ajv/dist/2020.js';
import addFormatsModule from 'ajv-formats';
import { Redis } from 'ioredis';
import { TIMESTAMP_FORMAT, isTimestamp } from '../../engine/config/timestamp.ts';
import { cpuSecondsBetween, rate, type OutcomeCounts, type SideResult, type SideSpec } from './side.ts';

/**
 * The baseline: the consumer loop a team would write by hand for a scenario's job (its filter and
 * transform in plain JavaScript: bench/lib/scenarios.ts), with no engine in between. Same Redis commands in spirit (XREADGROUP, XADD, XACK), same ajv 2020 +
 * formats validation of the same schema, the same filter and mapping in plain JavaScript, the
 * same DLQ entries for invalid events; one pipelined round trip per batch for all writes and acks.
 */

// ajv-formats is CommonJS; its default export arrives wrapped under ESM.
const addFormats = ((addFormatsModule as unknown as { default?: unknown }).default ?? addFormatsModule) as (ajv: Ajv2020) => void;

/** The platform-event envelope, as far as the mapping reads it. */
interface Envelope {
  event: string;
  data: { userId?: string; taskId?: string; title?: string; error?: string };
}

/** Plain-JS twin of the task-outcomes JSONata transform. */
export function toNotification(ev: Envelope): Record<string, unknown> {
  const d = ev.data;
  const completed = ev.event === 'task-completed';
  const what = String(d.title ? d.title : d.taskId);
  return {
    userId: d.userId,
    type: completed ? 'success' : 'error',
    title: completed ? 'Task Completed' : 'Task Failed',
    message: completed
      ? `Your task ${what} has completed.`
      : `Your task ${what} failed: ${String(d.error ? d.error : 'unknown error')}`,
    data: { taskId: d.taskId },
  };
}

/**
 * Compiles the envelope schema the way the engine's registry does (ajv 2020, all errors, formats,
 * the timestamp format producers need, the schemas beside it for `$ref`s): what a hand-written
 * consumer validating the same contract would have to set up too.
 */
export async function compileSchema(file: string): Promise<ValidateFunction> {
  const ajv = new Ajv2020({ allErrors: true, strict: true, strictTypes: false, strictTuples: false, strictRequired: false });
  addFormats(ajv);
  ajv.addFormat(TIMESTAMP_FORMAT, { type: 'string', validate: isTimestamp });
  for (const keyword of ['x-stream', 'x-producer', 'x-event', 'x-examples', 'x-wire']) ajv.addKeyword({ keyword });
  const target = JSON.parse(await readFile(file, 'utf8')) as { $id?: string };
  for (const name of await readdir(dirname(file))) {
    if (!name.endsWith('.json')) continue;
    const schema = JSON.parse(await readFile(join(dirname(file), name), 'utf8')) as { $id?: string };
    if (schema.$id && schema.$id !== target.$id) ajv.addSchema(schema);
  }
  return ajv.compile(target);
}

type RawEntry = [id: string, fields: string[]];

/** What one batch turns into: output payloads, DLQ field lists, ids to ack. */
interface BatchWork {
  outputs: string[];
  dlq: string[][];
  acks: string[];
  filtered: number;
}

/** Filter and transform of one event: the output value, or undefined when filtered out. */
export type Handler = (event: unknown) => unknown;

/** Decode, validate, filter and map one batch in memory. */
function processBatch(entries: RawEntry[], validate: ValidateFunction, spec: SideSpec, handle: Handler): BatchWork {
  const work: BatchWork = { outputs: [], dlq: [], acks: [], filtered: 0 };
  const failedAt = new Date().toISOString();
  const toDlq = (id: string, payload: string, stage: string, error: string) =>
    work.dlq.push(['payload', payload, 'error', error, 'stage', stage, 'pipeline', 'hand-written',
      'source_stream', spec.input, 'source_id', id, 'attempts', '1', 'failed_at', failedAt]);
  for (const [id, fields] of entries) {
    work.acks.push(id);
    const payload = fields[fields.indexOf('payload') + 1] ?? '';
    let ev: unknown;
    try {
      ev = JSON.parse(payload);
    } catch (err) {
      toDlq(id, payload, 'decode', (err as Error).message);
      continue;
    }
    if (!validate(ev)) {
      toDlq(id, payload, 'validate', JSON.stringify(validate.errors));
      continue;
    }
    const out = handle(ev);
    if (out === undefined) {
      work.filtered++;
      continue;
    }
    work.outputs.push(JSON.stringify(out));
  }
  return work;
}

/** Writes a batch's outputs and DLQ entries and acks it, in one pipelined round trip. */
async function writeAndAck(redis: Redis, spec: SideSpec, work: BatchWork): Promise<void> {
  const pipe = redis.pipeline();
  for (const payload of work.outputs) pipe.xadd(spec.output, '*', 'payload', payload);
  for (const fields of work.dlq) pipe.xadd(spec.dlq, '*', ...fields);
  pipe.xack(spec.input, spec.group, ...work.acks);
  const results = await pipe.exec();
  const failed = results?.find(([err]) => err);
  if (failed) throw failed[0];
}

/**
 * Runs the hand-written consumer until all `spec.total` entries are acknowledged; throws if that
 * takes longer than `timeoutMs`.
 */
export async function runHandWritten(spec: SideSpec, schemaFile: string, timeoutMs: number, handle: Handler): Promise<SideResult> {
  const validate = await compileSchema(schemaFile);
  const redis = new Redis(spec.redisUrl, { maxRetriesPerRequest: null, connectionName: 'synapse-bench:hand-written' });
  await redis.xgroup('CREATE', spec.input, spec.group, '0', 'MKSTREAM');
  const counts: OutcomeCounts = { sunk: 0, filtered: 0, dlq: 0 };
  let batches = 0;
  const profile = await startProfile('hand-written');
  const t0 = performance.now();
  const cpu0 = process.cpuUsage();
  try {
    while (counts.sunk + counts.filtered + counts.dlq < spec.total) {
      if (performance.now() - t0 > timeoutMs) throw new Error(`hand-written consumer did not settle in ${timeoutMs / 1000}s`);
      const reply = (await redis.xreadgroup('GROUP', spec.group, spec.consumer, 'COUNT', spec.batch, 'BLOCK', 1000,
        'STREAMS', spec.input, '>')) as [string, RawEntry[]][] | null;
      const entries = reply?.[0]?.[1];
      if (!entries?.length) continue;
      const work = processBatch(entries, validate, spec, handle);
      await writeAndAck(redis, spec, work);
      counts.sunk += work.outputs.length;
      counts.filtered += work.filtered;
      counts.dlq += work.dlq.length;
      batches++;
    }
  } finally {
    await profile?.();
    redis.disconnect();
  }
  const seconds = (performance.now() - t0) / 1000;
  return { seconds, eventsPerSec: rate(spec.total, seconds), counts, batches, cpuSeconds: cpuSecondsBetween(cpu0) };
}
