import { constants } from 'node:fs';
import { open, type FileHandle } from 'node:fs/promises';
import {
  LineCounter, parseDocument, isMap, isSeq, isScalar, isPair, isAlias,
  type Document, type Node as YamlNode, type Scalar,
} from 'yaml';
import { ConfigInvalidError, errorMessage, type Diagnostic, type SourceLocation } from '../errors.ts';
import { numericSetting } from '../settings.ts';

/** Largest configuration file Synapse reads; anything bigger is a mistake, not a pipeline. */
export const MAX_CONFIG_BYTES = 1024 * 1024;
/** Aliases allowed per document: enough for real reuse, far too few for a "billion laughs" bomb. */
export const MAX_ALIAS_COUNT = 100;
/**
 * Deepest nesting of collections a configuration file may have (SYNAPSE_CONFIG_MAX_DEPTH): far
 * more than any pipeline or schema needs, far less than what makes the YAML parser (and every
 * recursive step after it) take seconds or overflow the stack.
 */
export const MAX_NESTING_DEPTH = 100;

function maxNestingDepth(): number {
  return numericSetting('SYNAPSE_CONFIG_MAX_DEPTH', MAX_NESTING_DEPTH);
}

/** A path into a parsed document: map keys and sequence indices, as ajv's instancePath splits. */
export type DocPath = ReadonlyArray<string | number>;

/**
 * A YAML (or JSON) file parsed with its source positions kept, so every later error —
 * schema violation, bad expression, unknown sink — can point at FILE:LINE:COL.
 */
export class SourceDocument {
  private constructor(
    readonly file: string,
    readonly text: string,
    private parsed: { doc: Document.Parsed; lines: LineCounter } | undefined,
    /** The document as plain JS values. */
    readonly value: unknown,
  ) {}

  /** The YAML syntax tree with positions; parsed on first use when the file was plain JSON. */
  private get doc(): Document.Parsed {
    return this.syntax().doc;
  }

  private get lines(): LineCounter {
    return this.syntax().lines;
  }

  private syntax(): { doc: Document.Parsed; lines: LineCounter } {
    this.parsed ??= parseYaml(this.text);
    return this.parsed;
  }

  /**
   * Parses text. Throws ConfigInvalidError (with positions) for YAML syntax errors, duplicate
   * keys and alias bombs.
   */
  static parse(file: string, text: string): SourceDocument {
    const max = maxNestingDepth();
    const tooDeep = nestingBeyond(text, max);
    if (tooDeep !== undefined) {
      const { line, col } = lineCol(text, tooDeep);
      throw new ConfigInvalidError([{ file, line, col, message: `nesting deeper than ${max} levels: configuration files are limited to ${max} (SYNAPSE_CONFIG_MAX_DEPTH)` }]);
    }
    // Plain JSON without a repeated key (every schema file) is read by JSON.parse, many times
    // faster than the YAML parser; the positions are parsed only when an error needs one.
    const json = parseStrictJson(text);
    if (json.ok) return new SourceDocument(file, text, undefined, json.value);
    const { doc, lines } = parseYaml(text);
    const diagnostics: Diagnostic[] = [];
    for (const e of [...doc.errors]) {
      const { line, col } = lines.linePos(e.pos[0]);
      diagnostics.push({ file, line, col, message: firstLine(e.message) });
    }
    if (diagnostics.length > 0) throw new ConfigInvalidError(diagnostics);
    let value: unknown;
    try {
      value = doc.toJS({ maxAliasCount: MAX_ALIAS_COUNT });
    } catch (err) {
      throw new ConfigInvalidError([{ file, line: 1, col: 1,
        message: `${errorMessage(err)} (aliases are limited to ${MAX_ALIAS_COUNT} expansions)` }]);
    }
    return new SourceDocument(file, text, { doc, lines }, value);
  }

  /** Reads and parses a file, refusing files that are too large or not text. */
  static async read(file: string): Promise<SourceDocument> {
    return SourceDocument.parse(file, await readConfigText(file));
  }

  /** Line and column (1-based) of a character offset. */
  locationOf(offset: number): SourceLocation {
    const { line, col } = this.lines.linePos(Math.max(0, Math.min(offset, this.text.length)));
    return { file: this.file, line, col };
  }

