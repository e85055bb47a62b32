import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { loadPipeline } from '../../../engine/config/load-pipeline.ts';
import { MAX_ALIAS_COUNT, MAX_CONFIG_BYTES, SourceDocument } from '../../../engine/config/source-document.ts';
import { ConfigInvalidError, PipelineInvalidError } from '../../../engine/errors.ts';
import { rejection } from '../support/rejection.ts';
import { loadContext, tempDirs } from '../support/temp-dir.ts';

const dirs = tempDirs('synapse-source-document-');
afterAll(() => dirs.cleanup());

/** Nine levels of nine-fold aliases: 9^9 (387 million) strings if expanded naively. */
const BILLION_LAUGHS = [
  'a: &a ["lol","lol","lol","lol","lol","lol","lol","lol","lol"]',
  ...'bcdefghi'.split('').map((name, i) => {
    const prev = 'abcdefgh'[i]!;
    return `${name}: &${name} [${Array(9).fill(`*${prev}`).join(',')}]`;
  }),
  '',
].join('\n');

/** Bad inputs, each refused with one diagnostic at FILE:1:1 (the file as a whole is wrong). */
const badFiles: { name: string; content: () => string | Buffer; message: string }[] = [
  {
    name: 'a YAML alias bomb ("billion laughs")',
    content: () => BILLION_LAUGHS,
    message: `Excessive alias count indicates a resource exhaustion attack (aliases are limited to ${MAX_ALIAS_COUNT} expansions)`,
  },
  {
    name: 'a 10 MB file',
    content: () => `name: big\ndescription: ${'x'.repeat(10 * 1024 * 1024)}\n`,
    message: 'file is 10.0 MiB; configuration files are limited to 1 MiB',
  },
  {
    name: 'a binary file (NUL bytes)',
    content: () => Buffer.from([0x6e, 0x61, 0x6d, 0x65, 0x3a, 0x20, 0x00, 0x01, 0x02, 0x0a]),
    message: 'not a text file (NUL byte at offset 6)',
  },
  {
    name: 'invalid UTF-8',
    // 0xC3 starts a two-byte sequence; 0x28 cannot continue it.
    content: () => Buffer.from([0x6e, 0x61, 0x6d, 0x65, 0x3a, 0x20, 0xc3, 0x28, 0x0a]),
    message: 'not a text file (invalid UTF-8)',
  },
];

describe('SourceDocument refuses bad input', () => {
  for (const c of badFiles) {
    it(`SourceDocument.read: ${c.name}`, async () => {
      const dir = await dirs.make({ 'p.yaml': c.content() });
      const file = join(dir, 'p.yaml');
      const err = await rejection(SourceDocument.read(file), ConfigInvalidError);
      expect(err.diagnostics).toEqual([{ file, line: 1, col: 1, message: c.message }]);
    });

    it(`loadPipeline: ${c.name} is a PipelineInvalidError at FILE:1:1`, async () => {
      const dir = await dirs.make({ 'p.yaml': c.content() });
      const file = join(dir, 'p.yaml');
      const err = await rejection(loadPipeline(file, await loadContext(join(dir, 'no-schemas'))), PipelineInvalidError);
      expect(err.code).toBe('SYN_PIPELINE_INVALID');
      expect(err.diagnostics).toEqual([{ file, line: 1, col: 1, message: c.message }]);
    });
  }

  // The test's own time-out is the guard: a naive expansion would run out of memory, not finish.
  it('the alias bomb is refused by parse() too, without expanding it', () => {
    expect(() => SourceDocument.parse('bomb.yaml', BILLION_LAUGHS)).toThrow(ConfigInvalidError);
  }, 5_000);

  it('a file exactly at the size limit is read', async () => {
    const head = 'description: ';
    const text = head + 'x'.repeat(MAX_CONFIG_BYTES - head.length - 1) + '\n';
    expect(Buffer.byteLength(text)).toBe(MAX_CONFIG_BYTES);
    const dir = await dirs.make({ 'p.yaml': text });
    const doc = await SourceDocument.read(join(dir, 'p.yaml'));
    expect((doc.value as { description: string }).description).toHaveLength(MAX_CONFIG_BYTES - head.length - 1);
  });

  it('a UTF-8 byte-order mark is accepted and not part of the first key', async () => {
    const dir = await dirs.make({ 'p.yaml': Buffer.concat([Buffer.from([0xef, 0xbb, 0xbf]), Buffer.from('name: bom\n')]) });
    const doc = await SourceDocument.read(join(dir, 'p.yaml'));
    expect(doc.value).toEqual({ name: 'bom' });
  });

  it('a missing file is a diagnostic at 1:1, not an unhandled ENOENT', async () => {
    const dir = await dirs.make();
    const file = join(dir, 'nope.yaml');
    const err = await rejection(SourceDocument.read(file), ConfigInvalidError);
    const [d] = err.diagnostics;
    expect([d!.file, d!.line, d!.col]).toEqual([file, 1, 1]);
    expect(d!.message).toMatch(/^cannot read file: ENOENT/);
  });
});

