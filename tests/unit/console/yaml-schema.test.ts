import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { CompletionContext } from '@codemirror/autocomplete';
import { EditorState } from '@codemirror/state';
import { outline, pathOf, schemaCompletion } from '../../../console/src/yaml-schema.ts';
import { REPO_ROOT } from '../../helpers/pipelines.ts';

// The console editor's completion source over editor/pipeline.schema.json: where the cursor is
// (an outline of block YAML, half-typed lines included) and what the schema offers there.
const schema = JSON.parse(readFileSync(join(REPO_ROOT, 'editor', 'pipeline.schema.json'), 'utf8'));

/** Completion labels at the `|` of `text`. */
function complete(text: string, explicit = false): string[] {
  const pos = text.indexOf('|');
  const doc = text.slice(0, pos) + text.slice(pos + 1);
  const state = EditorState.create({ doc });
  const result = schemaCompletion(schema)(new CompletionContext(state, pos, explicit));
  return (result?.options ?? []).map((o) => o.label).sort();
}

describe('outline', () => {
  it('places keys and list items by indentation, compact lists included', () => {
    const { byLine } = outline('name: x\nsinks:\n- type: publish\n  with:\n    stream: out\n- type: log\nsource:\n  stream: s\n');
    const path = (line: number) => pathOf(byLine[line]!.at(-1)!).map((n) => (n.kind === 'item' ? '[]' : n.key)).join('.');
    expect(path(4)).toBe('sinks.[].with.stream');
    expect(path(5)).toBe('sinks.[].type');
    expect(path(7)).toBe('source.stream');
  });

  it('reads no keys inside a block scalar, however they look', () => {
    const { byLine } = outline('transform: |\n  {\n    "userId": data.userId\n  }\nsink:\n  type: log\n');
    expect(byLine[2]).toEqual([]);
    expect(pathOf(byLine[5]!.at(-1)!).map((n) => n.key)).toEqual(['sink', 'type']);
  });
});

describe('schema completion', () => {
  it('offers the top-level keys not yet present', () => {
    const labels = complete('name: x\n|', true);
    expect(labels).toContain('source');
    expect(labels).toContain('transform');
    expect(labels).not.toContain('name');
  });

  it("offers a sink's `with:` keys by its type (the schema's if/then)", () => {
    expect(complete('sink:\n  type: publish\n  with:\n    st|')).toContain('stream');
    const http = complete('sinks:\n  - type: http\n    with:\n      u|');
    expect(http).toContain('url');
    expect(http).not.toContain('stream');
  });

  it('offers the values of an enum', () => {
    expect(complete('sink:\n  type: |')).toEqual(expect.arrayContaining(['publish', 'http', 'log']));
    expect(complete('source:\n  codec: |')).toEqual(['fields', 'json']);
  });
});
