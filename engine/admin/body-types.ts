import type { FastifyReply, FastifyRequest } from 'fastify';

/** Content types the admin API reads as pipeline YAML text. */
export const YAML_TYPES = ['application/yaml', 'application/x-yaml', 'text/yaml', 'text/x-yaml', 'text/plain'] as const;

/** What a route takes, set in its `config.accepts`; routes that set nothing take JSON. */
export interface BodyTypesConfig {
  accepts?: readonly string[];
}

/** A route that takes a pipeline takes it as YAML text or as JSON `{ "yaml": … }`. */
export const PIPELINE_BODY_TYPES = ['application/json', 'application/yaml'] as const;

/** The media type of a Content-Type header, lower-cased, without parameters. */
export function mediaType(header: string | undefined): string | undefined {
  const type = header?.split(';')[0]?.trim().toLowerCase();
  return type || undefined;
}

/** Whether an Accept header asks for YAML rather than JSON (the first of the two it names, by q-value). */
export function wantsYaml(accept: string | undefined): boolean {
  if (!accept) return false;
  let best: { yaml: boolean; q: number } | undefined;
  for (const part of accept.split(',')) {
    const [type, ...params] = part.trim().toLowerCase().split(';');
    const yaml = (YAML_TYPES as readonly string[]).includes(type!.trim()) && type!.trim() !== 'text/plain';
    const json = type!.trim() === 'application/json';
    if (!yaml && !json) continue;
    const q = Number(params.map((p) => p.trim()).find((p) => p.startsWith('q='))?.slice(2) ?? 1);
    if (!best || q > best.q) best = { yaml, q };
  }
  return best?.yaml ?? false;
}

/** The 415 reply of a route, naming what it accepts. */
export function unsupportedMediaType(request: FastifyRequest, reply: FastifyReply, received: string | undefined) {
  const accepts = (request.routeOptions.config as BodyTypesConfig | undefined)?.accepts ?? ['application/json'];
  return reply.code(415).send({
    error: 'unsupported_media_type',
    message: `${request.method} ${request.routeOptions.url ?? request.url.split('?')[0]} takes ${accepts.join(' or ')}${accepts.includes('application/yaml') ? ' (application/x-yaml, text/yaml and text/plain are read as YAML too)' : ''}; got ${received ? `'${received}'` : 'no Content-Type'}`,
    accepts,
  });
}

/**
 * A preValidation hook for every route: a YAML body sent to a route that takes only JSON gets 415
 * naming what the route takes (instead of a puzzling `body must be object`), and a route that takes
 * a pipeline gets YAML text as `{ yaml: text }`, so its handler sees one shape.
 */
export async function normaliseBody(request: FastifyRequest, reply: FastifyReply) {
  if (typeof request.body !== 'string') return;
  const accepts = (request.routeOptions.config as BodyTypesConfig | undefined)?.accepts;
  if (!accepts?.includes('application/yaml')) return unsupportedMediaType(request, reply, mediaType(request.headers['content-type']));
  request.body = { yaml: request.body };
}

declare module 'fastify' {
  interface FastifyContextConfig {
    /** Content types the route takes (see normaliseBody); default JSON only. */
    accepts?: readonly string[];
  }
}
