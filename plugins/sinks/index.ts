import type { SinkDefinition } from '../../engine/plugins/define-sink.ts';
import aggregate from './aggregate.ts';
import broadcast from './broadcast.ts';
import http from './http.ts';
import loadModel from './load-model.ts';
import log from './log.ts';
import notify from './notify.ts';
import publish from './publish.ts';
import queue from './queue.ts';

/** The sinks that ship with Synapse. */
export const builtinSinks: SinkDefinition<any>[] = [aggregate, broadcast, http, loadModel, log, notify, publish, queue];
