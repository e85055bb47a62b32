import { mkdtemp, rm, writeFile, mkdir } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { SchemaRegistry } from '../../../engine/config/schema-registry.ts';
import type { LoadContext } from '../../../engine/config/load-pipeline.ts';
import { SinkRegistry } from '../../../engine/plugins/sink-registry.ts';

/**
 * Fresh temporary directories for one suite. `make()` creates one under the OS temp dir;
 * `cleanup()` (call it from afterAll/afterEach) removes every directory made so far.
 */
export function tempDirs(prefix = 'synapse-unit-') {
  const made: string[] = [];
  return {
    async make(files: Record<string, string | Buffer> = {}): Promise<string> {
      const dir = await mkdtemp(join(tmpdir(), prefix));
      made.push(dir);
      await writeFiles(dir, files);
      return dir;
    },
    async cleanup(): Promise<void> {
      await Promise.all(made.splice(0).map((d) => rm(d, { recursive: true, force: true })));
    },
  };
}

/** Writes `files` (relative path → content) under `dir`, creating subdirectories. */
export async function writeFiles(dir: string, files: Record<string, string | Buffer>): Promise<void> {
  for (const [name, content] of Object.entries(files)) {
    const path = join(dir, name);
    await mkdir(dirname(path), { recursive: true });
    await writeFile(path, content);
  }
}

/** A load context over a schema directory (missing: no schemas) with the built-in sinks. */
export async function loadContext(schemaDir: string, env: NodeJS.ProcessEnv = {}): Promise<LoadContext> {
  return { schemas: await SchemaRegistry.load(schemaDir), sinks: SinkRegistry.withBuiltins(), env };
}
