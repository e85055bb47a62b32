import { describe, expect, it } from 'vitest';
import { entryEventType } from '../../../engine/runtime/replay.ts';

// What `types:` of a replay matches: the event type of an entry, from its envelope or its flat field.
describe('entryEventType', () => {
  it('reads `event` of the payload envelope, or a flat `event` field, whichever comes first', () => {
    expect(entryEventType(['payload', '{"event":"ping","data":{}}'])).toBe('ping');
    expect(entryEventType(['source', 'svc', 'event', 'pong'])).toBe('pong');
    expect(entryEventType(['payload', '{"event":"a"}', 'event', 'b'])).toBe('a');
    expect(entryEventType(['event', 'b', 'payload', '{"event":"a"}'])).toBe('b');
  });

  it('no type: no such field, an envelope that is no JSON, an event that is no string', () => {
    expect(entryEventType([])).toBeUndefined();
    expect(entryEventType(['source', 'svc', 'data', '{}'])).toBeUndefined();
    expect(entryEventType(['payload', 'not json', 'event', 'late'])).toBeUndefined();
    expect(entryEventType(['payload', '{"event":5}'])).toBeUndefined();
    // A value that reads `event` is not a name.
    expect(entryEventType(['kind', 'event'])).toBeUndefined();
  });
});
