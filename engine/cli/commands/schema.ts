import { formatSchema, pipelineEditorSchema, testEditorSchema } from '../../config/editor-schema.ts';
import { SinkRegistry, pluginSpecsFromEnv } from '../../plugins/sink-registry.ts';

/**
 * `synapse schema pipeline|test`: prints the JSON Schema (draft-07) of a pipeline file or of a
 * pipeline test file, for an editor. The pipeline schema covers the built-in sinks and those
 * SYNAPSE_PLUGINS loads.
 */
export async function schemaCommand(kind: string): Promise<number> {
  if (kind === 'test') {
    process.stdout.write(formatSchema(testEditorSchema()));
    return 0;
  }
  if (kind !== 'pipeline') {
    process.stderr.write(`synapse schema: unknown schema '${kind}': pipeline or test\n`);
    return 1;
  }
  const sinks = SinkRegistry.withBuiltins();
  await sinks.loadPlugins(pluginSpecsFromEnv());
  process.stdout.write(formatSchema(pipelineEditorSchema(sinks.names().map((n) => sinks.get(n)!.definition))));
  return 0;
}
