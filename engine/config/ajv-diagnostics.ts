import type { ErrorObject } from 'ajv';
import type { Diagnostic } from '../errors.ts';
import { didYouMean } from './did-you-mean.ts';
import type { DocPath, SourceDocument } from './source-document.ts';

/** Splits an ajv instancePath (`/sinks/0/with`) into a document path. */
export function splitPointer(pointer: string): (string | number)[] {
  if (pointer === '') return [];
  return pointer.slice(1).split('/').map((raw) => {
    const s = raw.replace(/~1/g, '/').replace(/~0/g, '~');
    return /^(0|[1-9][0-9]*)$/.test(s) ? Number(s) : s;
  });
}

/** A human sentence for one ajv error, naming the offending key. */
export function describeAjvError(e: ErrorObject, subject = ''): string {
  const where = subject || (e.instancePath ? `'${splitPointer(e.instancePath).join('.')}'` : 'the document');
  const p = e.params as Record<string, unknown>;
  switch (e.keyword) {
    case 'additionalProperties': {
      // With ajv's `verbose`, the schema that refused the key names the keys it knows.
      const known = Object.keys((e.parentSchema as { properties?: Record<string, unknown> } | undefined)?.properties ?? {});
      return `unknown key '${String(p.additionalProperty)}' in ${where}${didYouMean(String(p.additionalProperty), known)}`;
    }
    case 'required': return `${where} is missing required key '${String(p.missingProperty)}'`;
    case 'enum': return `${where} must be one of: ${(p.allowedValues as unknown[]).map((v) => JSON.stringify(v)).join(', ')}`;
    case 'const': return `${where} must be ${JSON.stringify(p.allowedValue)}`;
    case 'type': return `${where} must be ${String(p.type)}`;
    default: return `${where} ${e.message ?? 'is invalid'}`;
  }
}

/**
 * Turns ajv errors over a document (or a part of it at `base`) into diagnostics that point at
 * the offending key or value. Errors about the same spot are reported once.
 */
export function ajvDiagnostics(errors: ErrorObject[], doc: SourceDocument, base: DocPath = [], subjectPrefix = ''): Diagnostic[] {
  const out: Diagnostic[] = [];
  const seen = new Set<string>();
  for (const e of errors) {
    // `if`/`anyOf` wrappers repeat what their branches already said.
    if (e.keyword === 'if' || e.keyword === 'anyOf' || e.keyword === 'oneOf') continue;
    const path = [...base, ...splitPointer(e.instancePath)];
    const p = e.params as Record<string, unknown>;
    const isKey = e.keyword === 'additionalProperties';
    const loc = isKey ? doc.locate([...path, String(p.additionalProperty)], { key: true }) : doc.locate(path);
    const subject = subjectPrefix
      ? `${subjectPrefix}${e.instancePath ? '.' + splitPointer(e.instancePath).join('.') : ''}`
      : (path.length ? `'${path.join('.')}'` : 'the file');
    const message = describeAjvError(e, subject);
    const key = `${loc.line}:${loc.col}:${message}`;
    if (seen.has(key)) continue;
    seen.add(key);
    out.push({ ...loc, message });
  }
  return out;
}
