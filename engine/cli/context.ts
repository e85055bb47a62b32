import { resolve } from 'node:path';
import { SchemaRegistry } from '../config/schema-registry.ts';
import { SinkRegistry, pluginSpecsFromEnv } from '../plugins/sink-registry.ts';
import type { LoadContext } from '../config/load-pipeline.ts';

/** Options every command shares. */
export interface CommonOptions {
  schemas?: string;
}

/** The schema directory: --schemas, else SYNAPSE_SCHEMAS, else ./schemas. */
export function schemasDir(opts: CommonOptions): string {
  return resolve(opts.schemas ?? process.env.SYNAPSE_SCHEMAS ?? 'schemas');
}

/** The default pipeline directory: SYNAPSE_PIPELINES, else ./pipelines. */
export function pipelinesDir(dir?: string): string {
  return resolve(dir ?? process.env.SYNAPSE_PIPELINES ?? 'pipelines');
}

/** Loads the schema registry and the sink plugins (built-in and SYNAPSE_PLUGINS). */
export async function loadContext(opts: CommonOptions): Promise<LoadContext> {
  const sinks = SinkRegistry.withBuiltins();
  await sinks.loadPlugins(pluginSpecsFromEnv());
  return { schemas: await SchemaRegistry.load(schemasDir(opts)), sinks };
}
