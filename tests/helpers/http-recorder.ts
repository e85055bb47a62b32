import { createServer, type IncomingHttpHeaders, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';

/** One request the recorder received. */
export interface RecordedRequest {
  method: string;
  url: string;
  headers: IncomingHttpHeaders;
  body: string;
  /** The body parsed as JSON, or undefined when it is not JSON. */
  json: unknown;
  /** 1 for the first request the recorder received, 2 for the next... */
  n: number;
}

/**
 * How the recorder answers one request: a status (with an optional JSON body), `hang` (never
 * answer: the client times out or the recorder's close() cuts it), or `reset` (destroy the
 * socket: the client sees a network error).
 */
export type Answer = { status: number; body?: unknown } | 'hang' | 'reset';

/** Decides the answer to each request; may wait (a slow downstream) before deciding. */
export type Script = (req: RecordedRequest) => Answer | Promise<Answer>;

/** A real HTTP server on 127.0.0.1 (a free port) standing in for a webhook or a model runtime. */
export interface HttpRecorder {
  /** `http://127.0.0.1:<port>` */
  url: string;
  port: number;
  /** Every request received, in arrival order. */
  requests: RecordedRequest[];
  /** Replaces the script for the requests to come. */
  answer(script: Script): void;
  /** Stops listening and cuts every open connection. Idempotent. */
  close(): Promise<void>;
}

/** Starts a recorder answering 200 `{ ok: true }` unless given another script. */
export async function startHttpRecorder(script: Script = () => ({ status: 200, body: { ok: true } })): Promise<HttpRecorder> {
  const requests: RecordedRequest[] = [];
  let current = script;
  const hanging = new Set<ServerResponse>();
  const server = createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      const body = Buffer.concat(chunks).toString('utf8');
      let json: unknown;
      try {
        json = JSON.parse(body);
      } catch {
        json = undefined;
      }
      const recorded: RecordedRequest = { method: req.method ?? '', url: req.url ?? '', headers: req.headers, body, json, n: requests.length + 1 };
      requests.push(recorded);
      void Promise.resolve(current(recorded)).then((a) => {
        if (a === 'hang') {
          hanging.add(res);
          res.on('close', () => hanging.delete(res));
          return;
        }
        if (a === 'reset') {
          req.socket.destroy();
          return;
        }
        // No keep-alive: a pooled connection to a recorder a previous test closed (its port
        // reused) would fail a request before it reaches this one, and skew the counts.
        res.writeHead(a.status, { 'content-type': 'application/json', connection: 'close' });
        res.end(JSON.stringify(a.body ?? {}));
      }, () => req.socket.destroy());
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  let closing: Promise<void> | undefined;
  return {
    url: `http://127.0.0.1:${port}`,
    port,
    requests,
    answer(next) {
      current = next;
    },
    close() {
      closing ??= new Promise<void>((resolve) => {
        for (const res of hanging) res.destroy();
        server.close(() => resolve());
        server.closeAllConnections();
      });
      return closing;
    },
  };
}

/** A gate a recorder's script can wait on (`await held`) until the test calls `release()`. */
export function gate(): { held: Promise<void>; release: () => void } {
  let release!: () => void;
  const held = new Promise<void>((resolve) => (release = resolve));
  return { held, release };
}

