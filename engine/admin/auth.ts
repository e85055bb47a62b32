import { createHash, timingSafeEqual } from 'node:crypto';
import type { FastifyReply, FastifyRequest } from 'fastify';

/** Routes open without a token (SPEC §8): probes and scraping. */
export const PUBLIC_ROUTES = new Set(['/health', '/ready', '/metrics']);

/** Compares two secrets in constant time (hashing first, so lengths leak nothing either). */
export function safeEqual(a: string, b: string): boolean {
  const ha = createHash('sha256').update(a).digest();
  const hb = createHash('sha256').update(b).digest();
  return timingSafeEqual(ha, hb);
}

/**
 * An onRequest hook requiring `Authorization: Bearer <token>` on every route but the public
 * ones. A WebSocket upgrade may carry the token as `?access_token=` instead (browsers cannot set
 * headers on WebSocket requests). `openRequest` opens more requests (the console's static files).
 */
export function bearerAuth(token: string, alsoOpen: readonly string[] = [], openRequest?: (request: FastifyRequest, path: string) => boolean) {
  return async (request: FastifyRequest, reply: FastifyReply) => {
    const path = request.url.split('?')[0]!;
    if (PUBLIC_ROUTES.has(path) || alsoOpen.includes(path) || openRequest?.(request, path)) return;
    const header = request.headers.authorization ?? '';
    // A query-string token only for WebSocket upgrades: elsewhere it would end up in access logs.
    const upgrade = request.headers.upgrade?.toLowerCase() === 'websocket';
    const queryToken = upgrade ? ((request.query as Record<string, string> | undefined)?.access_token ?? '') : '';
    const given = header.startsWith('Bearer ') ? header.slice(7) : queryToken;
    if (!given || !safeEqual(given, token)) {
      await reply.code(401).header('www-authenticate', 'Bearer').send({ error: 'unauthorized', message: 'this route needs Authorization: Bearer <SYNAPSE_ADMIN_TOKEN>' });
    }
  };
}

/** Whether a host to bind is loopback only. */
export function isLoopback(host: string): boolean {
  return host === 'localhost' || host === '::1' || host.startsWith('127.');
}
