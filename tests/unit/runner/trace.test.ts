import { describe, expect, it } from 'vitest';
import type { CompiledPipeline } from '../../../engine/config/load-pipeline.ts';
import { traceOutcome } from '../../../engine/runner/trace.ts';

// The path GET /tap shows for an entry, rebuilt from its outcome: each stage passed (or skipped,
// when the pipeline has none), then the one it stopped at and why.
const full = { name: 'p', validate: {}, filter: { source: 'amount > 10' }, transform: {} } as unknown as CompiledPipeline;
const bare = { name: 'bare' } as unknown as CompiledPipeline;

describe('traceOutcome', () => {
  it('sunk: every stage passed, the sink naming the sinks reached; the event and the value kept', () => {
    expect(traceOutcome(full, { id: '1-0', kind: 'sunk', event: { a: 1 }, value: { b: 2 }, sinks: ['notify', 'publish'] })).toEqual({
      pipeline: 'p', id: '1-0', outcome: 'sunk', event: { a: 1 }, value: { b: 2 },
      path: [
        { stage: 'decode', result: 'passed' }, { stage: 'validate', result: 'passed' }, { stage: 'filter', result: 'passed' },
        { stage: 'transform', result: 'passed' }, { stage: 'sink', result: 'passed', detail: 'notify, publish' },
      ],
    });
  });

  it('a pipeline without validate, filter or transform: those stages skipped', () => {
    expect(traceOutcome(bare, { id: '1-0', kind: 'sunk', event: 1, value: 1, sinks: ['s'] }).path).toEqual([
      { stage: 'decode', result: 'passed' }, { stage: 'validate', result: 'skipped' }, { stage: 'filter', result: 'skipped' },
      { stage: 'transform', result: 'skipped' }, { stage: 'sink', result: 'passed', detail: 's' },
    ]);
  });

  it('filtered by the filter: stops there, quoting it; no value', () => {
    expect(traceOutcome(full, { id: '2-0', kind: 'filtered', event: { a: 1 } })).toEqual({
      pipeline: 'p', id: '2-0', outcome: 'filtered', event: { a: 1 }, value: undefined,
      path: [
        { stage: 'decode', result: 'passed' }, { stage: 'validate', result: 'passed' },
        { stage: 'filter', result: 'filtered', detail: 'filter was falsy: amount > 10' },
      ],
    });
  });

  it("filtered with no filter: no sink's when matched", () => {
    const trace = traceOutcome(bare, { id: '2-0', kind: 'filtered', event: 1, value: 2 });
    expect(trace.path.at(-1)).toEqual({ stage: 'sink', result: 'filtered', detail: 'no sink\'s when: matched' });
    expect(trace.value).toBeUndefined(); // only a sunk entry's value is shown
  });

  it('dead-lettered at a stage: failed there with the error, the stages before it passed', () => {
    const trace = traceOutcome(full, { id: '3-0', kind: 'dlq', stage: 'transform', error: 'boom', attempts: 1, payload: '{}', event: { a: 1 } });
    expect(trace).toMatchObject({ outcome: 'dlq', event: { a: 1 }, value: undefined });
    expect(trace.path).toEqual([
      { stage: 'decode', result: 'passed' }, { stage: 'validate', result: 'passed' }, { stage: 'filter', result: 'passed' },
      { stage: 'transform', result: 'failed', detail: 'boom' },
    ]);
  });

  it('dead-lettered at delivery (poison): one step, no stage run', () => {
    expect(traceOutcome(full, { id: '4-0', kind: 'dlq', stage: 'delivery', error: 'poison: delivered 6 times', attempts: 6, payload: 'x' })).toEqual({
      pipeline: 'p', id: '4-0', outcome: 'dlq', event: undefined, value: undefined,
      path: [{ stage: 'delivery', result: 'failed', detail: 'poison: delivered 6 times' }],
    });
  });

  it('dropped (on_invalid: drop): stops at its stage as dropped, with the error', () => {
    expect(traceOutcome(full, { id: '5-0', kind: 'dropped', stage: 'validate', error: 'must be object' }).path).toEqual([
      { stage: 'decode', result: 'passed' }, { stage: 'validate', result: 'dropped', detail: 'must be object' },
    ]);
  });

  it('deferred: failed at the sink with its reason; no event kept', () => {
    expect(traceOutcome(full, { id: '6-0', kind: 'deferred', reason: 'OOM' })).toEqual({
      pipeline: 'p', id: '6-0', outcome: 'deferred', event: undefined, value: undefined,
      path: [
        { stage: 'decode', result: 'passed' }, { stage: 'validate', result: 'passed' }, { stage: 'filter', result: 'passed' },
        { stage: 'transform', result: 'passed' }, { stage: 'sink', result: 'failed', detail: 'OOM' },
      ],
    });
  });
});
