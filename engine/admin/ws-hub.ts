import type { Redis } from 'ioredis';
import type { Logger } from 'pino';
import { jwtVerify } from 'jose';
import { BROADCAST_CHANNEL } from '../runtime/sink-context.ts';
import { safeEqual } from './auth.ts';

/** Bytes queued to one client past which messages to it are dropped. */
export const SLOW_CLIENT_BYTES = 1024 * 1024;
/** Messages dropped in a row after which a client is disconnected. */
export const SLOW_CLIENT_DROPS = 100;

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

  /**
   * `privateChannels` (SYNAPSE_WS_PRIVATE_CHANNELS, default `ops`) need the admin token or a JWT
   * whose `channels` claim names them — once the engine has any credentials configured (a WS
   * secret or an admin token); an engine with neither is open, like its admin API.
   */
  constructor(
    private readonly subscriber: Redis,
    private readonly logger: Logger,
    secret?: string,
    opts: { adminToken?: string; privateChannels?: string[] } = {},
  ) {
    if (secret) this.secret = new TextEncoder().encode(secret);
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

  /** Subscribes to the broadcast channel and starts pinging clients. */
  async start(): Promise<void> {
    this.subscriber.on('message', (_channel: string, raw: string) => this.deliver(raw));
    await this.subscriber.subscribe(BROADCAST_CHANNEL);
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
  }

  /** Whether JWTs identify users (SYNAPSE_WS_SECRET is set). */
  get usesTokens(): boolean {
    return !!this.secret;
  }

  /** Takes a new connection. */
  add(socket: HubSocket, identity: WsIdentity = { channels: new Set() }): void {
    const userId = identity.userId;
    const client: Client = { socket, userId, channels: identity.channels, subs: new Map(), dropped: 0, alive: true };
    this.clients.add(client);
    socket.on('pong', () => (client.alive = true));
    socket.on('close', () => this.clients.delete(client));
    socket.on('message', (data) => this.onMessage(client, data));
    socket.send(JSON.stringify({ hello: 'synapse', userId: userId ?? null }));
  }

  get size(): number {
    return this.clients.size;
  }

  private onMessage(client: Client, data: Buffer): void {
    let msg: { subscribe?: unknown; unsubscribe?: unknown; filter?: unknown; userId?: unknown };
    try {
      msg = JSON.parse(data.toString());
    } catch {
      client.socket.send(JSON.stringify({ error: 'messages must be JSON: {"subscribe": CHANNEL, "filter": {...}}' }));
      return;
    }
    if (typeof msg.subscribe === 'string' && this.privateChannels.has(msg.subscribe) && client.channels !== 'all' && !client.channels.has(msg.subscribe)) {
      client.socket.send(JSON.stringify({ error: `channel '${msg.subscribe}' is private: connect with the admin token (?access_token=) or a token whose "channels" claim names it`, channel: msg.subscribe }));
    } else if (typeof msg.subscribe === 'string') {
      // Without a secret there is no way to prove identity, so a client may name itself.
      if (!this.secret && (typeof msg.userId === 'string' || typeof msg.userId === 'number')) client.userId = String(msg.userId);
      const filter = msg.filter && typeof msg.filter === 'object' && !Array.isArray(msg.filter) ? (msg.filter as Record<string, unknown>) : {};
      client.subs.set(msg.subscribe, filter);
      client.socket.send(JSON.stringify({ subscribed: msg.subscribe, filter, userId: client.userId ?? null }));
    } else if (typeof msg.unsubscribe === 'string') {
      client.subs.delete(msg.unsubscribe);
      client.socket.send(JSON.stringify({ unsubscribed: msg.unsubscribe }));
    } else {
      client.socket.send(JSON.stringify({ error: 'unknown message: send {"subscribe": CHANNEL} or {"unsubscribe": CHANNEL}' }));
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
      if (c.socket.bufferedAmount > SLOW_CLIENT_BYTES) {
        c.dropped++;
        this.droppedTotal++;
        if (c.dropped >= SLOW_CLIENT_DROPS) {
          this.logger.warn({ userId: c.userId }, 'disconnecting a WebSocket client too slow to keep up');
          c.socket.terminate();
          this.clients.delete(c);
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
    for (const c of this.clients) c.socket.close(1001, 'server shutting down');
    this.clients.clear();
    this.subscriber.disconnect();
  }
}
