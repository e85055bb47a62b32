import { describe, expect, it } from 'vitest';
import { dropNulls, shapeEvent, wrapEnvelope } from '../../../engine/config/event-shape.ts';

describe('dropNulls: null means absent', () => {
  const cases: { name: string; input: unknown; expected: unknown }[] = [
    { name: 'top-level nulls go', input: { a: 1, b: null }, expected: { a: 1 } },
    { name: 'nested nulls go', input: { data: { user_id: null, cost: null, n: 0, s: '' } }, expected: { data: { n: 0, s: '' } } },
    { name: 'array elements stay, objects inside them are cleaned', input: { xs: [null, 1, { k: null, v: 2 }] }, expected: { xs: [null, 1, { v: 2 }] } },
    { name: 'false, 0 and "" are values, not absences', input: { f: false, z: 0, e: '' }, expected: { f: false, z: 0, e: '' } },
    { name: 'an object of nulls becomes empty', input: { metadata: { a: null } }, expected: { metadata: {} } },
  ];
  for (const c of cases) it(c.name, () => expect(dropNulls(structuredClone(c.input))).toEqual(c.expected));
});

describe('wrapEnvelope (source.envelope: wrap)', () => {
  it('moves every non-envelope key of a flat event under data', () => {
    expect(wrapEnvelope({
      event: 'rag-retrieval', source: 'cyrex', timestamp: '2026-12-01T14:05:00.123456',
      query: 'q', top_k: 5, metadata: { challengeId: 'c1' }, version: '3',
    })).toEqual({
      event: 'rag-retrieval', source: 'cyrex', timestamp: '2026-12-01T14:05:00.123456',
      data: { query: 'q', top_k: 5, metadata: { challengeId: 'c1' }, version: '3' },
    });
  });

  it('leaves an envelope (an event with a data object) as it is', () => {
    const e = { event: 'task-completed', source: 's', service: 's', action: 'a', timestamp: 't', metadata: { m: 1 }, data: { taskId: 't1' } };
    expect(wrapEnvelope(e)).toBe(e);
  });

  it('wraps an event whose data is not an object, keeping that value under data.data', () => {
    expect(wrapEnvelope({ event: 'x', data: 'hello' })).toEqual({ event: 'x', data: { data: 'hello' } });
  });
});

describe('shapeEvent', () => {
  it('drops Python\'s "None" from a field map, not from a JSON event', () => {
    expect(shapeEvent({ event: 'evaluation-completed', num_samples: 'None', dataset_name: 'x' }, 'fields', 'keep'))
      .toEqual({ event: 'evaluation-completed', dataset_name: 'x' });
    expect(shapeEvent({ event: 'e', data: { name: 'None' } }, 'json', 'keep')).toEqual({ event: 'e', data: { name: 'None' } });
  });

  it('drops nulls before wrapping, so a null optional never reaches data', () => {
    expect(shapeEvent({ event: 'agent-decision', source: 'cyrex', reasoning: null, agent_name: 'a' }, 'json', 'wrap'))
      .toEqual({ event: 'agent-decision', source: 'cyrex', data: { agent_name: 'a' } });
  });

  it('keeps an event as decoded when the pipeline does not wrap', () => {
    expect(shapeEvent({ event: 'x', model_name: 'm' }, 'json', 'keep')).toEqual({ event: 'x', model_name: 'm' });
  });
});
