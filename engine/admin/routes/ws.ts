import type { FastifyPluginAsync } from 'fastify';
import websocket from '@fastify/websocket';
import { WsHub, wsLimitsFromEnv, type HubSocket, type WsIdentity, type WsLimits } from '../ws-hub.ts';
import type { AdminDeps } from '../server.ts';
import { duplicateConnection } from '../../runtime/redis-client.ts';
import { errorMessage } from '../../errors.ts';

/**
 * GET /ws: WebSocket clients subscribe with `{"subscribe": CHANNEL, "filter": {...}}` and receive
 * `{channel, message}` for each broadcast. A client is a user through `?token=` (a JWT signed
 * with SYNAPSE_WS_SECRET whose `sub` is the userId), or — only when no secret is set — through
 * `"userId"` in its subscribe message. Private channels (SYNAPSE_WS_PRIVATE_CHANNELS, default
 * `ops`) need the admin token or a JWT whose `channels` claim names them.
 */
export const wsRoutes: FastifyPluginAsync<AdminDeps & { wsSecret?: string; adminToken?: string; wsLimits?: Partial<WsLimits> }> = async (app, { engine, wsSecret, adminToken, wsLimits, refusals }) => {
  const subscriber = duplicateConnection(engine.connection, { enableAutoPipelining: false });
  subscriber.on('error', () => undefined);
  const privateChannels = (process.env.SYNAPSE_WS_PRIVATE_CHANNELS ?? 'ops').split(',').map((c) => c.trim()).filter(Boolean);
  const hub = new WsHub(subscriber, engine.logger.child({ component: 'ws' }), wsSecret, {
    adminToken, privateChannels, limits: { ...wsLimitsFromEnv(), ...wsLimits }, refusals, metrics: engine.metrics,
  });
  const subscribed = hub.start();
  let closed = false;
  app.decorate('wsHub', hub);
  app.addHook('onClose', async () => {
    closed = true;
    await hub.close();
  });
  // With Redis there, broadcasts reach clients from the moment the API listens. With Redis away
  // the API comes up without waiting for it (GET /ready says so), and the subscription follows
  // once Redis is back (a refusal then is logged; closing first drops it quietly).
  if (engine.connection.status === 'ready') await subscribed;
  else subscribed.catch((err: unknown) => {
    if (!closed) engine.logger.warn({ err: errorMessage(err) }, 'broadcasts cannot reach WebSocket clients: Redis refused the subscription');
  });
  await app.register(websocket, { options: { maxPayload: 64 * 1024 } });

  app.get<{ Querystring: { token?: string; access_token?: string } }>('/ws', {
    websocket: true,
    // Before the upgrade: a refused client gets an HTTP answer and costs no WebSocket.
    preValidation: async (req, reply) => {
      const why = hub.admit(req.ip);
      if (why) await reply.code(429).send({ error: 'too_many_connections', message: why });
    },
    schema: {
      tags: ['broadcast'], summary: 'WebSocket: subscribe to broadcast channels',
      querystring: {
        type: 'object',
        properties: {
          token: { type: 'string', description: 'JWT (HS256, SYNAPSE_WS_SECRET) whose sub is the userId; a `channels` claim opens private channels.' },
          access_token: { type: 'string', description: 'The admin token: every channel, private ones included.' },
        },
      },
    },
  }, async (socket, req) => {
    let identity: WsIdentity;
    try {
      const header = req.headers.authorization?.startsWith('Bearer ') ? req.headers.authorization.slice(7) : undefined;
      identity = await hub.identify(req.query.token, req.query.access_token ?? header);
    } catch (err) {
      socket.close(4401, `invalid token: ${(err as Error).message}`.slice(0, 120));
      return;
    }
    hub.add(socket as unknown as HubSocket, identity, req.ip);
  });
};

declare module 'fastify' {
  interface FastifyInstance {
    wsHub?: WsHub;
  }
}
