import type { RedisConnection } from '../runtime/redis-client.ts';
import type { Logger } from 'pino';
import { jwtVerify } from 'jose';
import { BROADCAST_CHANNEL } from '../runtime/sink-context.ts';
import type { EngineMetrics } from '../metrics.ts';
import { safeEqual } from './auth.ts';
import type { RefusalLog } from '../refusal-log.ts';
import { numericSetting, type NumericSetting } from '../settings.ts';

/** Bytes queued to one client past which messages to it are dropped. */
export const SLOW_CLIENT_BYTES = 1024 * 1024;
/** Messages dropped in a row after which a client is disconnected. */
export const SLOW_CLIENT_DROPS = 100;

/** What one WebSocket client, and all of them, may hold of the engine's memory (docs/security.md). */
export interface WsLimits {
  /** Open connections in total (SYNAPSE_WS_MAX_CONNECTIONS). */
  maxConnections: number;
  /** Open connections from one IP address (SYNAPSE_WS_MAX_CONNECTIONS_PER_IP). */
  maxConnectionsPerIp: number;
  /** Channels one client may subscribe to (SYNAPSE_WS_MAX_SUBSCRIPTIONS). */
  maxSubscriptions: number;
  /** Characters of a channel name (SYNAPSE_WS_MAX_CHANNEL_LENGTH). */
  maxChannelLength: number;
  /** Bytes of one subscription's filter, as JSON. */
  maxFilterBytes: number;
  /**
   * Bytes queued to a client that is not reading (SYNAPSE_WS_MAX_BUFFERED_BYTES): broadcasts to
   * it are dropped past this; a client that keeps sending while its replies pile up past it is
   * disconnected.
   */
  maxBufferedBytes: number;
}

export const DEFAULT_WS_LIMITS: WsLimits = {
  maxConnections: 1000,
  maxConnectionsPerIp: 32,
  maxSubscriptions: 100,
  maxChannelLength: 200,
  maxFilterBytes: 1024,
  maxBufferedBytes: SLOW_CLIENT_BYTES,
};

/** The limits set in the environment, over the defaults. */
export function wsLimitsFromEnv(env: NodeJS.ProcessEnv = process.env): WsLimits {
  const num = (name: NumericSetting, fallback: number) => numericSetting(name, fallback, env);
  const d = DEFAULT_WS_LIMITS;
  return {
    maxConnections: num('SYNAPSE_WS_MAX_CONNECTIONS', d.maxConnections),
    maxConnectionsPerIp: num('SYNAPSE_WS_MAX_CONNECTIONS_PER_IP', d.maxConnectionsPerIp),
    maxSubscriptions: num('SYNAPSE_WS_MAX_SUBSCRIPTIONS', d.maxSubscriptions),
    maxChannelLength: num('SYNAPSE_WS_MAX_CHANNEL_LENGTH', d.maxChannelLength),
    maxFilterBytes: d.maxFilterBytes,
    maxBufferedBytes: num('SYNAPSE_WS_MAX_BUFFERED_BYTES', d.maxBufferedBytes),
  };
}

/** Where the hub reports what it refused and how full it is (all optional, for unit tests). */
export interface WsObservers {
  refusals?: RefusalLog;
  metrics?: EngineMetrics;
}

/** The slice of a `ws` WebSocket the hub uses. */
export interface HubSocket {
  readonly bufferedAmount: number;
  readonly readyState: number;
  send(data: string): void;
  close(code?: number, reason?: string): void;
  terminate(): void;
  ping(): void;
  on(event: 'message', fn: (data: Buffer) => void): void;
  on(event: 'close' | 'pong', fn: () => void): void;
}

/** Who a connecting client proved to be. */
export interface WsIdentity {
  userId?: string;
  /** Private channels it may subscribe to; `all` for the admin token. */
  channels: Set<string> | 'all';
}

interface Client {
  socket: HubSocket;
  userId?: string;
  channels: Set<string> | 'all';
  /** Channel → filter (field → required value). */
  subs: Map<string, Record<string, unknown>>;
  dropped: number;
  alive: boolean;
  ip: string;
}

