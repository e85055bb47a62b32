import Fastify, { LogController, type FastifyBaseLogger, type FastifyInstance } from 'fastify';
import swagger from '@fastify/swagger';
import swaggerUi from '@fastify/swagger-ui';
import type { Logger } from 'pino';
import { SynapseError } from '../errors.ts';
import { packageVersion } from '../version.ts';
import type { Engine } from '../runtime/engine.ts';
import { bearerAuth, isLoopback } from './auth.ts';
import { CONSOLE_PATH, consoleDir, isConsoleRequest, registerConsole } from './console.ts';
import { browserGuard } from './browser-guard.ts';
import { YAML_TYPES, mediaType, normaliseBody, unsupportedMediaType } from './body-types.ts';
import type { RefusalLog } from '../refusal-log.ts';
import type { WsLimits } from './ws-hub.ts';
import { AdminSandbox, sandboxLimitsFromEnv, type SandboxLimits } from './sandbox.ts';
import { pluginSpecsFromEnv } from '../plugins/sink-registry.ts';
import { aggregateRoutes } from './routes/aggregates.ts';
import { dlqRoutes } from './routes/dlq.ts';
import { eventRoutes } from './routes/events.ts';
import { healthRoutes } from './routes/health.ts';
import { pipelineRoutes } from './routes/pipelines.ts';
import { replayRoutes } from './routes/replay.ts';
import { rootRoutes } from './routes/root.ts';
import { serviceRoutes } from './routes/services.ts';
import { streamRoutes } from './routes/streams.ts';
import { tapRoutes } from './routes/tap.ts';
import { wsRoutes } from './routes/ws.ts';

/** What every route plugin is given. */
export interface AdminDeps {
  engine: Engine;
  /** Environment variables pipeline YAML sent over HTTP may name as `${VAR}` (SYNAPSE_ADMIN_ENV_ALLOW). */
  envAllow: ReadonlySet<string>;
  /** Streams POST /events may write besides pipeline sources (SYNAPSE_ADMIN_PUBLISH_STREAMS; `prefix*` patterns). */
  publishStreams: readonly string[];
  /** Where routes report what a limit refused (logged bounded, counted in synapse_refused_total). */
  refusals: RefusalLog;
  /** The worker thread dry-runs and validations run in. */
  sandbox: AdminSandbox;
  /** Where the web console is served (`/ui/`), or undefined when it was not built or is off. */
  consolePath?: string;
}

export interface AdminOptions {
  engine: Engine;
  logger?: Logger;
  /** SYNAPSE_ADMIN_TOKEN: with it, every route but /health, /ready and /metrics needs the bearer token. */
  token?: string;
  /** Largest request body, bytes (default 1 MiB). */
  bodyLimit?: number;
  /** SYNAPSE_WS_SECRET: WebSocket clients identify as users with JWTs signed by it. */
  wsSecret?: string;
  /** Variables YAML sent over HTTP may interpolate; default SYNAPSE_ADMIN_ENV_ALLOW (comma-separated), else none. */
  envAllow?: readonly string[];
  /** Limits of /ws clients, over those of the environment (SYNAPSE_WS_MAX_*). */
  wsLimits?: Partial<WsLimits>;
  /** Streams POST /events may write besides pipeline sources; default SYNAPSE_ADMIN_PUBLISH_STREAMS. */
  publishStreams?: readonly string[];
  /** Host names answered besides loopback ones, `*` for any; default SYNAPSE_ADMIN_ALLOWED_HOSTS. */
  allowedHosts?: readonly string[];
  /** Origins allowed to change state besides the API's own; default SYNAPSE_ADMIN_ALLOWED_ORIGINS. */
  allowedOrigins?: readonly string[];
  /** Bounds of the dry-run and validation thread, over those of the environment (SYNAPSE_SANDBOX_*). */
  sandboxLimits?: Partial<SandboxLimits>;
  /** The built web console to serve at /ui/; default dist/console of the package, when built. `false`: none. */
  consoleDir?: string | false;
}

/**
 * The admin API (SPEC §8) as a Fastify app: each route group a plugin, every route with JSON
 * Schemas for its body and reply, OpenAPI at /docs (JSON at /docs/json). Errors reply
 * `{ error, message }` and never carry a stack trace.
 */
