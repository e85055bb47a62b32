import type { FastifyReply, FastifyRequest } from 'fastify';
import type { RefusalLog } from '../refusal-log.ts';

/** Which Host names and Origins the admin API answers (docs/security.md, "Browsers"). */
export interface BrowserGuardOptions {
  /**
   * Host names (without port) the API answers besides loopback ones, or `*` for any
   * (SYNAPSE_ADMIN_ALLOWED_HOSTS). Enforced when no admin token is set, or when given.
   */
  allowedHosts?: readonly string[];
  /** Whether the Host check applies (no token, or allowedHosts configured). */
  checkHost: boolean;
  /** Origins (`scheme://host[:port]`) allowed to change state besides the API's own (SYNAPSE_ADMIN_ALLOWED_ORIGINS). */
  allowedOrigins?: readonly string[];
}

const SAFE_METHODS = new Set(['GET', 'HEAD', 'OPTIONS']);

/** The host name of a Host header value (`[::1]:8080` → `::1`, `Example.com.:80` → `example.com`), or undefined. */
export function hostName(header: string | undefined): string | undefined {
  if (!header) return undefined;
  const m = /^(?:\[([0-9a-fA-F:.]+)\]|([A-Za-z0-9._-]+))(?::\d{1,5})?$/.exec(header.trim());
  if (!m) return undefined;
  return (m[1] ?? m[2]!).toLowerCase().replace(/\.$/, '');
}

/** Whether a Host name can only mean this machine. */
export function isLoopbackName(name: string): boolean {
  return name === 'localhost' || name.endsWith('.localhost') || name === '::1' || /^127\.\d{1,3}\.\d{1,3}\.\d{1,3}$/.test(name);
}

/**
 * An onRequest hook that keeps web pages from driving the API through the operator's browser:
 * a foreign Host header (DNS rebinding) gets 403 while the Host check applies, and a
 * state-changing request or WebSocket upgrade whose Origin is another site (or `null`, or whose
 * Sec-Fetch-Site says cross-site) gets 403 always. Requests without Origin (curl, scripts) pass.
 */
export function browserGuard(opts: BrowserGuardOptions, refusals: RefusalLog) {
  const anyHost = opts.allowedHosts?.includes('*') ?? false;
  const hosts = new Set((opts.allowedHosts ?? []).map((h) => h.toLowerCase()));
  const origins = new Set((opts.allowedOrigins ?? []).map((o) => o.toLowerCase().replace(/\/$/, '')));
  return async (request: FastifyRequest, reply: FastifyReply) => {
    const hostHeader = request.headers.host;
    if (opts.checkHost && !anyHost) {
      const name = hostName(hostHeader);
      if (!name || !(isLoopbackName(name) || hosts.has(name))) {
        refusals.refuse('admin.host', 'request with a Host header that is not a loopback name or allowed', { host: String(hostHeader).slice(0, 100) });
        await reply.code(403).send({ error: 'host_not_allowed', message: `Host '${String(hostHeader ?? '').slice(0, 100)}' is not allowed: without SYNAPSE_ADMIN_TOKEN the admin API answers loopback names only (list other names in SYNAPSE_ADMIN_ALLOWED_HOSTS)` });
        return reply;
      }
    }
    const upgrade = request.headers.upgrade?.toLowerCase() === 'websocket';
    if (SAFE_METHODS.has(request.method) && !upgrade) return;
    const origin = request.headers.origin;
    const fetchSite = request.headers['sec-fetch-site'];
    if (origin === undefined && fetchSite !== 'cross-site') return;
    if (origin !== undefined && origins.has(origin.toLowerCase().replace(/\/$/, ''))) return;
    if (origin !== undefined && fetchSite !== 'cross-site' && sameOrigin(origin, hostHeader)) return;
    refusals.refuse('admin.origin', 'cross-site request', { origin: String(origin).slice(0, 100), method: request.method, url: request.url.split('?')[0]!.slice(0, 200) });
    await reply.code(403).send({ error: 'cross_site_request', message: `Origin '${String(origin ?? '').slice(0, 100)}' may not ${upgrade ? 'open a WebSocket' : 'change state'} here: only pages of the admin API itself, or origins listed in SYNAPSE_ADMIN_ALLOWED_ORIGINS` });
    return reply;
  };
}

function sameOrigin(origin: string, host: string | undefined): boolean {
  if (!host) return false;
  try {
    const u = new URL(origin);
    return (u.protocol === 'http:' || u.protocol === 'https:') && u.host.toLowerCase() === host.toLowerCase();
  } catch {
    return false;
  }
}
