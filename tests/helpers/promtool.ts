import { accessSync, constants } from 'node:fs';
import { delimiter, join } from 'node:path';
import type { TestContext } from 'vitest';

/** The path of executable `name` in one of the PATH directories, or undefined. */
export function toolOnPath(name: string, path = process.env.PATH ?? ''): string | undefined {
  for (const dir of path.split(delimiter)) {
    if (!dir) continue;
    const candidate = join(dir, name);
    try {
      accessSync(candidate, constants.X_OK);
      return candidate;
    } catch {
      // Not here.
    }
  }
  return undefined;
}

/**
 * The path of a command-line tool a test needs. When it is missing the test is skipped, saying
 * which package provides it — except in CI (SYNAPSE_CI=1), which installs the tool: there its
 * absence is a failure, so a check that never ran cannot pass as green.
 */
export function requireTool(ctx: TestContext, name: string, pkg: string, env: NodeJS.ProcessEnv = process.env): string {
  const found = toolOnPath(name, env.PATH ?? '');
  if (found) return found;
  const reason = `${name} is not on PATH (Debian: apt-get install ${pkg})`;
  if (env.SYNAPSE_CI === '1') throw new Error(`${reason}; SYNAPSE_CI=1, where it must be installed`);
  return ctx.skip(reason);
}

/** promtool, from Debian's `prometheus` package, for the alerting rules' checks. */
export function requirePromtool(ctx: TestContext): string {
  return requireTool(ctx, 'promtool', 'prometheus');
}
