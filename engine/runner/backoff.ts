import type { RetryPolicy } from '../config/load-pipeline.ts';

/** Delay before try `attempt + 1` after `attempt` failed, with ±20% jitter on exponential back-off. */
export function backoffDelay(policy: RetryPolicy, attempt: number, random = Math.random): number {
  if (policy.backoff === 'fixed') return policy.delayMs;
  const base = Math.min(policy.maxDelayMs, policy.delayMs * 2 ** (attempt - 1));
  return Math.round(base * (0.8 + 0.4 * random()));
}

/** Resolves after `ms`, or early (returning false) when `signal` aborts. */
export function sleep(ms: number, signal?: AbortSignal): Promise<boolean> {
  if (signal?.aborted) return Promise.resolve(false);
  return new Promise((resolve) => {
    const timer = setTimeout(() => {
      signal?.removeEventListener('abort', onAbort);
      resolve(true);
    }, ms);
    const onAbort = () => {
      clearTimeout(timer);
      resolve(false);
    };
    signal?.addEventListener('abort', onAbort, { once: true });
  });
}
