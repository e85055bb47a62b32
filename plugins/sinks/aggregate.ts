import type { RedisConnection } from '../../engine/runtime/redis-client.ts';
import { defineSink, type ConfigProblem, type SinkMessage } from '../../engine/plugins/define-sink.ts';
import { SinkClosedError, UnrecoverableError, errorMessage } from '../../engine/errors.ts';
import { compileExpression, ExpressionSyntaxError, type CompiledExpression } from '../../engine/expr/compile-expression.ts';
import { parseDuration } from '../../engine/config/duration.ts';
import { parseTimestamp } from '../../engine/config/timestamp.ts';
import { isTruthy } from '../../engine/runner/truthy.ts';
import { settleEach } from '../../engine/plugins/http-client.ts';

const MEASURES = ['count', 'sum', 'min', 'max', 'avg', 'rate', 'p50', 'p95', 'p99'] as const;
type Measure = (typeof MEASURES)[number];

interface AlertSpec {
  when: string;
  publish: { stream: string; event: string };
}

interface AggregateConfig {
  key: string;
  window: string;
  retention: string;
  grace: string;
  time?: string;
  measures: Record<string, Measure[]>;
  alerts: AlertSpec[];
}

/** Histogram buckets grow by this factor: a percentile is exact to within about ±5%. */
const BUCKET_GROWTH = 1.1;
const LOG_GROWTH = Math.log(BUCKET_GROWTH);

/**
 * The Redis keys of one aggregate sink's windows (a pipeline may have several); the hash tag
 * keeps them in one cluster slot.
 */
export function aggregateKeys(pipeline: string, sinkId: string) {
  const base = `synapse:agg:{${pipeline}}:${sinkId}`;
  return {
    index: `${base}:windows`,
    window: (start: number, key: string) => `${base}:w:${start}:${key}`,
    seen: (start: number) => `${base}:seen:${start}`,
    closed: (member: string) => `${base}:closed:${member}`,
  };
}

// Counts an entry once per window (the window's seen-set), updating the window's hash:
// `n`umeric (count, sum, min, max), `t`ruthy (for rate) and `h`istogram ops.
// The id joins the seen-set last: a failed update leaves it out, so the retry counts it.
const UPDATE = `
if redis.call('SISMEMBER', KEYS[1], ARGV[1]) == 1 then return 0 end
redis.call('HINCRBY', KEYS[2], 'count', 1)
local i = 5
while i <= #ARGV do
  local op, f, v = ARGV[i], ARGV[i + 1], ARGV[i + 2]
  if op == 'n' then
    redis.call('HINCRBY', KEYS[2], f .. ':n', 1)
    redis.call('HINCRBYFLOAT', KEYS[2], f .. ':sum', v)
    local mn = redis.call('HGET', KEYS[2], f .. ':min')
    if not mn or tonumber(v) < tonumber(mn) then redis.call('HSET', KEYS[2], f .. ':min', v) end
    local mx = redis.call('HGET', KEYS[2], f .. ':max')
    if not mx or tonumber(v) > tonumber(mx) then redis.call('HSET', KEYS[2], f .. ':max', v) end
  elseif op == 't' then
    redis.call('HINCRBY', KEYS[2], f .. ':rn', 1)
    if v == '1' then redis.call('HINCRBY', KEYS[2], f .. ':t', 1) end
  elseif op == 'h' then
    redis.call('HINCRBY', KEYS[2], f .. ':h:' .. v, 1)
  end
  i = i + 3
end
redis.call('PEXPIRE', KEYS[2], ARGV[2])
redis.call('ZADD', KEYS[3], ARGV[4], ARGV[3])
redis.call('SADD', KEYS[1], ARGV[1])
redis.call('PEXPIRE', KEYS[1], ARGV[2])
return 1`;

type AggRedis = RedisConnection & { synapseAggregate(seen: string, hash: string, index: string, ...args: (string | number)[]): Promise<number> };

/** One window of one key, with every measure as `<field>_<measure>` (and `count`). */
export interface WindowFigures {
  key: string;
  window_start: string;
  window_end: string;
  count: number;
  [figure: string]: string | number | null;
}

function bucketOf(v: number): string {
  return v <= 0 ? 'z' : String(Math.ceil(Math.log(v) / LOG_GROWTH));
}