describe('SourceDocument positions', () => {
  const text = [
    'name: demo',                         // 1
    'filter: "x = = 1"',                  // 2
    "quoted: 'abc'",                      // 3
    'list:',                              // 4
    '  - key: value',                     // 5
    '  - other',                          // 6
    'block: |',                           // 7
    '  first line',                       // 8
    '  second line',                      // 9
    '',
  ].join('\n');
  const doc = SourceDocument.parse('pos.yaml', text);

  const cases: { name: string; at: () => unknown; expected: [number, number] }[] = [
    { name: 'a value', at: () => doc.locate(['name']), expected: [1, 7] },
    { name: 'a key', at: () => doc.locate(['name'], { key: true }), expected: [1, 1] },
    { name: 'a value inside a sequence item', at: () => doc.locate(['list', 0, 'key']), expected: [5, 10] },
    { name: 'a key inside a sequence item', at: () => doc.locate(['list', 0, 'key'], { key: true }), expected: [5, 5] },
    { name: 'a sequence item', at: () => doc.locate(['list', 1]), expected: [6, 5] },
    { name: 'a missing key falls back to the nearest ancestor', at: () => doc.locate(['list', 0, 'missing']), expected: [5, 5] },
    { name: 'a missing index falls back to the sequence', at: () => doc.locate(['list', 9]), expected: [5, 3] },
    { name: 'a missing top-level key falls back to the document', at: () => doc.locate(['nothing']), expected: [1, 1] },
    { name: 'an offset inside a double-quoted scalar skips the quote', at: () => doc.locateInScalar(['filter'], 4), expected: [2, 14] },
    { name: 'an offset inside a single-quoted scalar skips the quote', at: () => doc.locateInScalar(['quoted'], 2), expected: [3, 12] },
    { name: 'offset 0 of a block scalar is its first content character', at: () => doc.locateInScalar(['block'], 0), expected: [8, 3] },
    { name: 'an offset on the second line of a block scalar', at: () => doc.locateInScalar(['block'], 'first line\n'.length + 7), expected: [9, 10] },
    { name: 'locationOf a character offset', at: () => doc.locationOf(text.indexOf('other')), expected: [6, 5] },
  ];
  for (const c of cases) {
    it(c.name, () => {
      expect(c.at()).toEqual({ file: 'pos.yaml', line: c.expected[0], col: c.expected[1] });
    });
  }

  it('an indented line inside a block scalar maps columns by the block indentation', () => {
    const d = SourceDocument.parse('b.yaml', 'x: |\n  {\n    "a": 1\n  }\n');
    // Content is `{\n  "a": 1\n}\n`; offset 4 is the `"` of `"a"`, at column 5 of file line 3.
    expect(d.locateInScalar(['x'], 4)).toEqual({ file: 'b.yaml', line: 3, col: 5 });
  });

  it('parse errors carry every problem with its position', () => {
    let err: unknown;
    try {
      SourceDocument.parse('dup.yaml', 'a: 1\nb: 2\na: 3\nb: 4\n');
    } catch (e) {
      err = e;
    }
    expect(err).toBeInstanceOf(ConfigInvalidError);
    expect((err as ConfigInvalidError).diagnostics).toEqual([
      { file: 'dup.yaml', line: 3, col: 1, message: 'Map keys must be unique' },
      { file: 'dup.yaml', line: 4, col: 1, message: 'Map keys must be unique' },
    ]);
  });

  it('merge keys (<<) are not expanded: they stay an ordinary key', () => {
    const d = SourceDocument.parse('m.yaml', 'base: &b { x: 1 }\nchild:\n  <<: *b\n');
    expect(d.value).toEqual({ base: { x: 1 }, child: { '<<': { x: 1 } } });
  });
});

describe('SourceDocument reads plain JSON without the YAML parser, with the same result', () => {
  const schema = [
    '{',
    '  "$id": "https://synapse.dev/schemas/x.json",',
    '  "type": "object",',
    '  "properties": { "say \\"hi\\"": { "type": "string" }, "n": { "enum": [1, 2.5, -0, null, true] } },',
    '  "items": [{ "a": 1 }, { "a": 2 }]',
    '}',
  ].join('\n');

  it('the value and every position are those the YAML parser gives', () => {
    const json = SourceDocument.parse('x.json', schema);
    // The same text as YAML-only input: a leading comment line makes it invalid JSON.
    const yaml = SourceDocument.parse('x.json', `# c\n${schema}`);
    expect(json.value).toEqual(yaml.value);
    expect(json.locate(['properties', 'n', 'enum', 1])).toEqual({ ...yaml.locate(['properties', 'n', 'enum', 1]), line: 4 });
    expect(json.locate(['items', 1, 'a'], { key: true })).toEqual({ file: 'x.json', line: 5, col: 27 });
  });

  it('a key repeated in one object is refused with its position, as YAML refuses it', () => {
    let err: unknown;
    try {
      SourceDocument.parse('x.json', '{\n  "a": 1,\n  "b": { "a": 2 },\n  "\\u0061": 3\n}');
    } catch (e) {
      err = e;
    }
    expect(err).toBeInstanceOf(ConfigInvalidError);
    expect((err as ConfigInvalidError).diagnostics).toEqual([expect.objectContaining({ line: 4, message: expect.stringMatching(/unique/i) })]);
  });

  it('the same key in sibling objects is not a repeat', () => {
    expect(SourceDocument.parse('x.json', '[{ "a": 1 }, { "a": 2 }]').value).toEqual([{ a: 1 }, { a: 2 }]);
  });
});
