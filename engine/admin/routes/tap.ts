import type { FastifyPluginAsync } from 'fastify';
import type { CompiledPipeline } from '../../config/load-pipeline.ts';
import type { Outcome } from '../../runner/pipeline-runner.ts';
import { traceOutcome, type Trace } from '../../runner/trace.ts';
import { errorReply, nameParam } from '../schemas.ts';
import { didYouMean } from '../../config/did-you-mean.ts';
import type { AdminDeps } from '../server.ts';

const HEARTBEAT_MS = 15_000;
/** Longest event or output a trace carries as JSON text; a longer one comes cut, as text (`eventCut`/`valueCut`: its full length). */
export const TAP_MAX_VALUE_CHARS = 4096;

/**
 * A trace as its `data:` line: an event or output over TAP_MAX_VALUE_CHARS (as JSON) comes as the
 * first characters of its JSON text, with its full length in `eventCut`/`valueCut`. Huge events
 * would otherwise fill the socket (dropping the traces behind them) and the console's page.
 */
export function traceData(t: Trace): string {
  const cut = (key: 'event' | 'value') => {
    if (t[key] === undefined) return {};
    const text = JSON.stringify(t[key]);
    return text.length <= TAP_MAX_VALUE_CHARS ? {} : { [key]: text.slice(0, TAP_MAX_VALUE_CHARS), [`${key}Cut`]: text.length };
  };
  return JSON.stringify({ ...t, ...cut('event'), ...cut('value') });
}

/**
 * GET /tap/:pipeline: server-sent events, one `trace` event per entry the pipeline settles,
 * showing its path through the stages and why it was filtered or rejected. A client that
 * cannot keep up misses events (counted in `dropped` comments) instead of slowing the pipeline.
 */
export const tapRoutes: FastifyPluginAsync<AdminDeps> = async (app, { engine }) => {
  app.get<{ Params: { name: string } }>('/tap/:name', {
    schema: {
      tags: ['pipelines'], summary: "Live trace of each event's path through the pipeline (text/event-stream)",
      params: nameParam, produces: ['text/event-stream'], response: { 404: errorReply },
    },
  }, async (req, reply) => {
    const { name } = req.params;
    if (!engine.handles.has(name)) return reply.code(404).send({ error: 'not_found', message: `no pipeline '${name}'${didYouMean(name, engine.handles.keys())}` });
    reply.hijack();
    const res = reply.raw;
    res.writeHead(200, { 'content-type': 'text/event-stream', 'cache-control': 'no-cache', connection: 'keep-alive', 'x-accel-buffering': 'no' });
    res.write(`: tap on ${name}\n\n`);
    let dropped = 0;
    const onSettled = (pipeline: string, outcomes: Outcome[], compiled: CompiledPipeline) => {
      if (pipeline !== name) return;
      for (const o of outcomes) {
        if (res.writableNeedDrain) {
          dropped++;
          continue;
        }
        let data: string;
        try {
          data = traceData(traceOutcome(compiled, o));
        } catch {
          // An event JSON cannot write (nested too deep): never an error thrown into the engine's emit.
          dropped++;
          continue;
        }
        res.write(`event: trace\nid: ${o.id}\ndata: ${data}\n\n`);
      }
    };
    const heartbeat = setInterval(() => res.write(`: alive${dropped ? `, dropped ${dropped}` : ''}\n\n`), HEARTBEAT_MS);
    engine.on('settled', onSettled);
    const close = () => {
      clearInterval(heartbeat);
      engine.off('settled', onSettled);
    };
    req.raw.on('close', close);
    res.on('error', close);
  });
};
