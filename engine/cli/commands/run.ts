import { createLogger } from '../../logger.ts';
import { Engine } from '../../runtime/engine.ts';
import { pipelinesDir, schemasDir, type CommonOptions } from '../context.ts';
import { resolveRunRedis } from '../redis-url.ts';

export interface RunOptions extends CommonOptions {
  pipelines?: string;
  redis?: string;
}

/**
 * `synapse run`: every pipeline against Redis until SIGINT/SIGTERM; then stops reading, settles
 * and acknowledges what is in hand, and exits 0. A second signal exits at once.
 */
export async function runCommand(opts: RunOptions): Promise<number> {
  const logger = createLogger({ fd: 1 });
  const redis = await resolveRunRedis(opts, logger);
  const engine = new Engine({ redisUrl: redis.url, pipelinesDir: pipelinesDir(opts.pipelines), schemasDir: schemasDir(opts), logger });
  let stopping = false;
  const done = new Promise<number>((resolve) => {
    const onSignal = (signal: NodeJS.Signals) => {
      if (stopping) {
        logger.warn({ signal }, 'second signal: exiting now');
        process.exit(1);
      }
      stopping = true;
      logger.info({ signal }, 'stopping: finishing the batches in hand');
      void engine.stop()
        .then(() => redis.owned?.stop())
        .then(() => resolve(0), (err) => {
          logger.error({ err }, 'error while stopping');
          resolve(1);
        });
    };
    process.on('SIGINT', onSignal);
    process.on('SIGTERM', onSignal);
  });
  await engine.start();
  const code = await done;
  logger.flush?.();
  return code;
}
