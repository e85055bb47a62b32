import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { silentLogger } from '../../../engine/logger.ts';
import { ConfigWatcher, RELOAD_DEBOUNCE_MS } from '../../../engine/runtime/config-watcher.ts';
import type { Engine } from '../../../engine/runtime/engine.ts';

/** An engine that records what it is asked to reload. */
function recordingEngine() {
  const reloaded: string[] = [];
  const engine = {
    options: { pipelinesDir: '/p/pipelines', schemasDir: '/p/schemas' },
    reloadFile: async (file: string) => void reloaded.push(file),
    reloadSchemas: async () => void reloaded.push('schemas'),
  } as unknown as Engine;
  return { engine, reloaded };
}

describe('ConfigWatcher: debounced reloads', () => {
  beforeEach(() => vi.useFakeTimers());
  afterEach(() => vi.useRealTimers());

  it('waits 250 ms of quiet after the last write: an editor writing a file in steps ~150 ms apart causes one reload', async () => {
    const { engine, reloaded } = recordingEngine();
    const watcher = new ConfigWatcher(engine, silentLogger);
    watcher.notice('/p/pipelines/orders.yaml');
    await vi.advanceTimersByTimeAsync(150);
    watcher.notice('/p/pipelines/orders.yaml');
    await vi.advanceTimersByTimeAsync(150);
    watcher.notice('/p/pipelines/orders.yaml');
    await vi.advanceTimersByTimeAsync(249);
    expect(reloaded).toEqual([]);
    await vi.advanceTimersByTimeAsync(1);
    expect(reloaded).toEqual(['/p/pipelines/orders.yaml']);
    await vi.advanceTimersByTimeAsync(1000);
    expect(reloaded).toHaveLength(1);
  });

  it('debounces per file; schema changes together; other files are ignored', async () => {
    const { engine, reloaded } = recordingEngine();
    const watcher = new ConfigWatcher(engine, silentLogger);
    watcher.notice('/p/pipelines/a.yaml');
    watcher.notice('/p/pipelines/b.yaml');
    watcher.notice('/p/schemas/one.json');
    watcher.notice('/p/schemas/two.yaml');
    watcher.notice('/p/pipelines/a.test.yaml'); // a test file is not a pipeline
    watcher.notice('/p/pipelines/notes.txt');
    watcher.notice('/p/schemas/readme.md');
    watcher.notice('/elsewhere/c.yaml');
    await vi.advanceTimersByTimeAsync(RELOAD_DEBOUNCE_MS);
    expect(reloaded.sort()).toEqual(['/p/pipelines/a.yaml', '/p/pipelines/b.yaml', 'schemas']);
  });

  it('close() cancels the reloads not yet due', async () => {
    const { engine, reloaded } = recordingEngine();
    const watcher = new ConfigWatcher(engine, silentLogger);
    watcher.notice('/p/pipelines/a.yaml');
    await watcher.close();
    await vi.advanceTimersByTimeAsync(RELOAD_DEBOUNCE_MS * 2);
    expect(reloaded).toEqual([]);
  });
});
