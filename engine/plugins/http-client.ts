import { RetryableError, UnrecoverableError, errorMessage } from '../errors.ts';

/** The outcome of one HTTP call, classified the way the runner retries. */
export interface HttpResult {
  status: number;
  body: string;
}

/**
 * POSTs (or PUTs...) JSON and classifies failures: 2xx resolves; 5xx, 408, 429, network errors
 * and time-outs reject with RetryableError; any other status rejects with UnrecoverableError
 * carrying the status (so the entry goes to the DLQ with it).
 */
export async function sendJson(url: string, body: unknown, opts: { method?: string; headers?: Record<string, string>; timeoutMs: number }): Promise<HttpResult> {
  let res: Response;
  try {
    res = await fetch(url, {
      method: opts.method ?? 'POST',
      headers: { 'content-type': 'application/json', ...opts.headers },
      body: JSON.stringify(body),
      signal: AbortSignal.timeout(opts.timeoutMs),
    });
  } catch (err) {
    const e = err as Error & { cause?: { code?: string } };
    const why = e.name === 'TimeoutError' ? `timed out after ${opts.timeoutMs} ms` : `${errorMessage(err)}${e.cause?.code ? ` (${e.cause.code})` : ''}`;
    throw new RetryableError(`${opts.method ?? 'POST'} ${url}: ${why}`);
  }
  const text = await res.text().catch(() => '');
  if (res.ok) return { status: res.status, body: text };
  const message = `${opts.method ?? 'POST'} ${url}: HTTP ${res.status}${text ? ` ${text.slice(0, 200)}` : ''}`;
  if (res.status >= 500 || res.status === 408 || res.status === 429) throw new RetryableError(message);
  throw new UnrecoverableError(message);
}

/** Runs `fn` over items with at most `limit` in flight; results in item order. */
export async function mapLimit<T, R>(items: readonly T[], limit: number, fn: (item: T, index: number) => Promise<R>): Promise<R[]> {
  const out = new Array<R>(items.length);
  let next = 0;
  const worker = async () => {
    while (next < items.length) {
      const i = next++;
      out[i] = await fn(items[i]!, i);
    }
  };
  await Promise.all(Array.from({ length: Math.min(limit, items.length) }, worker));
  return out;
}

/** Runs `fn` per item and returns an error-or-undefined per item, as sinks report results. */
export async function settleEach<T>(items: readonly T[], limit: number, fn: (item: T) => Promise<unknown>): Promise<(Error | undefined)[]> {
  return mapLimit(items, limit, async (item) => {
    try {
      await fn(item);
      return undefined;
    } catch (err) {
      return err instanceof Error ? err : new Error(errorMessage(err));
    }
  });
}
