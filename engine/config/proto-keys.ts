/**
 * The path of the first `__proto__` key in a parsed JSON value (`data.list[0].__proto__`), or
 * undefined. JSON.parse keeps such a key as an own property, but the first plain copy of the
 * object (`out[key] = value`, a spread, an expression's result) turns it into the copy's
 * prototype, so events holding one are refused wherever they enter. Iterative: a payload may nest
 * far deeper than the call stack.
 */
export function findProtoKey(root: unknown): string | undefined {
  const stack: { value: unknown; path: string }[] = [{ value: root, path: '' }];
  while (stack.length) {
    const { value, path } = stack.pop()!;
    if (!value || typeof value !== 'object') continue;
    if (Array.isArray(value)) {
      for (let i = value.length - 1; i >= 0; i--) stack.push({ value: value[i], path: `${path}[${i}]` });
      continue;
    }
    for (const k of Object.keys(value)) {
      const at = path ? `${path}.${k}` : k;
      if (k === '__proto__') return at;
      stack.push({ value: (value as Record<string, unknown>)[k], path: at });
    }
  }
  return undefined;
}