function bucketValue(b: string): number {
  return b === 'z' ? 0 : BUCKET_GROWTH ** (Number(b) - 0.5);
}

/** Turns a window's hash into its figures. */
export function figuresFrom(hash: Record<string, string>, measures: Record<string, readonly Measure[]>, key: string, start: number, windowMs: number): WindowFigures {
  const out: WindowFigures = {
    key,
    window_start: new Date(start).toISOString(),
    window_end: new Date(start + windowMs).toISOString(),
    count: Number(hash.count ?? 0),
  };
  for (const [field, list] of Object.entries(measures)) {
    const n = Number(hash[`${field}:n`] ?? 0);
    const sum = Number(hash[`${field}:sum`] ?? 0);
    const min = hash[`${field}:min`] === undefined ? null : Number(hash[`${field}:min`]);
    const max = hash[`${field}:max`] === undefined ? null : Number(hash[`${field}:max`]);
    const buckets = Object.entries(hash)
      .filter(([k]) => k.startsWith(`${field}:h:`))
      .map(([k, c]) => ({ b: k.slice(field.length + 3), c: Number(c) }))
      .sort((a, b) => bucketValue(a.b) - bucketValue(b.b));
    const percentile = (p: number): number | null => {
      const total = buckets.reduce((s, x) => s + x.c, 0);
      if (!total) return null;
      let cum = 0;
      for (const x of buckets) {
        cum += x.c;
        if (cum >= p * total) {
          const v = bucketValue(x.b);
          return Math.min(max ?? v, Math.max(min ?? v, v));
        }
      }
      return max;
    };
    for (const m of list) {
      const name = `${field}_${m}`;
      switch (m) {
        case 'count': out[name] = n || Number(hash[`${field}:rn`] ?? 0); break;
        case 'sum': out[name] = sum; break;
        case 'min': out[name] = min; break;
        case 'max': out[name] = max; break;
        case 'avg': out[name] = n ? sum / n : null; break;
        case 'rate': {
          const rn = Number(hash[`${field}:rn`] ?? 0);
          out[name] = rn ? Number(hash[`${field}:t`] ?? 0) / rn : null;
          break;
        }
        default: out[name] = percentile(Number(m.slice(1)) / 100);
      }
    }
  }
  return out;
}

/**
 * Reads one aggregate sink's windows (for GET /aggregates/:pipeline): windows overlapping
 * [from, to] (ms), newest first, optionally of one key.
 */
export async function readAggregates(
  redis: RedisConnection,
  pipeline: string,
  sinkId: string,
  config: { window: string; measures: Record<string, readonly Measure[]> },
  opts: { from?: number; to?: number; key?: string; limit?: number } = {},
): Promise<WindowFigures[]> {
  const keys = aggregateKeys(pipeline, sinkId);
  const windowMs = parseDuration(config.window)!;
  const limit = opts.limit ?? 1000;
  const out: WindowFigures[] = [];
  // Page through the index: with a key filter, many members of other keys may come first.
  for (let offset = 0; out.length < limit; offset += 1000) {
    const members = await redis.zrevrangebyscore(keys.index, opts.to ?? '+inf', opts.from !== undefined ? opts.from - windowMs + 1 : '-inf', 'LIMIT', offset, 1000);
    for (const member of members) {
      const sep = member.indexOf('|');
      const start = Number(member.slice(0, sep));
      const key = member.slice(sep + 1);
      if (opts.key !== undefined && key !== opts.key) continue;
      const hash = await redis.hgetall(keys.window(start, key));
      if (Object.keys(hash).length) out.push(figuresFrom(hash, config.measures, key, start, windowMs));
      if (out.length >= limit) break;
    }
    if (members.length < 1000) break;
  }
  return out;
}

function compileChecked(source: string, path: (string | number)[], problems: ConfigProblem[]): CompiledExpression | undefined {
  try {
    return compileExpression(source);
  } catch (err) {
    if (err instanceof ExpressionSyntaxError) problems.push({ path, message: err.message, offset: err.offset });
    else problems.push({ path, message: errorMessage(err) });
    return undefined;
  }
}

function valueAt(obj: unknown, path: string): unknown {
  let cur = obj;
  for (const part of path.split('.')) {
    if (cur === null || typeof cur !== 'object') return undefined;
    cur = (cur as Record<string, unknown>)[part];
  }
  return cur;
}

