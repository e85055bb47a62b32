import { readFileSync } from 'node:fs';

/**
 * This package's version, from its package.json: the one beside engine/ in the sources, or beside
 * dist/ when built. 'unknown' when neither is found.
 */
export function packageVersion(): string {
  for (const up of ['../package.json', '../../package.json']) {
    try {
      const pkg = JSON.parse(readFileSync(new URL(up, import.meta.url), 'utf8')) as { name?: string; version: string };
      if (pkg.name === 'synapse') return pkg.version;
    } catch {
      // not at this depth
    }
  }
  return 'unknown';
}