/** A broadcast as it travels over Redis pub/sub between replicas. */
interface Broadcast {
  channel: string;
  message: unknown;
  audience?: string;
}

function matches(message: unknown, filter: Record<string, unknown>): boolean {
  for (const [path, want] of Object.entries(filter)) {
    let cur: unknown = message;
    for (const part of path.split('.')) cur = cur && typeof cur === 'object' ? (cur as Record<string, unknown>)[part] : undefined;
    if (cur !== want && String(cur) !== String(want)) return false;
  }
  return true;
}

/**
 * The WebSocket side of the broadcast sink: clients of `GET /ws` subscribe to channels (with an
 * optional filter); messages published by any replica arrive through Redis pub/sub and go to
 * every matching client. A message with an audience reaches only that user. A client whose
 * send buffer is full misses messages; one that misses many in a row, or stops answering pings,
 * is disconnected — the pipeline never waits for a client.
 */
export class WsHub {
  private readonly clients = new Set<Client>();
  private readonly secret?: Uint8Array;
  private heartbeat?: NodeJS.Timeout;
  /** Messages dropped for slow clients, for metrics and tests. */
  droppedTotal = 0;

  private readonly privateChannels: Set<string>;
  private readonly limits: WsLimits;
  private readonly perIp = new Map<string, number>();
  private subscriptions = 0;
  private readonly observers: WsObservers;

  /**
   * `privateChannels` (SYNAPSE_WS_PRIVATE_CHANNELS, default `ops`) need the admin token or a JWT
   * whose `channels` claim names them — once the engine has any credentials configured (a WS
   * secret or an admin token); an engine with neither is open, like its admin API.
   */
  constructor(
    private readonly subscriber: RedisConnection,
    private readonly logger: Logger,
    secret?: string,
    opts: { adminToken?: string; privateChannels?: string[]; limits?: Partial<WsLimits> } & WsObservers = {},
  ) {
    if (secret) this.secret = new TextEncoder().encode(secret);
    this.limits = { ...DEFAULT_WS_LIMITS, ...opts.limits };
    this.observers = { refusals: opts.refusals, metrics: opts.metrics };
    this.adminToken = opts.adminToken;
    this.privateChannels = secret || opts.adminToken ? new Set(opts.privateChannels ?? ['ops']) : new Set();
  }

  private readonly adminToken?: string;

  /**
   * Works out who a connecting client is: `token` a user JWT (HS256, SYNAPSE_WS_SECRET; `sub` the
   * userId, optional `channels` claim for private channels), `accessToken` the admin token (every
   * channel). Throws for a bad JWT or a wrong admin token.
   */
  async identify(token: string | undefined, accessToken: string | undefined): Promise<WsIdentity> {
    if (accessToken !== undefined) {
      if (!this.adminToken || !safeEqual(accessToken, this.adminToken)) throw new Error('wrong access_token');
      return { channels: 'all' };
    }
    if (!this.secret || !token) return { channels: new Set() };
    const { payload } = await jwtVerify(token, this.secret, { algorithms: ['HS256'] });
    if (!payload.sub) throw new Error('token has no sub');
    const claimed = Array.isArray(payload.channels) ? payload.channels.filter((c): c is string => typeof c === 'string') : [];
    return { userId: payload.sub, channels: new Set(claimed) };
  }

  /**
   * Starts pinging clients and subscribes to the broadcast channel; resolves once subscribed,
   * which waits for Redis while it is away (ioredis renews the subscription after a reconnect).
   */
  async start(): Promise<void> {
    this.subscriber.on('message', (_channel: string, raw: string) => this.deliver(raw));
    this.heartbeat = setInterval(() => {
      for (const c of this.clients) {
        if (!c.alive) {
          c.socket.terminate();
          continue;
        }
        c.alive = false;
        c.socket.ping();
      }
    }, 30_000);
    this.heartbeat.unref();
    await this.subscriber.subscribe(BROADCAST_CHANNEL);
  }

