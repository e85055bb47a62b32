/**
 * How the engine shapes a decoded event before validation (the runner for every entry, publishing
 * for the copy it checks), so that schemas, filters, transforms and sinks see one shape whatever
 * the producer's habits:
 *
 * - `null` means absent. Python producers pass `None` for every optional argument they were not
 *   given, and `json.dumps` writes it as `null`; a field map cannot hold None at all, so Python
 *   writes `str(None)`, "None". Such properties are removed, so `$exists(data.cost)` is false and
 *   an aggregate never counts a missing cost as a value.
 * - `source.envelope: wrap` turns a flat event (`{event, source, timestamp, model_name, ...}`, as
 *   Cyrex's Python publishers build them) into the envelope (`{event, source, timestamp, data}`)
 *   the platform's consumers read. An event that already has a `data` object is left as it is.
 */

/** How a pipeline takes events without a `data` object: as they are, or wrapped into an envelope. */
export type EnvelopeMode = 'keep' | 'wrap';

/** The keys a wrapped event keeps at its top level; every other key moves under `data`. */
export const ENVELOPE_KEYS: ReadonlySet<string> = new Set([
  'event', 'source', 'timestamp', 'id', 'trace_id', 'correlation_id', 'service', 'action',
]);

/** The field-map value Python's `str(None)` writes. */
const PYTHON_NONE = 'None';

/**
 * Removes every `null` property of `value`, at any depth (array elements are kept, since their
 * positions mean something, but objects inside arrays are cleaned too). Mutates and returns
 * `value`: it is called on freshly decoded events only. Walks with a stack of its own, so an
 * absurdly deep event cannot overflow the call stack here.
 */
export function dropNulls<T>(value: T): T {
  const stack: unknown[] = [value];
  while (stack.length) {
    const v = stack.pop();
    if (v === null || typeof v !== 'object') continue;
    if (Array.isArray(v)) {
      for (const item of v) if (item !== null && typeof item === 'object') stack.push(item);
      continue;
    }
    const obj = v as Record<string, unknown>;
    for (const key of Object.keys(obj)) {
      const child = obj[key];
      if (child === null) delete obj[key];
      else if (typeof child === 'object') stack.push(child);
    }
  }
  return value;
}

/** Wraps a flat event into the envelope; an event with a `data` object is returned as it is. */
export function wrapEnvelope(event: Record<string, unknown>): Record<string, unknown> {
  const data = event.data;
  if (data !== undefined && data !== null && typeof data === 'object' && !Array.isArray(data)) return event;
  const top: Record<string, unknown> = {};
  const inner: Record<string, unknown> = {};
  for (const [k, v] of Object.entries(event)) (ENVELOPE_KEYS.has(k) ? top : inner)[k] = v;
  top.data = inner;
  return top;
}

/**
 * The event a pipeline's stages see: nulls removed (and, for a field map, Python's "None"
 * values), then wrapped into an envelope when the pipeline asks for it.
 */
export function shapeEvent(decoded: unknown, codec: 'json' | 'fields', envelope: EnvelopeMode): unknown {
  if (!decoded || typeof decoded !== 'object' || Array.isArray(decoded)) return decoded;
  const event = dropNulls(decoded as Record<string, unknown>);
  if (codec === 'fields') {
    for (const key of Object.keys(event)) if (event[key] === PYTHON_NONE) delete event[key];
  }
  return envelope === 'wrap' ? wrapEnvelope(event) : event;
}