  /**
   * Where the value at `path` is; with `key: true`, where its key is (for "unknown key").
   * Falls back to the nearest ancestor that exists.
   */
  locate(path: DocPath, opts: { key?: boolean } = {}): SourceLocation {
    const found = this.find(path);
    const node = opts.key ? (found.key ?? found.value) : (found.value ?? found.key);
    return this.locationOf(node?.range?.[0] ?? 0);
  }

  /** The scalar node at `path`, if the value there is a scalar (used to map expression offsets). */
  scalarAt(path: DocPath): Scalar | undefined {
    const { value } = this.find(path);
    return value && isScalar(value) ? value : undefined;
  }

  /**
   * Maps an offset inside the string value of the scalar at `path` to a file location, so that
   * an error at character 12 of a JSONata expression points into the YAML file. Exact for plain,
   * quoted (without escapes) and block scalars; otherwise approximate.
   */
  locateInScalar(path: DocPath, offset: number): SourceLocation {
    const node = this.scalarAt(path);
    if (!node?.range || typeof node.source !== 'string') return this.locate(path);
    const start = node.range[0];
    if (node.type === 'BLOCK_LITERAL' || node.type === 'BLOCK_FOLDED') {
      // Content starts on the line after the header (`|`, `>-`...); each line is indented.
      const headerEnd = this.text.indexOf('\n', start);
      if (headerEnd < 0) return this.locationOf(start);
      const contentLines = node.source.split('\n');
      // The block's indentation is that of its first non-empty line; deeper lines keep the
      // extra spaces as content.
      let blockIndent = 0;
      for (let at = headerEnd + 1; at < this.text.length;) {
        const end = this.text.indexOf('\n', at);
        const line = this.text.slice(at, end < 0 ? undefined : end);
        if (line.trim() !== '') {
          blockIndent = line.length - line.trimStart().length;
          break;
        }
        if (end < 0) break;
        at = end + 1;
      }
      let remaining = offset;
      let lineStart = headerEnd + 1;
      for (const content of contentLines) {
        const physicalEnd = this.text.indexOf('\n', lineStart);
        const physicalLength = (physicalEnd < 0 ? this.text.length : physicalEnd) - lineStart;
        if (remaining <= content.length) return this.locationOf(lineStart + Math.min(blockIndent + remaining, physicalLength));
        remaining -= content.length + 1;
        if (physicalEnd < 0) break;
        lineStart = physicalEnd + 1;
      }
      return this.locationOf(start);
    }
    if (node.type === 'QUOTE_DOUBLE' || node.type === 'QUOTE_SINGLE') {
      return this.locationOf(start + 1 + rawOffset(this.text, start + 1, offset, node.type === 'QUOTE_DOUBLE'));
    }
    return this.locationOf(start + offset);
  }

  private find(path: DocPath): { key?: YamlNode; value?: YamlNode } {
    let current: unknown = this.doc.contents;
    let key: YamlNode | undefined;
    let lastGood: { key?: YamlNode; value?: YamlNode } = { value: current as YamlNode };
    for (const segment of path) {
      if (isAlias(current)) current = current.resolve(this.doc);
      if (isMap(current)) {
        const pair = current.items.find((p) => isPair(p) && scalarKey(p.key) === String(segment));
        if (!pair) return lastGood;
        key = pair.key as YamlNode;
        current = pair.value;
        lastGood = { key, value: (current as YamlNode) ?? undefined };
      } else if (isSeq(current) && typeof segment === 'number') {
        current = current.items[segment];
        if (current === undefined) return lastGood;
        key = undefined;
        lastGood = { value: current as YamlNode };
      } else {
        return lastGood;
      }
    }
    return lastGood;
  }
}

/** 1-based line and column of an offset, counted directly (no parse needed). */
function lineCol(text: string, offset: number): { line: number; col: number } {
  let line = 1;
  let start = 0;
  for (let i = text.indexOf('\n'); i >= 0 && i < offset; i = text.indexOf('\n', i + 1)) {
    line++;
    start = i + 1;
  }
  return { line, col: offset - start + 1 };
}

const isSpace = (c: string | undefined) => c === undefined || c === ' ' || c === '\t' || c === '\n' || c === '\r';

