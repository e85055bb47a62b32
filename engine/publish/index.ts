/**
 * The `synapse/publisher` entry: what a service needs to publish schema-checked events, and
 * nothing of the engine's runtime (no Fastify, BullMQ, admin API or expression compiler).
 */
export { Publisher, EventInvalidError, type EventEnvelope, type PublisherOptions } from './publisher.ts';
export { SchemaRegistry } from '../config/schema-registry.ts';
export { SynapseError, SchemaInvalidError } from '../errors.ts';
