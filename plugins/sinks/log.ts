import { defineSink } from '../../engine/plugins/define-sink.ts';
import { SinkClosedError } from '../../engine/errors.ts';

interface LogConfig {
  level: 'trace' | 'debug' | 'info' | 'warn' | 'error';
}

/** Writes each event to the engine's log: the simplest sink, for trying a pipeline out. */
export default defineSink<LogConfig>({
  name: 'log',
  description: "Write each transformed event to the engine's log",
  configSchema: {
    type: 'object',
    additionalProperties: false,
    properties: {
      level: { enum: ['trace', 'debug', 'info', 'warn', 'error'], default: 'info', description: 'Log level of the lines written.' },
    },
  },
  examples: [{ level: 'info' }, { level: 'debug' }],
  create(config, ctx) {
    let closed = false;
    return {
      async write(batch) {
        if (closed) throw new SinkClosedError('log sink is closed');
        for (const m of batch) ctx.logger[config.level]({ id: m.id, event: m.value }, 'event');
      },
      async close() {
        closed = true;
      },
    };
  },
});
