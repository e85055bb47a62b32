import { basename, extname, resolve } from 'node:path';
import { watch, type FSWatcher } from 'chokidar';
import type { Logger } from 'pino';
import { isPipelineFile } from '../config/load-pipeline.ts';
import type { Engine } from './engine.ts';

/** Quiet time after the last change to a file before it is reloaded. */
export const RELOAD_DEBOUNCE_MS = 250;

const SCHEMA_EXTENSIONS = new Set(['.json', '.yaml', '.yml']);

/**
 * Watches the pipeline and schema directories and reloads what changed (SPEC §5). Changes are
 * debounced per file, so an editor writing a file in several steps causes one reload of the
 * final content; schema changes are debounced together and reload the pipelines that validate.
 */
export class ConfigWatcher {
  private watcher?: FSWatcher;
  private readonly timers = new Map<string, NodeJS.Timeout>();
  private ready?: Promise<void>;
  /** Schema files changed since the last schema reload was scheduled to run: its cause. */
  private readonly changedSchemas = new Set<string>();

  constructor(private readonly engine: Engine, private readonly logger: Logger, private readonly debounceMs = RELOAD_DEBOUNCE_MS) {}

  /** Starts watching; resolves once the watcher has scanned the directories. */
  start(): Promise<void> {
    const { pipelinesDir, schemasDir } = this.engine.options;
    this.watcher = watch([resolve(pipelinesDir), resolve(schemasDir)], { ignoreInitial: true, depth: 0 });
    this.watcher
      .on('add', (path) => this.notice(path, 'added'))
      .on('change', (path) => this.notice(path, 'changed'))
      .on('unlink', (path) => this.notice(path, 'removed'));
    this.watcher.on('error', (err) => this.logger.warn({ err: String(err) }, 'file watcher error'));
    this.ready = new Promise((r) => this.watcher!.once('ready', () => r()));
    return this.ready;
  }

  /**
   * A file was added, changed or removed: schedules its reload once it has been quiet for the
   * debounce time (a schema: the schemas together). Files of no interest are ignored.
   */
  notice(path: string, change: 'added' | 'changed' | 'removed' = 'changed'): void {
    const abs = resolve(path);
    const pipelines = resolve(this.engine.options.pipelinesDir);
    const schemas = resolve(this.engine.options.schemasDir);
    if (abs.startsWith(schemas + '/') && SCHEMA_EXTENSIONS.has(extname(abs))) {
      this.changedSchemas.add(`${basename(abs)} ${change}`);
      this.schedule('schemas', () => {
        const cause = `schema file ${[...this.changedSchemas].join(', ')}`;
        this.changedSchemas.clear();
        return this.engine.reloadSchemas({ cause });
      });
    } else if (abs.startsWith(pipelines + '/') && isPipelineFile(abs)) {
      this.schedule(abs, () => this.engine.reloadFile(abs, { cause: `file ${change}` }));
    }
  }

  private schedule(key: string, reload: () => Promise<unknown>): void {
    clearTimeout(this.timers.get(key));
    this.timers.set(key, setTimeout(() => {
      this.timers.delete(key);
      reload().catch((err) => this.logger.error({ err, key }, 'reload failed'));
    }, this.debounceMs));
  }

  /** Stops watching. Idempotent. */
  async close(): Promise<void> {
    for (const t of this.timers.values()) clearTimeout(t);
    this.timers.clear();
    await this.watcher?.close();
    this.watcher = undefined;
  }
}
