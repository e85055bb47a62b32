import type { DocPath } from './source-document.ts';

/** One `${VAR}` that could not be resolved. */
export interface InterpolationProblem {
  path: DocPath;
  /** The variable's name. */
  variable: string;
  message: string;
}

const PATTERN = /\$\$\{|\$\{([A-Za-z_][A-Za-z0-9_]*)(?::-(.*?))?\}/g;

/**
 * Replaces `${VAR}` and `${VAR:-default}` in every string of `value` with the environment's
 * values. `$${` is an escaped, literal `${`. An unset variable without a default is a problem
 * (reported at its path), never silently an empty string. With `allow`, only the variables it
 * names may be used at all (a default does not make another one acceptable).
 */
export function interpolate(
  value: unknown,
  env: NodeJS.ProcessEnv,
  problems: InterpolationProblem[],
  path: (string | number)[] = [],
  allow?: ReadonlySet<string>,
): unknown {
  if (typeof value === 'string') {
    if (!value.includes('${')) return value;
    return value.replace(PATTERN, (match, name: string | undefined, fallback: string | undefined) => {
      if (match === '$${') return '${';
      if (allow && !allow.has(name!)) {
        problems.push({ path: [...path], variable: name!, message: `environment variable ${name} is not available to pipeline YAML sent over HTTP (the operator may allow it in SYNAPSE_ADMIN_ENV_ALLOW)` });
        return match;
      }
      const set = env[name!];
      if (set !== undefined && set !== '') return set;
      if (fallback !== undefined) return fallback;
      problems.push({ path: [...path], variable: name!, message: `environment variable ${name} is not set (write \${${name}:-default} to give a default)` });
      // Keep the text as written, so later checks do not report a second, derived error.
      return match;
    });
  }
  if (Array.isArray(value)) return value.map((v, i) => interpolate(v, env, problems, [...path, i], allow));
  if (value && typeof value === 'object') {
    const out: Record<string, unknown> = {};
    for (const [k, v] of Object.entries(value)) {
      // defineProperty: a `__proto__` key stays a key instead of replacing the prototype.
      Object.defineProperty(out, k, { value: interpolate(v, env, problems, [...path, k], allow), enumerable: true, writable: true, configurable: true });
    }
    return out;
  }
  return value;
}