  /** Whether JWTs identify users (SYNAPSE_WS_SECRET is set). */
  get usesTokens(): boolean {
    return !!this.secret;
  }

  /**
   * Why a new connection from `ip` cannot be taken (too many in total or from that address), or
   * undefined. Checked before the upgrade, so a refused client costs no WebSocket.
   */
  admit(ip: string): string | undefined {
    if (this.clients.size >= this.limits.maxConnections) {
      this.refuse('ws.connections', 'WebSocket connection over the total limit', { ip });
      return `too many WebSocket connections (limit ${this.limits.maxConnections}, SYNAPSE_WS_MAX_CONNECTIONS)`;
    }
    if ((this.perIp.get(ip) ?? 0) >= this.limits.maxConnectionsPerIp) {
      this.refuse('ws.connections_per_ip', 'WebSocket connection over the per-address limit', { ip });
      return `too many WebSocket connections from ${ip} (limit ${this.limits.maxConnectionsPerIp}, SYNAPSE_WS_MAX_CONNECTIONS_PER_IP)`;
    }
    return undefined;
  }

  /** Takes a new connection (from `ip`, counted against its per-address limit). */
  add(socket: HubSocket, identity: WsIdentity = { channels: new Set() }, ip = 'unknown'): void {
    const userId = identity.userId;
    const client: Client = { socket, userId, channels: identity.channels, subs: new Map(), dropped: 0, alive: true, ip };
    this.clients.add(client);
    this.perIp.set(ip, (this.perIp.get(ip) ?? 0) + 1);
    this.observers.metrics?.wsConnections.set(this.clients.size);
    socket.on('pong', () => (client.alive = true));
    socket.on('close', () => this.forget(client));
    socket.on('message', (data) => this.onMessage(client, data));
    socket.send(JSON.stringify({ hello: 'synapse', userId: userId ?? null }));
  }

  /** Drops a client and what it held; safe to call twice. */
  private forget(client: Client): void {
    if (!this.clients.delete(client)) return;
    const n = (this.perIp.get(client.ip) ?? 1) - 1;
    if (n > 0) this.perIp.set(client.ip, n);
    else this.perIp.delete(client.ip);
    this.subscriptions -= client.subs.size;
    client.subs.clear();
    this.observers.metrics?.wsConnections.set(this.clients.size);
    this.observers.metrics?.wsSubscriptions.set(this.subscriptions);
  }

  private refuse(limit: string, message: string, fields: Record<string, unknown>): void {
    if (this.observers.refusals) this.observers.refusals.refuse(limit, message, fields);
  }

  /**
   * Answers a client's own message, unless its replies are piling up unread: a client that keeps
   * sending without reading is disconnected instead of growing the engine's memory.
   */
  private reply(client: Client, message: Record<string, unknown>): void {
    if (client.socket.bufferedAmount > this.limits.maxBufferedBytes) {
      this.refuse('ws.send_buffer', 'WebSocket client sending without reading its replies: disconnected', { ip: client.ip, userId: client.userId });
      client.socket.terminate();
      this.forget(client);
      return;
    }
    client.socket.send(JSON.stringify(message));
  }

  get size(): number {
    return this.clients.size;
  }

