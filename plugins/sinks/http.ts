import { defineSink } from '../../engine/plugins/define-sink.ts';
import { SinkClosedError } from '../../engine/errors.ts';
import { sendJson, settleEach } from '../../engine/plugins/http-client.ts';

interface HttpConfig {
  url: string;
  method: 'POST' | 'PUT' | 'PATCH';
  headers: Record<string, string>;
  timeout_ms: number;
  concurrency: number;
}

/**
 * Sends each transformed event as JSON to a URL. 5xx, 408, 429, network errors and time-outs are
 * retried per the pipeline's `retry`; other 4xx go straight to the DLQ with the status. Each
 * request carries `Idempotency-Key: <pipeline>:<entry id>` so a receiver can drop redeliveries.
 */
export default defineSink<HttpConfig>({
  name: 'http',
  description: 'POST each event as JSON to a URL',
  configSchema: {
    type: 'object',
    additionalProperties: false,
    required: ['url'],
    properties: {
      url: { type: 'string', pattern: '^https?://', description: 'The URL to send each event to.' },
      method: { enum: ['POST', 'PUT', 'PATCH'], default: 'POST', description: 'HTTP method.' },
      headers: { type: 'object', additionalProperties: { type: 'string' }, default: {}, description: 'Extra request headers (an Authorization header, say; use ${VAR} for secrets).' },
      timeout_ms: { type: 'integer', minimum: 1, default: 5000, description: 'Time limit of one request.' },
      concurrency: { type: 'integer', minimum: 1, maximum: 256, default: 10, description: 'Requests in flight at once per batch.' },
    },
  },
  examples: [
    { url: 'http://127.0.0.1:9000/hook' },
    { url: 'https://hooks.example.com/synapse', method: 'PUT', headers: { authorization: 'Bearer ${HOOK_TOKEN}' }, timeout_ms: 2000, concurrency: 4 },
  ],
  create(config, ctx) {
    let closed = false;
    return {
      async write(batch) {
        if (closed) throw new SinkClosedError('http sink is closed');
        return settleEach(batch, config.concurrency, (m) => sendJson(config.url, m.value, {
          method: config.method,
          timeoutMs: config.timeout_ms,
          headers: { 'idempotency-key': `${ctx.pipeline}:${m.id}`, ...config.headers },
        }));
      },
      async close() {
        closed = true;
      },
    };
  },
});
