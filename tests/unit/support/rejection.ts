import { expect } from 'vitest';

/**
 * Awaits `promise`, expecting it to reject with an instance of `type`; returns the error, typed.
 * Fails the test if it resolves or rejects with something else.
 */
export async function rejection<E extends Error>(promise: Promise<unknown>, type: abstract new (...args: any[]) => E): Promise<E> {
  const outcome = await promise.then(
    (value) => ({ resolved: true as const, value }),
    (error: unknown) => ({ resolved: false as const, error }),
  );
  if (outcome.resolved) throw new Error(`expected a rejection with ${type.name}, but it resolved`);
  expect(outcome.error).toBeInstanceOf(type);
  return outcome.error as E;
}
