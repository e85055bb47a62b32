import fc from 'fast-check';
import type { CompiledPipeline } from '../config/load-pipeline.ts';
import { shapeEvent } from '../config/event-shape.ts';
import type { SchemaRegistry } from '../config/schema-registry.ts';
import { SourceDocument } from '../config/source-document.ts';
import { errorMessage } from '../errors.ts';
import { compileExpression } from '../expr/compile-expression.ts';
import { decoders, encodeForCodec } from '../runner/codec.ts';
import { dryRun } from '../testing/dry-run.ts';
import { schemaArbitrary } from './schema-arbitrary.ts';

/** One way valid events were dead-lettered, with how many and the smallest such event. */
export interface FuzzFailure {
  stage: string;
  sink?: string;
  error: string;
  count: number;
  /** The smallest event (as JSON) found to fail this way. */
  example: unknown;
}

/** What fuzzing one pipeline found. */
export interface FuzzResult {
  pipeline: string;
  file: string;
  schemaId: string;
  /** Events generated, and how many of them the pipeline's own validation accepts. */
  generated: number;
  valid: number;
  failures: FuzzFailure[];
  /** How long fuzzing it took (set by fuzzPipelines). */
  seconds?: number;
}

/** How many candidates are generated per valid event wanted, at most. */
const ATTEMPTS_PER_EVENT = 4;
/** How long shrinking one kind of failure to its smallest example may take. */
const SHRINK_TIME_MS = 5_000;

/**
 * Generates `runs` events that the pipeline's input schema accepts (from the schema, with
 * fast-check and `seed`, so a run can be replayed) and feeds them through the real compiled
 * pipeline with its sinks replaced by recorders, as `synapse test` does. A valid event must
 * never be dead-lettered by the pipeline's own expressions: every DLQ outcome (filter,
 * transform, a sink's `when:`) and every sink expression (`expressions` of its plugin) that
 * fails or, where required, gives nothing is a failure, grouped by stage and message.
 */
export async function fuzzPipeline(pipeline: CompiledPipeline, schemas: SchemaRegistry, opts: { runs: number; seed: number }): Promise<FuzzResult> {
  const v = pipeline.validate!;
  const registry = await registryWith(schemas, v.schemaId, v.schemaFile);
  const arb = schemaArbitrary(registry.get(v.schemaId)?.schema, v.schemaId, (id) => registry.get(id));
  const candidates = fc.sample(arb, { seed: opts.seed, numRuns: opts.runs * ATTEMPTS_PER_EVENT });
  const events: unknown[] = [];
  let generated = 0;
  for (const candidate of candidates) {
    if (events.length >= opts.runs) break;
    generated++;
    if (acceptedAsValid(pipeline, candidate)) events.push(candidate);
  }
  const result: FuzzResult = { pipeline: pipeline.name, file: pipeline.file, schemaId: v.schemaId, generated, valid: events.length, failures: [] };
  if (!events.length) return result;

  const groups = new Map<string, FuzzFailure>();
  const failuresOf = failureFinder(pipeline);
  const failures = await failuresOf(events);
  for (const [i, list] of failures.entries()) {
    for (const f of list) {
      const key = groupKey(f);
      const known = groups.get(key);
      if (!known) groups.set(key, { ...f, count: 1, example: events[i] });
      else {
        known.count++;
        if (size(events[i]) < size(known.example)) Object.assign(known, { example: events[i], error: f.error });
      }
    }
  }
  // Then the smallest example of each: fast-check shrinks a failing event of that kind (within
  // a time bound; what sampling found stands when shrinking finds nothing smaller).
  for (const [key, group] of groups) {
    const property = fc.asyncProperty(arb, async (event) => {
      if (!acceptedAsValid(pipeline, event)) return true;
      return !(await failuresOf([event]))[0]!.some((f) => groupKey(f) === key);
    });
    const run = await fc.check(property, { seed: opts.seed, numRuns: candidates.length, interruptAfterTimeLimit: SHRINK_TIME_MS, markInterruptAsFailure: false });
    const found = run.failed ? run.counterexample?.[0] : undefined;
    if (found !== undefined && size(found) <= size(group.example)) {
      const f = (await failuresOf([found]))[0]!.find((x) => groupKey(x) === key);
      if (f) Object.assign(group, { example: found, error: f.error });
    }
  }
  result.failures = [...groups.values()].sort((a, b) => b.count - a.count);
  return result;
}

type Failure = Omit<FuzzFailure, 'count' | 'example'>;

/** One group per kind of failure: the values a message quotes differ from event to event. */
function groupKey(f: Failure): string {
  return `${f.stage}\u0000${f.sink ?? ''}\u0000${f.error.replace(/"(?:[^"\\]|\\.)*"|'(?:[^'\\]|\\.)*'|-?\d[\d.eE+-]*/g, '…')}`;
}

function size(v: unknown): number {
  return JSON.stringify(v)?.length ?? 0;
}

/**
 * Runs events through the pipeline (sinks replaced by recorders) and says, per event, how the
 * pipeline dead-lettered it: a DLQ outcome, or a sink expression that failed or gave no key.
 */
function failureFinder(pipeline: CompiledPipeline): (events: unknown[]) => Promise<Failure[][]> {
  const sinkExpressions = pipeline.sinks.flatMap((s) => Object.entries(s.definition.expressions ?? {}).flatMap(([key, need]) => {
    const source = s.config[key];
    return typeof source === 'string' ? [{ sink: s.id, key, need, expr: compileExpression(source, { timeoutMs: pipeline.expressionTimeoutMs }) }] : [];
  }));
  return async (events) => {
    const { outcomes } = await dryRun(pipeline, events);
    const out: Failure[][] = [];
    for (const o of outcomes) {
      const list: Failure[] = [];
      out.push(list);
      if (o.kind === 'dlq') list.push({ stage: o.stage, sink: o.sink, error: o.error });
      if (o.kind !== 'sunk') continue;
      for (const e of sinkExpressions) {
        if (!o.sinks.includes(e.sink)) continue;
        try {
          const evaluated = e.expr.evaluate(o.value, { input: o.event });
          const value = e.expr.sync ? evaluated : await evaluated;
          if (e.need === 'required' && !givesKey(value)) {
            list.push({ stage: 'sink', sink: e.sink, error: `${e.key} '${e.expr.source}' gave ${JSON.stringify(value) ?? 'nothing'}; it must give a string or number` });
          }
        } catch (err) {
          list.push({ stage: 'sink', sink: e.sink, error: `${e.key}: ${errorMessage(err)}` });
        }
      }
    }
    return out;
  };
}

/** Whether the pipeline's own decoding, shaping and validation accept an event (as the runner would). */
function acceptedAsValid(pipeline: CompiledPipeline, event: unknown): boolean {
  try {
    const { codec, envelope } = pipeline.source;
    const decoded = decoders[codec]({ id: '0-1', fields: encodeForCodec(codec, event) }, pipeline.maxEventBytes);
    return Boolean(pipeline.validate?.validator(shapeEvent(decoded, codec, envelope)));
  } catch {
    return false;
  }
}

function givesKey(v: unknown): boolean {
  return (typeof v === 'string' && v !== '') || (typeof v === 'number' && Number.isFinite(v));
}

/** The registry holding the pipeline's schema: a schema named by file path is added to a copy. */
async function registryWith(schemas: SchemaRegistry, id: string, file: string | undefined): Promise<SchemaRegistry> {
  if (schemas.has(id) || !file) return schemas;
  const copy = schemas.fork();
  copy.addDocuments([await SourceDocument.read(file)]);
  return copy;
}
