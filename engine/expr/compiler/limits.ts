/**
 * Memory bounds of one evaluation, beside SPEC §4's time, depth and sequence limits: a function
 * or operator that would build a string longer than MAX_STRING_LENGTH throws error L1001
 * instead of allocating it (`$pad("x", 100000000)`, a lambda doubling a string with `&`, a huge
 * `$join`, `$replace` or `$string`). Arrays are bounded by the sequence limit (D2015).
 */

/** Longest string an expression may build, in UTF-16 code units (~20 MB). */
export const MAX_STRING_LENGTH = 10_000_000;

/** jsonata-style error object (code, message, value) for a string over the limit. */
export function stringTooLong(what: string, length: number): { code: string; message: string; value: number } {
  return {
    code: 'L1001',
    message: `${what} would build a string of ${length} characters, more than the limit of ${MAX_STRING_LENGTH}`,
    value: MAX_STRING_LENGTH,
  };
}

/** Throws L1001 when a string about to be built would be longer than MAX_STRING_LENGTH. */
export function checkStringLength(what: string, length: number): void {
  if (length > MAX_STRING_LENGTH) throw stringTooLong(what, length);
}

/** The time budget of the evaluation running now (evaluations are synchronous: one at a time). */
export interface Budget {
  /** Evaluation steps so far; the clock is read every CLOCK_MASK + 1 steps. */
  steps: number;
  /** Milliseconds allowed; 0 is no limit. */
  timeout: number;
  /** Date.now() at the start. */
  started: number;
}

/** The clock is read once per 256 steps: a step is a node evaluated or a native loop turn. */
export const CLOCK_MASK = 255;

let active: Budget | undefined;

/** Makes `budget` the running evaluation's; returns the one it replaces, for `restoreBudget`. */
export function enterBudget(budget: Budget): Budget | undefined {
  const previous = active;
  active = budget;
  return previous;
}

/** Restores the budget `enterBudget` replaced (an evaluation may run inside another's function). */
export function restoreBudget(previous: Budget | undefined): void {
  active = previous;
}

/** Throws D1012 when the evaluation has run longer than its time limit. */
export function checkClock(budget: Budget): void {
  if (budget.timeout && Date.now() - budget.started > budget.timeout) {
    throw { code: 'D1012', value: budget.timeout, stack: new Error().stack };
  }
}

/**
 * One turn of a loop inside a native function ($distinct, $sort, $zip, …): counts a step, and
 * every CLOCK_MASK + 1 steps checks the time limit, so no function loops past it.
 */
export function tick(): void {
  const budget = active;
  if (budget !== undefined && (++budget.steps & CLOCK_MASK) === 0) checkClock(budget);
}
