import { dropNulls } from './event-shape.ts';
import { findProtoKey } from './proto-keys.ts';
import { formatValidationErrors, type SchemaRegistry } from './schema-registry.ts';

/**
 * Why an event may not be published, or undefined when it may: it must be an object without a
 * `__proto__` key anywhere, and valid against the schema named by `schemaId`, else the schema its
 * `event` type selects. It is checked as pipelines will see it: a `null` value is absent
 * (Python's None for an argument not given).
 */
export function checkEvent(event: unknown, schemas: SchemaRegistry, schemaId?: string): string | undefined {
  if (!event || typeof event !== 'object' || Array.isArray(event)) return 'an event must be a JSON object';
  const proto = findProtoKey(event);
  if (proto !== undefined) return `the event has a '__proto__' key (at ${proto}): the engine would send it to the DLQ`;
  const type = (event as { event?: unknown }).event;
  const entry = schemaId ? schemas.get(schemaId) : typeof type === 'string' ? schemas.forEventType(type) : undefined;
  if (!entry) {
    if (schemaId) return `unknown schema '${schemaId}'`;
    return typeof type === 'string'
      ? `no schema declares event type '${type}' (give it a schema with properties.event.const, or name one with --schema / ?schema=)`
      : "the event has no 'event' type to choose its schema by (or name a schema with --schema / ?schema=)";
  }
  const validate = schemas.compile(entry.id);
  return validate(dropNulls(structuredClone(event))) ? undefined : `invalid against ${entry.id}: ${formatValidationErrors(validate.errors)}`;
}
