import { createRequire } from 'node:module';
import type { Socket } from 'node:net';
import { waitFor } from './redis.ts';

/** The slice of a `ws` WebSocket client the tests use (the package ships no types of its own). */
interface WsSocket {
  readonly readyState: number;
  on(event: 'message', fn: (data: Buffer) => void): void;
  on(event: 'open', fn: () => void): void;
  on(event: 'close', fn: (code: number, reason: Buffer) => void): void;
  on(event: 'error', fn: (err: Error) => void): void;
  send(data: string): void;
  close(code?: number, reason?: string): void;
  terminate(): void;
  /** The underlying TCP socket (ws's own field): pausing it stops reading. */
  readonly _socket?: Socket;
}

// `ws` is installed as a dependency of @fastify/websocket; it has no type declarations here.
const WebSocket = createRequire(import.meta.url)('ws') as new (url: string) => WsSocket;

/** A message a client received, parsed from JSON. */
export type WsMessage = Record<string, unknown> & { channel?: string; message?: Record<string, unknown> };

/** A WebSocket client of an engine's GET /ws, recording what it receives. */
export interface WsClient {
  /** Every message received, in order. */
  messages: WsMessage[];
  /** Resolves with the close code and reason when the connection ends. */
  closed: Promise<{ code: number; reason: string }>;
  /** The broadcast payloads received on `channel`, in order. */
  received(channel: string): Record<string, unknown>[];
  /** Sends a message as it is, without waiting for an answer. */
  send(message: Record<string, unknown>): void;
  /** Sends `{subscribe, filter?, userId?}` and waits for the server's acknowledgement. */
  subscribe(channel: string, opts?: { filter?: Record<string, unknown>; userId?: string }): Promise<WsMessage>;
  /** Waits until a received message satisfies `pred`. */
  waitFor(pred: (m: WsMessage) => boolean, what: string, timeoutMs?: number): Promise<WsMessage>;
  /** Waits until `channel` has delivered at least `n` payloads, and returns them. */
  waitForCount(channel: string, n: number, timeoutMs?: number): Promise<Record<string, unknown>[]>;
  /** Stops reading from the socket: the client neither reads nor answers, as a dead one. */
  pause(): void;
  /** Closes (terminates) the connection. Idempotent. */
  close(): Promise<void>;
}

const opened = new Set<WsClient>();

/**
 * Opens a WebSocket to `url` and resolves once it is open (not waiting for the server's hello, so
 * a refused client can be observed too). Throws when the connection cannot be opened.
 */
export async function openWs(url: string): Promise<WsClient> {
  const socket = new WebSocket(url);
  const messages: WsMessage[] = [];
  socket.on('message', (data) => {
    try {
      messages.push(JSON.parse(data.toString()) as WsMessage);
    } catch {
      messages.push({ raw: data.toString() });
    }
  });
  const closed = new Promise<{ code: number; reason: string }>((resolve) => {
    socket.on('close', (code, reason) => resolve({ code, reason: reason.toString() }));
  });
  await new Promise<void>((resolve, reject) => {
    socket.on('open', () => resolve());
    socket.on('error', (err) => reject(err));
  });
  const client: WsClient = {
    messages,
    closed,
    received: (channel) => messages.filter((m) => m.channel === channel).map((m) => m.message as Record<string, unknown>),
    send(message) {
      socket.send(JSON.stringify(message));
    },
    async subscribe(channel, opts = {}) {
      socket.send(JSON.stringify({ subscribe: channel, ...(opts.filter ? { filter: opts.filter } : {}), ...(opts.userId ? { userId: opts.userId } : {}) }));
      return client.waitFor((m) => m.subscribed === channel, `the subscription to ${channel} acknowledged`);
    },
    waitFor(pred, what, timeoutMs = 15_000) {
      return waitFor(() => messages.find(pred), what, timeoutMs, 20);
    },
    waitForCount(channel, n, timeoutMs = 15_000) {
      return waitFor(() => {
        const got = client.received(channel);
        return got.length >= n && got;
      }, `${n} messages on ${channel} (have ${client.received(channel).length})`, timeoutMs, 20);
    },
    pause() {
      socket._socket?.pause();
    },
    async close() {
      opened.delete(client);
      if (socket.readyState === 3) return;
      socket.terminate();
      await closed;
    },
  };
  opened.add(client);
  return client;
}

/** Opens a WebSocket and waits for the server's `{hello}` (which names the userId of a token). */
export async function connectWs(url: string): Promise<WsClient> {
  const client = await openWs(url);
  await client.waitFor((m) => m.hello === 'synapse', 'the hello message');
  return client;
}

/** Closes every client still open (afterEach safety net). */
export async function closeAllWs(): Promise<void> {
  await Promise.all([...opened].map((c) => c.close()));
}