/**
 * The offset where a YAML (or JSON) text first nests collections deeper than `max`, or
 * undefined. One linear pass, before the parser sees the text: block levels are counted from
 * indentation and compact `- `/`? ` indicators, flow levels from brackets outside quoted scalars,
 * comments and block scalars. The count may be off by a level (a root scalar, a `- key:` line),
 * which only matters far beyond any real file.
 */
export function nestingBeyond(text: string, max: number): number | undefined {
  const n = text.length;
  const block: number[] = [];
  let flow = 0;
  let scalarParent: number | undefined;
  let i = 0;
  const toEol = () => {
    while (i < n && text[i] !== '\n') i++;
  };
  const skipQuoted = (q: string) => {
    i++;
    while (i < n) {
      const c = text[i];
      if (q === '"' && c === '\\') i += 2;
      else if (c === q) {
        if (q === "'" && text[i + 1] === "'") i += 2;
        else {
          i++;
          return;
        }
      } else i++;
    }
  };
  while (i < n) {
    const lineStart = i;
    let indent = 0;
    while (text[i] === ' ') {
      i++;
      indent++;
    }
    if (i >= n) break;
    if (text[i] === '\n' || text[i] === '\r') {
      i++;
      continue;
    }
    if (scalarParent !== undefined) {
      if (indent > scalarParent) {
        toEol();
        continue;
      }
      scalarParent = undefined;
    }
    if (flow === 0) {
      if (text[i] === '#') {
        toEol();
        continue;
      }
      while (block.length && block[block.length - 1]! >= indent) block.pop();
      // A line opening a sequence item or a flow collection is counted by that indicator below;
      // any other line (a mapping key) is a level of its own.
      const c = text[i];
      const indicator = ((c === '-' || c === '?') && isSpace(text[i + 1])) || c === '[' || c === '{';
      if (!indicator) block.push(indent);
      if (block.length > max) return i;
    }
    let valueStart = true;
    while (i < n && text[i] !== '\n') {
      const c = text[i]!;
      const next = text[i + 1];
      if (c === ' ' || c === '\t' || c === '\r') {
        i++;
      } else if (c === '#' && isSpace(text[i - 1])) {
        toEol();
      } else if ((c === '"' || c === "'") && valueStart) {
        skipQuoted(c);
        valueStart = false;
      } else if ((c === '[' || c === '{') && (valueStart || flow > 0)) {
        flow++;
        if (block.length + flow > max) return i;
        i++;
        valueStart = true;
      } else if ((c === ']' || c === '}') && flow > 0) {
        flow--;
        i++;
        valueStart = false;
      } else if (c === ',' && flow > 0) {
        i++;
        valueStart = true;
      } else if ((c === '-' || c === '?') && valueStart && flow === 0 && isSpace(next)) {
        block.push(i - lineStart + 1);
        if (block.length > max) return i;
        i++;
      } else if (c === ':' && (isSpace(next) || flow > 0)) {
        i++;
        valueStart = true;
      } else if ((c === '|' || c === '>') && valueStart && flow === 0) {
        scalarParent = indent;
        toEol();
      } else {
        i++;
        valueStart = false;
      }
    }
  }
  return undefined;
}

/**
 * How many source characters after `from` hold the first `decoded` characters of a quoted
 * scalar: escapes (`\"`, `\n`, `\u00e9`...) and the single-quote `''` take more than one.
 */
function rawOffset(text: string, from: number, decoded: number, double: boolean): number {
  let raw = 0;
  for (let n = 0; n < decoded && from + raw < text.length; n++) {
    const c = text[from + raw];
    if (double && c === '\\') {
      const kind = text[from + raw + 1];
      raw += kind === 'x' ? 4 : kind === 'u' ? 6 : kind === 'U' ? 10 : 2;
    } else if (!double && c === "'" && text[from + raw + 1] === "'") {
      raw += 2;
    } else {
      raw += 1;
    }
  }
  return raw;
}

function scalarKey(node: unknown): string | undefined {
  return isScalar(node) ? String(node.value) : undefined;
}

function firstLine(message: string): string {
  return message.split('\n')[0]!.replace(/ at line \d+, column \d+:?$/, '');
}

/**
 * Reads a configuration file as UTF-8 text, refusing (with a clear diagnostic) anything but a
 * regular file (a device such as /dev/zero, a FIFO, a directory), a file larger than `maxBytes`
 * (default MAX_CONFIG_BYTES) — counted while reading, so a file that grows or lies about its size
 * is cut off too — or one that is binary.
 */