export async function buildAdminServer(opts: AdminOptions): Promise<FastifyInstance> {
  const app = Fastify({
    loggerInstance: opts.logger?.child({ component: 'admin' }) as FastifyBaseLogger | undefined,
    logController: new LogController({ disableRequestLogging: true }),
    bodyLimit: opts.bodyLimit ?? 1024 * 1024,
    ajv: { customOptions: { removeAdditional: false, coerceTypes: true, useDefaults: true } },
  });

  // Routes that take a pipeline take it as YAML, as it is on disk (config.accepts); others get 415.
  app.addContentTypeParser([...YAML_TYPES], { parseAs: 'string' }, (_req, body, done) => done(null, body));
  app.addHook('preValidation', normaliseBody);

  app.setErrorHandler((err: Error & { statusCode?: number; validation?: unknown; code?: string }, req, reply) => {
    if (err.code === 'FST_ERR_CTP_INVALID_MEDIA_TYPE') return unsupportedMediaType(req, reply, mediaType(req.headers['content-type']));
    const status = err.statusCode && err.statusCode >= 400 && err.statusCode < 600 ? err.statusCode : 500;
    if (status >= 500) req.log.error({ err }, 'admin request failed');
    const message = status >= 500 && !(err instanceof SynapseError) ? 'internal error; see the engine log' : err.message;
    void reply.code(status).send({ error: err.validation ? 'bad_request' : (err.code ?? (status >= 500 ? 'internal' : 'error')).toString().toLowerCase(), message });
  });
  app.setNotFoundHandler((req, reply) => {
    void reply.code(404).send({ error: 'not_found', message: `no route ${req.method} ${req.url.split('?')[0]}` });
  });

  // An upgrade refused with an HTTP reply (403, 401) leaves its socket outside the HTTP server's
  // care: close it, or it stays open (and keeps app.close() waiting) until the client gives up.
  app.addHook('onResponse', async (request, reply) => {
    if (request.headers.upgrade?.toLowerCase() === 'websocket' && reply.statusCode >= 400) request.raw.socket?.destroy();
  });
  const refusals = opts.engine.refusals;
  const consoleRoot = opts.consoleDir === false ? undefined : (opts.consoleDir ?? consoleDir());
  // Before authentication: a browser must not even learn whether a token is needed.
  const allowedHosts = opts.allowedHosts ?? splitList(process.env.SYNAPSE_ADMIN_ALLOWED_HOSTS);
  app.addHook('onRequest', browserGuard({
    allowedHosts,
    // With a token, a rebound page cannot authenticate; the Host check applies when asked for.
    checkHost: !opts.token || opts.allowedHosts !== undefined || process.env.SYNAPSE_ADMIN_ALLOWED_HOSTS !== undefined,
    allowedOrigins: opts.allowedOrigins ?? splitList(process.env.SYNAPSE_ADMIN_ALLOWED_ORIGINS),
  }, refusals));

  // With a WS secret, /ws clients are end users proving who they are with their own JWT, so the
  // admin token does not apply there. The console's static files are open (a browser cannot send
  // the token on navigation; they hold no data: the console asks for the token and sends it on
  // each API call), and so is a browser's GET / while it only redirects to them.
  if (opts.token) {
    app.addHook('onRequest', bearerAuth(opts.token, opts.wsSecret ? ['/ws'] : [], (req, path) => consoleRoot !== undefined && isConsoleRequest(req.method, path, req.headers.accept)));
  }
  if (consoleRoot) await registerConsole(app, consoleRoot);

  await app.register(swagger, {
    openapi: {
      openapi: '3.0.3',
      info: { title: 'Synapse admin API', version: packageVersion(), description: 'Operate a running Synapse engine: pipelines, streams, DLQ, replay, services.' },
      components: { securitySchemes: { bearer: { type: 'http', scheme: 'bearer' } } },
      security: opts.token ? [{ bearer: [] }] : [],
      tags: ['operations', 'pipelines', 'streams', 'events', 'dlq', 'replay', 'services', 'aggregates', 'broadcast'].map((name) => ({ name })),
    },
    // @fastify/websocket hides its routes from OpenAPI; /ws is part of the API, so show it.
    transform: ({ schema, url }) => ({ schema: url === '/ws' ? { ...schema, hide: false } : schema, url }),
  });
  await app.register(swaggerUi, { routePrefix: '/docs' });

  const envAllow = new Set(opts.envAllow ?? splitList(process.env.SYNAPSE_ADMIN_ENV_ALLOW));
  const publishStreams = opts.publishStreams ?? splitList(process.env.SYNAPSE_ADMIN_PUBLISH_STREAMS);
  const sandbox = new AdminSandbox({
    limits: { ...sandboxLimitsFromEnv(), ...opts.sandboxLimits },
    pluginSpecs: pluginSpecsFromEnv(),
    logger: opts.logger?.child({ component: 'admin' }),
  });
  // Before the server waits for requests in flight: a dry-run running or waiting is answered 503.
  app.addHook('preClose', async () => sandbox.close());
  const deps: AdminDeps = { engine: opts.engine, envAllow, refusals, publishStreams, sandbox, consolePath: consoleRoot ? CONSOLE_PATH : undefined };
  for (const routes of [rootRoutes, healthRoutes, pipelineRoutes, streamRoutes, eventRoutes, dlqRoutes, replayRoutes, serviceRoutes, tapRoutes, aggregateRoutes]) {
    await app.register(routes, deps);
  }
  await app.register(wsRoutes, { ...deps, wsSecret: opts.wsSecret, adminToken: opts.token, wsLimits: opts.wsLimits });
  return app;
}

/**
 * Listens on host:port; refuses a non-loopback address without a token, since the API can
 * rewrite pipelines.
 */
export async function listenAdmin(app: FastifyInstance, host: string, port: number, token?: string): Promise<string> {
  if (!isLoopback(host) && !token) {
    throw new SynapseError(`refusing to bind the admin API to ${host} without SYNAPSE_ADMIN_TOKEN: set a token, or bind to 127.0.0.1`);
  }
  return app.listen({ host, port });
}

/** A comma-separated list from the environment, trimmed, empty items dropped. */
export function splitList(value: string | undefined): string[] {
  return (value ?? '').split(',').map((v) => v.trim()).filter(Boolean);
}
