import type { SinkDefinition } from '../../engine/plugins/define-sink.ts';
import log from './log.ts';
import publish from './publish.ts';

/** The sinks that ship with Synapse. */
export const builtinSinks: SinkDefinition<any>[] = [log, publish];
