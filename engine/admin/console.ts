import { randomBytes } from 'node:crypto';
import { existsSync } from 'node:fs';
import { readFile } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import fastifyStatic from '@fastify/static';
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import { wantsHtml } from './routes/root.ts';

/** Where the console is served. */
export const CONSOLE_PATH = '/ui/';

/**
 * The console's Content-Security-Policy: its own scripts, styles and API only. No inline
 * scripts, no eval, no framing (clickjacking), no form posts or base URLs elsewhere. The editor
 * (CodeMirror) writes its styles into <style> elements: those carry the page's nonce, a new one
 * for each load of index.html; a style element without it is refused.
 */
export function consoleCsp(nonce?: string): string {
  return [
    "default-src 'none'", "script-src 'self'", `style-src 'self'${nonce ? ` 'nonce-${nonce}'` : ''}`, "img-src 'self' data:", "font-src 'self'",
    "connect-src 'self'", "manifest-src 'self'", "base-uri 'none'", "form-action 'none'", "frame-ancestors 'none'",
  ].join('; ');
}

/** The placeholder console/index.html holds where the page's nonce goes (read by the editor). */
const NONCE_PLACEHOLDER = '__CSP_NONCE__';

/**
 * The built console (dist/console of the package: `node scripts/build.mjs` makes it with Vite),
 * or undefined when it was not built. Found from this module's place, in the sources
 * (engine/admin) as in the build (dist/engine/admin): the nearest folder with a package.json.
 */
export function consoleDir(): string | undefined {
  let dir = dirname(fileURLToPath(import.meta.url));
  for (let i = 0; i < 6; i++) {
    if (existsSync(join(dir, 'package.json'))) {
      const built = join(dir, 'dist', 'console');
      return existsSync(join(built, 'index.html')) ? built : undefined;
    }
    dir = dirname(dir);
  }
  return undefined;
}

/**
 * Serves the web console's static files at /ui/ (a static bundle that only calls the admin API,
 * so the browser guard and the token apply to it as to any client), with a strict CSP and
 * no-sniff/no-referrer headers. Hidden from OpenAPI: it is a page, not an API route.
 */
export async function registerConsole(app: FastifyInstance, root: string): Promise<void> {
  const html = await readFile(join(root, 'index.html'), 'utf8');
  // index.html is made per request (its nonce); never cached.
  const page = async (_req: FastifyRequest, reply: FastifyReply) => {
    const nonce = randomBytes(18).toString('base64');
    return reply
      .header('content-security-policy', consoleCsp(nonce))
      .header('x-content-type-options', 'nosniff')
      .header('referrer-policy', 'no-referrer')
      .header('cross-origin-opener-policy', 'same-origin')
      .header('cache-control', 'no-store')
      .type('text/html; charset=utf-8')
      .send(html.replaceAll(NONCE_PLACEHOLDER, nonce));
  };
  app.get(CONSOLE_PATH, { schema: { hide: true } }, page);
  app.get(`${CONSOLE_PATH}index.html`, { schema: { hide: true } }, page);
  await app.register(fastifyStatic, {
    root,
    prefix: CONSOLE_PATH,
    decorateReply: false,
    schemaHide: true,
    index: false,
    // Its own Cache-Control below (the plugin's would replace it).
    cacheControl: false,
    // Hashed asset names may be cached for good.
    setHeaders: (res, path) => {
      res.setHeader('content-security-policy', consoleCsp());
      res.setHeader('x-content-type-options', 'nosniff');
      res.setHeader('referrer-policy', 'no-referrer');
      res.setHeader('cross-origin-opener-policy', 'same-origin');
      res.setHeader('cache-control', /[\\/]assets[\\/]/.test(path) ? 'public, max-age=31536000, immutable' : 'no-cache');
    },
  });
  app.get('/ui', { schema: { hide: true } }, async (_req, reply) => reply.redirect(CONSOLE_PATH));
}

/**
 * Requests the token does not guard: the console's files (GET/HEAD under /ui), and a browser's
 * GET / (it is only redirected to /ui/; the JSON index still needs the token).
 */
export function isConsoleRequest(method: string, path: string, accept: string | undefined): boolean {
  if (method !== 'GET' && method !== 'HEAD') return false;
  if (path === '/ui' || path.startsWith(CONSOLE_PATH)) return true;
  return path === '/' && wantsHtml(accept);
}