  private onMessage(client: Client, data: Buffer): void {
    if (!this.clients.has(client)) return;
    let msg: { subscribe?: unknown; unsubscribe?: unknown; filter?: unknown; userId?: unknown };
    try {
      msg = JSON.parse(data.toString());
    } catch {
      this.reply(client, { error: 'messages must be JSON: {"subscribe": CHANNEL, "filter": {...}}' });
      return;
    }
    if (!msg || typeof msg !== 'object') {
      this.reply(client, { error: 'unknown message: send {"subscribe": CHANNEL} or {"unsubscribe": CHANNEL}' });
      return;
    }
    const { limits } = this;
    const channel = typeof msg.subscribe === 'string' ? msg.subscribe : typeof msg.unsubscribe === 'string' ? msg.unsubscribe : undefined;
    if (channel !== undefined && channel.length > limits.maxChannelLength) {
      this.refuse('ws.channel_length', 'WebSocket channel name over the length limit', { ip: client.ip, length: channel.length });
      this.reply(client, { error: `channel names are limited to ${limits.maxChannelLength} characters (SYNAPSE_WS_MAX_CHANNEL_LENGTH)`, channel: `${channel.slice(0, 40)}...` });
      return;
    }
    if (typeof msg.subscribe === 'string' && this.privateChannels.has(msg.subscribe) && client.channels !== 'all' && !client.channels.has(msg.subscribe)) {
      this.reply(client, { error: `channel '${msg.subscribe}' is private: connect with the admin token (?access_token=) or a token whose "channels" claim names it`, channel: msg.subscribe });
    } else if (typeof msg.subscribe === 'string') {
      const filter = msg.filter && typeof msg.filter === 'object' && !Array.isArray(msg.filter) ? (msg.filter as Record<string, unknown>) : {};
      if (JSON.stringify(filter).length > limits.maxFilterBytes) {
        this.refuse('ws.filter_size', 'WebSocket filter over the size limit', { ip: client.ip });
        this.reply(client, { error: `a filter is limited to ${limits.maxFilterBytes} bytes of JSON`, channel: msg.subscribe });
        return;
      }
      if (!client.subs.has(msg.subscribe) && client.subs.size >= limits.maxSubscriptions) {
        this.refuse('ws.subscriptions', 'WebSocket subscriptions over the per-client limit', { ip: client.ip });
        this.reply(client, { error: `a client may subscribe to at most ${limits.maxSubscriptions} channels (SYNAPSE_WS_MAX_SUBSCRIPTIONS); unsubscribe first`, channel: msg.subscribe });
        return;
      }
      // Without a secret there is no way to prove identity, so a client may name itself.
      if (!this.secret && (typeof msg.userId === 'string' || typeof msg.userId === 'number')) client.userId = String(msg.userId).slice(0, limits.maxChannelLength);
      if (!client.subs.has(msg.subscribe)) this.subscriptions++;
      client.subs.set(msg.subscribe, filter);
      this.observers.metrics?.wsSubscriptions.set(this.subscriptions);
      this.reply(client, { subscribed: msg.subscribe, filter, userId: client.userId ?? null });
    } else if (typeof msg.unsubscribe === 'string') {
      if (client.subs.delete(msg.unsubscribe)) this.subscriptions--;
      this.observers.metrics?.wsSubscriptions.set(this.subscriptions);
      this.reply(client, { unsubscribed: msg.unsubscribe });
    } else {
      this.reply(client, { error: 'unknown message: send {"subscribe": CHANNEL} or {"unsubscribe": CHANNEL}' });
    }
  }

  private deliver(raw: string): void {
    let b: Broadcast;
    try {
      b = JSON.parse(raw);
    } catch {
      return;
    }
    let text: string | undefined;
    for (const c of this.clients) {
      const filter = c.subs.get(b.channel);
      if (!filter) continue;
      if (b.audience !== undefined && c.userId !== b.audience) continue;
      if (!matches(b.message, filter)) continue;
      if (c.socket.readyState !== 1) continue;
      if (c.socket.bufferedAmount > this.limits.maxBufferedBytes) {
        c.dropped++;
        this.droppedTotal++;
        this.observers.metrics?.wsDropped.inc();
        if (c.dropped >= SLOW_CLIENT_DROPS) {
          this.logger.warn({ userId: c.userId }, 'disconnecting a WebSocket client too slow to keep up');
          c.socket.terminate();
          this.forget(c);
        }
        continue;
      }
      c.dropped = 0;
      text ??= JSON.stringify({ channel: b.channel, message: b.message });
      c.socket.send(text);
    }
  }

  /** Disconnects every client and unsubscribes. Idempotent. */
  async close(): Promise<void> {
    clearInterval(this.heartbeat);
    for (const c of [...this.clients]) {
      c.socket.close(1001, 'server shutting down');
      this.forget(c);
    }
    this.subscriber.disconnect();
  }
}
