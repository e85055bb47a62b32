/** JSONata's `$boolean` rules, so that `filter:` and `when:` mean what they mean in JSONata. */
export function isTruthy(value: unknown): boolean {
  if (typeof value === 'function') return false;
  if (Array.isArray(value)) return value.some(isTruthy);
  if (value !== null && typeof value === 'object') return !isJsonataFunction(value) && Object.keys(value).length > 0;
  // Booleans, numbers (0 and NaN are false), strings ('' is false), undefined and null.
  return Boolean(value);
}

/** A function as a JSONata value: a built-in such as `$sum` or a lambda is an object with a mark. */
function isJsonataFunction(value: object): boolean {
  const marks = value as { _jsonata_function?: unknown; _jsonata_lambda?: unknown };
  return marks._jsonata_function === true || marks._jsonata_lambda === true;
}
