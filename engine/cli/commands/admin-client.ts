import { SynapseError, errorMessage } from '../../errors.ts';

/** The admin API of the running engine: --admin, else SYNAPSE_ADMIN_URL, else http://127.0.0.1:8080. */
export function adminUrl(admin?: string): string {
  return (admin ?? process.env.SYNAPSE_ADMIN_URL ?? 'http://127.0.0.1:8080').replace(/\/$/, '');
}

/** Headers for the admin API: the bearer token of SYNAPSE_ADMIN_TOKEN when set. */
export function adminHeaders(extra: Record<string, string> = {}): Record<string, string> {
  const token = process.env.SYNAPSE_ADMIN_TOKEN;
  return token ? { ...extra, authorization: `Bearer ${token}` } : extra;
}

/** GETs `path` of the admin API; a refused connection or an error reply is a SynapseError saying where. */
export async function adminGet(admin: string, path: string, accept = 'application/json'): Promise<Response> {
  let res: Response;
  try {
    res = await fetch(`${admin}${path}`, { headers: adminHeaders({ accept }) });
  } catch (err) {
    throw new SynapseError(`cannot reach the engine's admin API at ${admin} (${errorMessage((err as { cause?: unknown }).cause ?? err)}): is synapse run running? (--admin URL or SYNAPSE_ADMIN_URL)`);
  }
  if (!res.ok) {
    const body = await res.text();
    let message = body;
    try {
      message = (JSON.parse(body) as { message?: string }).message ?? body;
    } catch {
      // Not JSON: the text as it is.
    }
    throw new SynapseError(`GET ${path}: ${res.status} ${message}`);
  }
  return res;
}