/**
 * Tumbling-window aggregates in RedisConnection, grouped by a JSONata `key`: count, sum, min, max, avg,
 * rate (share of truthy values) and p50/p95/p99 from a fixed-bucket histogram. An entry id
 * counts once per window even when redelivered (check-and-update in one Lua script). When a
 * window closes (its end plus `grace` has passed), each alert's `when` is evaluated over the
 * window's figures and, when it holds, an event is published — on exactly one replica.
 */
export default defineSink<AggregateConfig>({
  name: 'aggregate',
  description: 'Tumbling-window aggregates in Redis (count, sum, min, max, avg, rate, p50/p95/p99) with window-close alerts',
  configSchema: {
    type: 'object',
    additionalProperties: false,
    required: ['key', 'window', 'measures'],
    properties: {
      key: { type: 'string', minLength: 1, description: 'JSONata over the transformed event giving the group key (model_name & "@" & version).' },
      window: { type: 'string', pattern: '^[0-9]+(s|m|h|d)$', description: 'Window length (1m, 1h).' },
      retention: { type: 'string', pattern: '^[0-9]+(s|m|h|d)$', default: '7d', description: 'How long windows are kept.' },
      grace: { type: 'string', pattern: '^[0-9]+(ms|s|m)$', default: '5s', description: 'How long after its end a window closes (late events).' },
      time: { type: 'string', minLength: 1, description: 'JSONata over the transformed event giving its time (ISO string or ms); default: the source event\'s timestamp, else now.' },
      measures: {
        type: 'object',
        minProperties: 1,
        description: 'Per field of the transformed event (dot paths allowed), the measures to keep.',
        additionalProperties: { type: 'array', minItems: 1, uniqueItems: true, items: { enum: [...MEASURES] } },
      },
      alerts: {
        type: 'array',
        default: [],
        description: 'Rules evaluated when a window closes.',
        items: {
          type: 'object',
          additionalProperties: false,
          required: ['when', 'publish'],
          properties: {
            when: { type: 'string', minLength: 1, description: 'JSONata over the window figures (count, <field>_<measure>, key).' },
            publish: {
              type: 'object',
              description: 'The event published when `when` holds for a closed window: its stream and event type.',
              additionalProperties: false,
              required: ['stream', 'event'],
              properties: {
                stream: { type: 'string', minLength: 1, description: 'Stream to publish the alert to.' },
                event: { type: 'string', minLength: 1, description: 'Event type of the alert.' },
              },
            },
          },
        },
      },
    },
  },
  examples: [
    { key: 'model_name & "@" & version', window: '1m', measures: { latency_ms: ['count', 'avg', 'p95'], success: ['rate'] } },
    {
      key: 'model_name', window: '5m', retention: '30d', grace: '10s',
      measures: { error: ['rate'], latency_ms: ['avg'] },
      alerts: [{ when: 'error_rate > 0.1 or latency_ms_avg > 5000', publish: { stream: 'platform-events', event: 'model-health-alert' } }],
    },
  ],
  expressions: { key: 'required', time: 'optional' },
  check(config) {
    const problems: ConfigProblem[] = [];
    compileChecked(config.key, ['key'], problems);
    if (config.time) compileChecked(config.time, ['time'], problems);
    (config.alerts ?? []).forEach((a, i) => compileChecked(a.when, ['alerts', i, 'when'], problems));
    const windowMs = parseDuration(config.window) ?? 0;
    if ((parseDuration(config.retention ?? '7d') ?? 0) < windowMs) problems.push({ path: ['retention'], message: 'retention must be at least one window' });
    return problems;
  },
  create(config, ctx) {
    const windowMs = parseDuration(config.window)!;
    const retentionMs = parseDuration(config.retention)!;
    const graceMs = parseDuration(config.grace)!;
    const keyExpr = compileExpression(config.key);
    const timeExpr = config.time ? compileExpression(config.time) : undefined;
    const alerts = config.alerts.map((a) => ({ ...a, when: compileExpression(a.when) }));
    const keys = aggregateKeys(ctx.pipeline, ctx.sinkId);
    const wantsHistogram = (list: readonly Measure[]) => list.some((m) => m[0] === 'p');
    const wantsNumeric = (list: readonly Measure[]) => list.some((m) => ['count', 'sum', 'min', 'max', 'avg'].includes(m) || m[0] === 'p');
    let redis: AggRedis | undefined;
    let closed = false;
    let timer: NodeJS.Timeout | undefined;
    let closing: Promise<void> | undefined;

    const eventTime = async (m: SinkMessage): Promise<number> => {
      const raw = timeExpr ? await timeExpr.evaluate(m.value) : (m.event as { timestamp?: unknown } | undefined)?.timestamp;
      // parseTimestamp: a producer's naive timestamp (Python utcnow()) is UTC, not the host's local time.
      const t = typeof raw === 'number' ? raw : typeof raw === 'string' ? parseTimestamp(raw) : NaN;
      return Number.isFinite(t) ? t : Date.now();
    };

    const update = async (m: SinkMessage) => {
      const key = await keyExpr.evaluate(m.value);
      if (key === undefined || key === null || typeof key === 'object') throw new UnrecoverableError(`aggregate key gave ${JSON.stringify(key)}; it must give a string or number`);
      const start = Math.floor((await eventTime(m)) / windowMs) * windowMs;
      const args: (string | number)[] = [m.id, retentionMs, `${start}|${key}`, start];
      for (const [field, list] of Object.entries(config.measures)) {
        const v = valueAt(m.value, field);
        if (v === undefined || v === null) continue;
        if (list.includes('rate')) args.push('t', field, isTruthy(v) ? '1' : '0');
        const num = typeof v === 'number' ? v : typeof v === 'string' && v.trim() !== '' ? Number(v) : NaN;
        if (Number.isFinite(num)) {
          if (wantsNumeric(list)) args.push('n', field, num);
          if (wantsHistogram(list)) args.push('h', field, bucketOf(num));
        }
      }
      const counted = await redis!.synapseAggregate(keys.seen(start), keys.window(start, String(key)), keys.index, ...args);
      if (!counted) ctx.metrics.count('duplicates_ignored');
    };

    /** Closes windows that ended more than `grace` ago: once, on one replica; evaluates alerts. */
    const closeWindows = async () => {
      const cutoff = Date.now() - windowMs - graceMs;
      const due = await redis!.zrangebyscore(keys.index, cutoff - retentionMs, cutoff);
      for (const member of due) {
        if (closed) return;
        const won = await redis!.set(keys.closed(member), '1', 'PX', retentionMs, 'NX');
        if (!won || alerts.length === 0) continue;
        const sep = member.indexOf('|');
        const start = Number(member.slice(0, sep));
        const key = member.slice(sep + 1);
        const figures = figuresFrom(await redis!.hgetall(keys.window(start, key)), config.measures, key, start, windowMs);
        for (const alert of alerts) {
          try {
            if (!isTruthy(await alert.when.evaluate(figures))) continue;
            await ctx.publish(alert.publish.stream, {
              event: alert.publish.event, source: 'synapse', timestamp: new Date().toISOString(),
              data: { pipeline: ctx.pipeline, rule: alert.when.source, ...figures },
            });
            ctx.metrics.count('alerts_published');
          } catch (err) {
            ctx.logger.error({ err: errorMessage(err), window: member }, 'aggregate alert failed');
          }
        }
      }
      await redis!.zremrangebyscore(keys.index, '-inf', Date.now() - retentionMs);
    };

    return {
      async connect() {
        redis = ctx.redis as AggRedis;
        if (typeof redis.synapseAggregate !== 'function') redis.defineCommand('synapseAggregate', { numberOfKeys: 3, lua: UPDATE });
        if (timer) return; // connected already
        const every = Math.max(250, Math.min(5000, Math.floor(windowMs / 4)));
        timer = setInterval(() => {
          closing ??= closeWindows().catch((err) => ctx.logger.warn({ err: errorMessage(err) }, 'closing windows failed')).finally(() => (closing = undefined));
        }, every);
        timer.unref();
      },
      async write(batch) {
        if (closed) throw new SinkClosedError('aggregate sink is closed');
        if (!redis) throw new Error('aggregate sink used before connect()');
        return settleEach(batch, 32, update);
      },
      async close() {
        closed = true;
        clearInterval(timer);
        timer = undefined;
        await closing;
      },
    };
  },
});
