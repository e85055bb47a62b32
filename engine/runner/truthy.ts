/** JSONata's `$boolean` rules, so that `filter:` and `when:` mean what they mean in JSONata. */
export function isTruthy(value: unknown): boolean {
  if (value === undefined || value === null) return false;
  switch (typeof value) {
    case 'boolean': return value;
    case 'number': return value !== 0 && !Number.isNaN(value);
    case 'string': return value.length > 0;
    case 'function': return false;
    case 'object':
      if (Array.isArray(value)) return value.some(isTruthy);
      return Object.keys(value).length > 0;
    default: return Boolean(value);
  }
}
