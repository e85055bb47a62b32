import type { RedisConnection } from '../../engine/runtime/redis-client.ts';
import { defineSink, type SinkMessage } from '../../engine/plugins/define-sink.ts';
import { SinkClosedError, UnrecoverableError } from '../../engine/errors.ts';
import { sendJson, settleEach } from '../../engine/plugins/http-client.ts';
import { jobIdFor } from './queue.ts';

interface NotifyConfig {
  inbox: string;
  inbox_maxlen: number;
  queue?: string;
  attempts: number;
  backoff_ms: number;
  webhook?: string;
  timeout_ms: number;
  dedupe_ttl_s: number;
}

/** The notification a user sees, as written to the inbox, the queue and the webhook. */
export interface Notification {
  id: string;
  userId: string;
  type: string;
  title: string;
  message: string;
  data?: unknown;
  createdAt: string;
}

// Appends to the inbox and marks the entry as notified in one step: a redelivered entry finds
// the mark and writes nothing. The mark comes last, so a failed XADD leaves no mark behind
// (Redis does not undo a script's earlier writes when a later command fails).
const INBOX_ONCE = `
if redis.call('EXISTS', KEYS[1]) == 1 then return false end
local id = redis.call('XADD', KEYS[2], 'MAXLEN', '~', ARGV[2], '*', 'payload', ARGV[3])
redis.call('SET', KEYS[1], '1', 'EX', ARGV[1])
return id`;

type InboxRedis = RedisConnection & { synapseInboxOnce(seen: string, inbox: string, ttl: number, maxlen: number, payload: string): Promise<string | null> };

/** Builds the notification from a transformed event; UnrecoverableError when fields are missing. */
export function toNotification(m: SinkMessage, pipeline: string): Notification {
  const v = (m.value ?? {}) as Record<string, unknown>;
  const missing = ['userId', 'type', 'title', 'message'].filter((k) => v[k] === undefined || v[k] === null || v[k] === '');
  if (missing.length) throw new UnrecoverableError(`a notification needs userId, type, title and message; missing: ${missing.join(', ')}`);
  return {
    id: `${pipeline}:${m.id}`,
    userId: String(v.userId),
    type: String(v.type),
    title: String(v.title),
    message: String(v.message),
    ...(v.data !== undefined ? { data: v.data } : {}),
    createdAt: new Date().toISOString(),
  };
}

/**
 * Notifies a user: appends to their inbox stream `<inbox>:<userId>` (capped), optionally enqueues
 * a BullMQ job for delivery workers (email, push) and POSTs a webhook. Each channel acts once per
 * source entry, even under redelivery: the inbox write is marked atomically (Lua), the job id is
 * the entry id, and the webhook is marked after its 2xx.
 */
export default defineSink<NotifyConfig>({
  name: 'notify',
  description: "Write a user notification to the user's inbox stream, and optionally a BullMQ queue and a webhook",
  configSchema: {
    type: 'object',
    additionalProperties: false,
    properties: {
      inbox: { type: 'string', minLength: 1, default: 'notifications', description: 'Inbox stream prefix: notifications go to <inbox>:<userId>.' },
      inbox_maxlen: { type: 'integer', minimum: 1, default: 1000, description: 'Keep about this many notifications per user.' },
      queue: { type: 'string', minLength: 1, description: 'BullMQ queue for delivery workers (email, push); unset: none.' },
      attempts: { type: 'integer', minimum: 1, default: 5, description: 'Delivery job attempts (with queue).' },
      backoff_ms: { type: 'integer', minimum: 0, default: 1000, description: 'First delivery job back-off, doubling (with queue).' },
      webhook: { type: 'string', pattern: '^https?://', description: 'URL to POST each notification to; unset: none.' },
      timeout_ms: { type: 'integer', minimum: 1, default: 5000, description: 'Webhook time limit.' },
      dedupe_ttl_s: { type: 'integer', minimum: 60, default: 604800, description: 'How long an entry is remembered as notified (redeliveries later than this notify again).' },
    },
  },
  examples: [
    {},
    { inbox: 'notifications', queue: 'notification-delivery', attempts: 5, backoff_ms: 2000 },
    { inbox: 'notifications', webhook: 'http://127.0.0.1:9000/notify', timeout_ms: 3000 },
  ],
  create(config, ctx) {
    let closed = false;
    let redis: InboxRedis | undefined;
    const seenKey = (channel: string, m: SinkMessage) => `synapse:notify:${channel}:${ctx.pipeline}:${m.id}`;

    const deliver = async (m: SinkMessage) => {
      const n = toNotification(m, ctx.pipeline);
      const payload = JSON.stringify(n);
      const inbox = `${config.inbox}:${n.userId}`;
      // The mark's hash tag is the inbox's name, so both keys of the script share a cluster slot.
      const mark = `synapse:notify:{${inbox}}:${ctx.pipeline}:${m.id}`;
      const written = await redis!.synapseInboxOnce(mark, inbox, config.dedupe_ttl_s, config.inbox_maxlen, payload);
      if (written) ctx.metrics.count('notifications_written');
      if (config.queue) {
        await ctx.queue(config.queue).add('notification', n, {
          jobId: jobIdFor(`notify-${ctx.pipeline}`, m.id),
          attempts: config.attempts,
          backoff: { type: 'exponential', delay: config.backoff_ms },
          removeOnComplete: { age: config.dedupe_ttl_s },
          removeOnFail: { age: config.dedupe_ttl_s },
        });
      }
      if (config.webhook) {
        const key = seenKey('webhook', m);
        if (await redis!.exists(key)) return;
        await sendJson(config.webhook, n, { timeoutMs: config.timeout_ms, headers: { 'idempotency-key': n.id } });
        await redis!.set(key, '1', 'EX', config.dedupe_ttl_s);
        ctx.metrics.count('webhooks_sent');
      }
    };

    return {
      async connect() {
        redis = ctx.redis as InboxRedis;
        if (typeof redis.synapseInboxOnce !== 'function') redis.defineCommand('synapseInboxOnce', { numberOfKeys: 2, lua: INBOX_ONCE });
      },
      async write(batch) {
        if (closed) throw new SinkClosedError('notify sink is closed');
        if (!redis) throw new Error('notify sink used before connect()');
        return settleEach(batch, 16, deliver);
      },
      async close() {
        closed = true;
      },
    };
  },
});
