import { mkdir, mkdtemp, rm, unlink, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { silentLogger } from '../../../engine/logger.ts';
import { ConfigWatcher, RELOAD_DEBOUNCE_MS } from '../../../engine/runtime/config-watcher.ts';
import type { Engine } from '../../../engine/runtime/engine.ts';

/** An engine that records what it is asked to reload, and why. */
function recordingEngine(dirs = { pipelinesDir: '/p/pipelines', schemasDir: '/p/schemas' }) {
  const reloaded: string[] = [];
  const causes: string[] = [];
  const engine = {
    options: dirs,
    reloadFile: async (file: string, opts: { cause: string }) => {
      reloaded.push(file);
      causes.push(opts.cause);
    },
    reloadSchemas: async (opts: { cause: string }) => {
      reloaded.push('schemas');
      causes.push(opts.cause);
    },
  } as unknown as Engine;
  return { engine, reloaded, causes };
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

  it('says why: the file and what happened to it; the schema files of one reload together', async () => {
    const { engine, causes } = recordingEngine();
    const watcher = new ConfigWatcher(engine, silentLogger);
    watcher.notice('/p/pipelines/a.yaml', 'added');
    watcher.notice('/p/pipelines/b.yaml', 'removed');
    watcher.notice('/p/pipelines/c.yaml');
    watcher.notice('/p/schemas/one.json', 'changed');
    watcher.notice('/p/schemas/two.yaml', 'added');
    watcher.notice('/p/schemas/three.yml', 'removed');
    await vi.advanceTimersByTimeAsync(RELOAD_DEBOUNCE_MS);
    expect(causes.sort()).toEqual(['file added', 'file changed', 'file removed', 'schema file one.json changed, two.yaml added, three.yml removed']);
  });

  it('a directory whose name starts with the other\'s is not taken for it', async () => {
    const { engine, reloaded } = recordingEngine({ pipelinesDir: '/p/s-pipelines', schemasDir: '/p/s' });
    const watcher = new ConfigWatcher(engine, silentLogger);
    watcher.notice('/p/s-pipelines/a.yaml'); // a pipeline, not a schema under /p/s
    watcher.notice('/p/s-pipelines-old/b.yaml'); // neither
    watcher.notice('/p/s2/c.json'); // neither
    await vi.advanceTimersByTimeAsync(RELOAD_DEBOUNCE_MS);
    expect(reloaded).toEqual(['/p/s-pipelines/a.yaml']);
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

describe('ConfigWatcher on real directories', () => {
  let root = '';
  afterEach(async () => {
    if (root) await rm(root, { recursive: true, force: true });
  });

  it('reloads files added, changed and removed after it started, in the directories themselves only', async () => {
    root = await mkdtemp(join(tmpdir(), 'synapse-watch-'));
    const dirs = { pipelinesDir: join(root, 'pipelines'), schemasDir: join(root, 'schemas') };
    await mkdir(join(dirs.pipelinesDir, 'drafts'), { recursive: true });
    await mkdir(dirs.schemasDir);
    await writeFile(join(dirs.pipelinesDir, 'before.yaml'), 'name: before\n'); // loaded by the engine's start, not reloaded
    const { engine, reloaded, causes } = recordingEngine(dirs);
    const watcher = new ConfigWatcher(engine, silentLogger, 20);
    await watcher.start();
    try {
      await writeFile(join(dirs.pipelinesDir, 'drafts', 'draft.yaml'), 'name: draft\n'); // a subdirectory: not a pipeline
      await writeFile(join(dirs.pipelinesDir, 'after.yaml'), 'name: after\n');
      const after = join(dirs.pipelinesDir, 'after.yaml');
      await vi.waitFor(() => expect(reloaded).toContain(after), { timeout: 5000 });
      // Once more, so that the draft, written first, has had every chance to be seen.
      await writeFile(after, 'name: after\n# edited\n');
      await vi.waitFor(() => expect(reloaded).toHaveLength(2), { timeout: 5000 });
      expect(reloaded).toEqual([after, after]);
      await unlink(after);
      await vi.waitFor(() => expect(reloaded).toHaveLength(3), { timeout: 5000 });
      expect(causes).toEqual(['file added', 'file changed', 'file removed']);
    } finally {
      await watcher.close();
    }
  });
});