export async function readConfigText(file: string, maxBytes = MAX_CONFIG_BYTES): Promise<string> {
  const where = { file, line: 1, col: 1 };
  const tooLarge = (size: string) => new ConfigInvalidError([{ ...where,
    message: `file is ${size}; configuration files are limited to ${formatLimit(maxBytes)}` }]);
  let fh: FileHandle;
  try {
    // O_NONBLOCK: opening a FIFO must not wait for a writer; it is refused just below.
    fh = await open(file, constants.O_RDONLY | constants.O_NONBLOCK);
  } catch (err) {
    throw new ConfigInvalidError([{ ...where, message: `cannot read file: ${errorMessage(err)}` }]);
  }
  let bytes: Buffer;
  try {
    const info = await fh.stat();
    if (!info.isFile()) throw new ConfigInvalidError([{ ...where, message: 'not a regular file' }]);
    if (info.size > maxBytes) throw tooLarge(formatBytes(info.size));
    const chunks: Buffer[] = [];
    let total = 0;
    for (;;) {
      const chunk = Buffer.alloc(Math.min(64 * 1024, maxBytes + 1 - total));
      const { bytesRead } = await fh.read(chunk, 0, chunk.length, null);
      if (bytesRead === 0) break;
      chunks.push(chunk.subarray(0, bytesRead));
      total += bytesRead;
      if (total > maxBytes) throw tooLarge(`over ${formatLimit(maxBytes)}`);
    }
    bytes = Buffer.concat(chunks, total);
  } finally {
    await fh.close();
  }
  const nul = bytes.indexOf(0);
  if (nul >= 0) {
    throw new ConfigInvalidError([{ ...where, message: `not a text file (NUL byte at offset ${nul})` }]);
  }
  try {
    return new TextDecoder('utf-8', { fatal: true }).decode(bytes);
  } catch {
    throw new ConfigInvalidError([{ ...where, message: 'not a text file (invalid UTF-8)' }]);
  }
}

function formatLimit(n: number): string {
  return n % (1024 * 1024) === 0 ? `${n / 1024 / 1024} MiB` : n % 1024 === 0 ? `${n / 1024} KiB` : `${n} bytes`;
}

function formatBytes(n: number): string {
  return n >= 1024 * 1024 ? `${(n / 1024 / 1024).toFixed(1)} MiB` : n >= 1024 ? `${(n / 1024).toFixed(1)} KiB` : `${n} bytes`;
}

function parseYaml(text: string): { doc: Document.Parsed; lines: LineCounter } {
  const lines = new LineCounter();
  const doc = parseDocument(text, { lineCounter: lines, prettyErrors: false, uniqueKeys: true, merge: false });
  return { doc, lines };
}

/**
 * The value of a JSON text whose objects repeat no key (what the YAML parser would accept with
 * uniqueKeys and read the same), or not ok: then the YAML parser reads it and reports problems
 * with their positions. Only JSON objects and arrays qualify: a scalar document is YAML's to read.
 */
export function parseStrictJson(text: string): { ok: true; value: unknown } | { ok: false } {
  const start = text.trimStart()[0];
  if (start !== '{' && start !== '[') return { ok: false };
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch {
    return { ok: false };
  }
  // JSON.parse keeps the last of repeated keys silently; YAML refuses them. Find any.
  const open: Set<string>[] = [];
  for (let i = 0; i < text.length; i++) {
    const c = text.charCodeAt(i);
    if (c === 0x7b /* { */) open.push(new Set());
    else if (c === 0x7d /* } */) open.pop();
    else if (c === 0x22 /* " */) {
      let j = i + 1;
      while (text.charCodeAt(j) !== 0x22) j += text.charCodeAt(j) === 0x5c /* \\ */ ? 2 : 1;
      let k = j + 1;
      while (k < text.length && /\s/.test(text[k]!)) k++;
      if (text[k] === ':') {
        const key = JSON.parse(text.slice(i, j + 1)) as string;
        const keys = open[open.length - 1];
        if (keys?.has(key)) return { ok: false };
        keys?.add(key);
      }
      i = j;
    }
  }
  return { ok: true, value };
}
