/**
 * The admin API as the console calls it: same origin, with the bearer token (when the engine has
 * one) kept in sessionStorage for this tab only. A 401 asks for the token once, then retries.
 */
const TOKEN_KEY = 'synapse.token';

export class ApiError extends Error {
  constructor(readonly status: number, readonly body: any, message: string) {
    super(message);
  }
}

let askToken: (() => Promise<string>) | undefined;
let asking: Promise<string> | undefined;

/** Sets how the console asks for the token (a dialog; see main.ts). */
export function onTokenNeeded(fn: () => Promise<string>): void {
  askToken = fn;
}

export function token(): string | null {
  return sessionStorage.getItem(TOKEN_KEY);
}

export function forgetToken(): void {
  sessionStorage.removeItem(TOKEN_KEY);
}

function headers(extra: HeadersInit = {}): Headers {
  const h = new Headers(extra);
  const t = token();
  if (t) h.set('authorization', `Bearer ${t}`);
  return h;
}

/** fetch with the token; on 401 asks for it (one dialog for every call waiting) and retries. */
export async function raw(path: string, init: RequestInit = {}): Promise<Response> {
  for (;;) {
    const res = await fetch(path, { ...init, headers: headers(init.headers) });
    if (res.status !== 401 || !askToken) return res;
    forgetToken();
    asking ??= askToken().finally(() => { asking = undefined; });
    sessionStorage.setItem(TOKEN_KEY, await asking);
  }
}

/** A JSON call; non-2xx throws ApiError with the reply's `{error, message}`. */
export async function api<T = any>(path: string, init: RequestInit & { json?: unknown } = {}): Promise<T> {
  const { json, ...rest } = init;
  const res = await raw(path, json === undefined ? rest : { ...rest, method: rest.method ?? 'POST', body: JSON.stringify(json), headers: { 'content-type': 'application/json', ...(rest.headers ?? {}) } });
  const text = await res.text();
  let body: any = text;
  try {
    body = text ? JSON.parse(text) : null;
  } catch { /* not JSON */ }
  if (!res.ok) throw new ApiError(res.status, body, body?.message ?? `${res.status} ${res.statusText}`);
  return body as T;
}

export const enc = encodeURIComponent;
