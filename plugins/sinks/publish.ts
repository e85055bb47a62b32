import { defineSink } from '../../engine/plugins/define-sink.ts';
import { BatchError, SinkClosedError } from '../../engine/errors.ts';

interface PublishConfig {
  stream: string;
  maxlen?: number;
}

/**
 * Appends each transformed event to a Redis stream as the entry's `payload` field: routing one
 * stream into another, or fanning events out for other pipelines.
 */
export default defineSink<PublishConfig>({
  name: 'publish',
  description: 'Append each transformed event to a Redis stream (as its payload field)',
  configSchema: {
    type: 'object',
    additionalProperties: false,
    required: ['stream'],
    properties: {
      stream: { type: 'string', minLength: 1, description: 'The stream key to append to.' },
      maxlen: { type: 'integer', minimum: 1, description: 'Keep the stream near this length, never trimming entries a consumer group has not acknowledged; unset: no cap.' },
    },
  },
  examples: [{ stream: 'model-events' }, { stream: 'alerts', maxlen: 100000 }],
  create(config, ctx) {
    let closed = false;
    const opts = config.maxlen ? { maxlen: config.maxlen } : undefined;
    return {
      async write(batch) {
        if (closed) throw new SinkClosedError('publish sink is closed');
        // One pipelined round trip per batch.
        const results = await ctx.publishMany(config.stream, batch.map((m) => m.value), opts);
        const errors = results.map((r) => (r instanceof Error ? r : undefined));
        if (errors.some(Boolean)) throw new BatchError(errors);
      },
      async close() {
        closed = true;
      },
    };
  },
});
