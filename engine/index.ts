/**
 * The package's library entry: what services and plugin authors import.
 * (The `synapse` command is bin/synapse.mjs.)
 */
export { Publisher, EventInvalidError, type EventEnvelope, type PublisherOptions } from './publish/publisher.ts';
export { defineSink, type SinkDefinition, type Sink, type SinkContext, type SinkMessage, type SinkWriteResult } from './plugins/define-sink.ts';
export { defineSource, type SourceDefinition, type Source, type SourceContext } from './plugins/define-source.ts';
export { RetryableError, UnrecoverableError, BatchError, SinkClosedError, SynapseError } from './errors.ts';
export { SchemaRegistry } from './config/schema-registry.ts';
export {
  compileExpression, ExpressionSyntaxError, type CompiledExpression, type CompileOptions,
} from './expr/compile-expression.ts';
export { compilePipelineText, loadPipeline, type CompiledPipeline } from './config/load-pipeline.ts';
export { dryRun } from './testing/dry-run.ts';
export { Engine, type EngineOptions } from './runtime/engine.ts';
export { buildAdminServer } from './admin/server.ts';
