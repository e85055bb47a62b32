import type { FastifyPluginAsync } from 'fastify';
import websocket from '@fastify/websocket';
import { WsHub, type HubSocket } from '../ws-hub.ts';
import type { AdminDeps } from '../server.ts';

/**
 * GET /ws: WebSocket clients subscribe with `{"subscribe": CHANNEL, "filter": {...}}` and receive
 * `{channel, message}` for each broadcast. A client is a user through `?token=` (a JWT signed
 * with SYNAPSE_WS_SECRET whose `sub` is the userId), or — only when no secret is set — through
 * `"userId"` in its subscribe message.
 */
export const wsRoutes: FastifyPluginAsync<AdminDeps & { wsSecret?: string }> = async (app, { engine, wsSecret }) => {
  const subscriber = engine.connection.duplicate({ enableAutoPipelining: false });
  subscriber.on('error', () => undefined);
  const hub = new WsHub(subscriber, engine.logger.child({ component: 'ws' }), wsSecret);
  await hub.start();
  app.decorate('wsHub', hub);
  app.addHook('onClose', async () => hub.close());
  await app.register(websocket, { options: { maxPayload: 64 * 1024 } });

  app.get<{ Querystring: { token?: string } }>('/ws', {
    websocket: true,
    schema: {
      tags: ['broadcast'], summary: 'WebSocket: subscribe to broadcast channels',
      querystring: { type: 'object', properties: { token: { type: 'string', description: 'JWT (HS256, SYNAPSE_WS_SECRET) whose sub is the userId.' } } },
    },
  }, async (socket, req) => {
    let userId: string | undefined;
    try {
      userId = await hub.userFromToken(req.query.token);
    } catch (err) {
      socket.close(4401, `invalid token: ${(err as Error).message}`.slice(0, 120));
      return;
    }
    hub.add(socket as unknown as HubSocket, userId);
  });
};

declare module 'fastify' {
  interface FastifyInstance {
    wsHub?: WsHub;
  }
}
