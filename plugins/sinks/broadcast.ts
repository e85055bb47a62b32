import { defineSink, type ConfigProblem } from '../../engine/plugins/define-sink.ts';
import { SinkClosedError, UnrecoverableError } from '../../engine/errors.ts';
import { compileExpression, ExpressionSyntaxError } from '../../engine/expr/compile-expression.ts';
import { settleEach } from '../../engine/plugins/http-client.ts';

interface BroadcastConfig {
  channel: string;
  audience?: string;
}

/**
 * Pushes each transformed event to the WebSocket clients of the admin server (`GET /ws`) that
 * subscribed to `channel`, on every replica (Redis pub/sub). With `audience` (JSONata giving a
 * userId), only that user's clients receive it. Delivery is fire-and-forget: a slow or dead
 * client is dropped by the server and never slows the pipeline.
 */
export default defineSink<BroadcastConfig>({
  name: 'broadcast',
  description: 'Push each event to WebSocket subscribers of a channel (optionally only to one user)',
  configSchema: {
    type: 'object',
    additionalProperties: false,
    required: ['channel'],
    properties: {
      channel: { type: 'string', minLength: 1, description: 'Channel clients subscribe to.' },
      audience: { type: 'string', minLength: 1, description: 'JSONata over the transformed event giving the userId allowed to see it; unset: every subscriber.' },
    },
  },
  examples: [{ channel: 'platform' }, { channel: 'notifications', audience: 'userId' }],
  expressions: { audience: 'required' },
  check(config) {
    const problems: ConfigProblem[] = [];
    if (config.audience) {
      try {
        compileExpression(config.audience);
      } catch (err) {
        if (err instanceof ExpressionSyntaxError) problems.push({ path: ['audience'], message: err.message, offset: err.offset });
        else throw err;
      }
    }
    return problems;
  },
  create(config, ctx) {
    const audience = config.audience ? compileExpression(config.audience) : undefined;
    let closed = false;
    return {
      async write(batch) {
        if (closed) throw new SinkClosedError('broadcast sink is closed');
        return settleEach(batch, 32, async (m) => {
          let who: string | undefined;
          if (audience) {
            const v = await audience.evaluate(m.value, { input: m.event });
            if (v === undefined || v === null || v === '') throw new UnrecoverableError(`broadcast audience '${audience.source}' gave no userId`);
            who = String(v);
          }
          await ctx.broadcast(config.channel, m.value, who === undefined ? undefined : { audience: who });
          ctx.metrics.count('broadcasts');
        });
      },
      async close() {
        closed = true;
      },
    };
  },
});
