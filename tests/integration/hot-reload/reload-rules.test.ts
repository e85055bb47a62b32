import { rm, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { pino } from 'pino';
import { describe, expect, it } from 'vitest';
import { PING_ID, key, metricValue, pingSchema, pipelineYaml, useEngines, type EngineFixture } from '../../helpers/engine.ts';

// What a reload refuses, what it answers and what it logs (engine.reloadFile and reloadSchemas,
// which the file watcher and the admin API call): a second file with a running pipeline's name,
// a second pipeline on a running one's consumer group, a schema directory that does not load.
// Each refusal leaves the running version as it is, and says why.

const { start } = useEngines();

/** An engine whose log lines the test reads. */
async function startLogged(opts: Parameters<typeof start>[0] = {}): Promise<EngineFixture & { lines: Record<string, unknown>[] }> {
  const lines: Record<string, unknown>[] = [];
  const logger = pino({ level: 'debug' }, { write: (line: string) => void lines.push(JSON.parse(line)) });
  return Object.assign(await start({ ...opts, logger }), { lines });
}

const reloads = async (f: EngineFixture, result: 'ok' | 'error') =>
  metricValue(await f.engine.metrics.registry.metrics(), 'synapse_reloads_total', { result }) ?? 0;

describe('what a reload refuses', () => {
  it('a second file with a running pipeline\'s name, on another stream: refused as a duplicate; it loads once the first file is gone', async () => {
    const name = key('p');
    const f = await startLogged({ pipelines: { [name]: pipelineYaml({ name, stream: key('in'), out: key('out') }) } });
    const original = join(f.pipelinesDir, `${name}.yaml`);
    const copy = await f.writePipeline(`${name}-copy`, pipelineYaml({ name, stream: key('other'), out: key('out') }));

    const refused = await f.engine.reloadFile(copy, { cause: 'file changed' });
    expect(refused).toEqual({ ok: false, name: undefined, diagnostics: [{ file: copy, line: 1, col: 1, message: `duplicate pipeline name '${name}', also in ${original}` }] });
    expect(await reloads(f, 'error')).toBe(1);
    expect(f.engine.handles.get(name)!.pipeline.file).toBe(original);
    expect(f.engine.rejected.get(copy)).toEqual(refused.ok ? undefined : refused.diagnostics);
    expect(f.lines.find((l) => String(l.msg).startsWith('reload rejected'))).toMatchObject({
      level: 50, file: copy, cause: 'file changed',
      msg: `reload rejected, the running version stays: ${copy}:1:1 duplicate pipeline name '${name}', also in ${original}`,
    });

    // The first file goes: its pipeline stops, and the copy, refused while that name was taken, loads.
    await rm(original);
    const removed = await f.engine.reloadFile(original, { cause: 'file deleted' });
    expect(removed).toEqual({ ok: true, change: 'removed', name });
    expect(f.lines.find((l) => String(l.msg).startsWith('pipeline file deleted'))).toMatchObject({ level: 30, pipeline: name, file: original, cause: 'file deleted' });
    expect(f.engine.handles.get(name)!.pipeline.file).toBe(copy);
    expect(f.engine.rejected.size).toBe(0);
    expect(f.lines.find((l) => l.msg === 'pipeline added')).toMatchObject({ pipeline: name, cause: `${name} was removed` });
    expect(await reloads(f, 'ok')).toBe(2);

    // A file that is not there and runs nothing: nothing to do.
    expect(await f.engine.reloadFile(join(f.pipelinesDir, 'never.yaml'))).toEqual({ ok: true, change: 'unchanged', name: '' });
  });

  it('a second pipeline on a running one\'s stream and group: refused, naming both; on another group of that stream it loads', async () => {
    const first = key('a');
    const second = key('b');
    const stream = key('in');
    const f = await startLogged({ pipelines: { [first]: pipelineYaml({ name: first, stream, out: key('out') }) } });
    const shared = await f.writePipeline(second, pipelineYaml({ name: second, stream, out: key('out') }).replace('source:\n', `source:\n  group: ${first}\n`));
    const refused = await f.engine.reloadFile(shared);
    expect(refused).toEqual({ ok: false, name: undefined, diagnostics: [{ file: shared, line: 1, col: 1,
      message: `pipelines '${second}' and '${first}' all read stream '${stream}' through group '${first}': each would see only part of the stream; give each its own source.group` }] });
    expect(f.engine.handles.has(second)).toBe(false);
    expect(f.engine.rejected.has(shared)).toBe(true);

    // Its own group (the default: its name) reads the same stream side by side.
    await writeFile(shared, pipelineYaml({ name: second, stream, out: key('out') }));
    expect(await f.engine.reloadFile(shared)).toMatchObject({ ok: true, change: 'added', name: second, generation: 1 });
    // And a group of the same name on another stream is another group.
    const third = key('c');
    const elsewhere = await f.writePipeline(third, pipelineYaml({ name: third, stream: key('elsewhere'), out: key('out') }).replace('source:\n', `source:\n  group: ${first}\n`));
    expect(await f.engine.reloadFile(elsewhere)).toMatchObject({ ok: true, change: 'added', name: third });
  });
});

describe('what a reload answers and logs', () => {
  it('an unchanged file reloads nothing and clears a refused edit\'s error; a changed one is logged with its generation, hash, cause and time', async () => {
    const name = key('p');
    const stream = key('in');
    const yaml = pipelineYaml({ name, stream, out: key('out') });
    const f = await startLogged({ pipelines: { [name]: yaml } });
    const file = join(f.pipelinesDir, `${name}.yaml`);
    const hash = f.engine.handles.get(name)!.pipeline.hash;

    await writeFile(file, `${yaml}colour: red\nsize: 3\n`); // two unknown keys: two errors, one line each
    expect(await f.engine.reloadFile(file)).toMatchObject({ ok: false, name });
    const lines = f.engine.handles.get(name)!.lastReloadError!.split('\n');
    expect(lines).toHaveLength(2);
    for (const line of lines) expect(line).toMatch(new RegExp(`^${file}:\\d+:\\d+ unknown key`));
    expect(f.lines.find((l) => String(l.msg).startsWith('reload rejected'))).toMatchObject({ file, pipeline: name, cause: 'requested' });

    // Back to what runs: nothing is swapped, and the refused edit's error is gone.
    await writeFile(file, yaml);
    expect(await f.engine.reloadFile(file, { cause: 'file changed' })).toEqual({ ok: true, change: 'unchanged', name, generation: 1, hash });
    expect(f.engine.handles.get(name)!.lastReloadError).toBeUndefined();
    expect(f.lines.find((l) => l.msg === 'pipeline file unchanged: nothing reloaded')).toMatchObject({ level: 20, pipeline: name, cause: 'file changed' });

    // Changed: a new generation, logged with what an operator needs to match it with GET /pipelines.
    await writeFile(file, pipelineYaml({ name, stream, out: key('out2') }));
    const before = performance.now();
    const updated = await f.engine.reloadFile(file, { cause: 'file changed' });
    const took = performance.now() - before;
    expect(updated).toEqual({ ok: true, change: 'updated', name, generation: 2, hash: f.engine.handles.get(name)!.pipeline.hash });
    expect(updated.ok && updated.hash).not.toBe(hash);
    const line = f.lines.find((l) => l.msg === 'pipeline reloaded')!;
    expect(line).toMatchObject({ level: 30, pipeline: name, generation: 2, hash: f.engine.handles.get(name)!.pipeline.hash.slice(0, 12), cause: 'file changed' });
    // How long it took, in milliseconds to a tenth: within the time the call took.
    expect(line.ms).toEqual(expect.any(Number));
    expect(Number(line.ms)).toBeGreaterThan(0);
    expect(Math.round(Number(line.ms) * 10)).toBe(Number(line.ms) * 10);
    expect(Number(line.ms)).toBeLessThanOrEqual(Math.round(took * 10) / 10 + 0.1);
  });

  it('a schema directory that does not load keeps the running schemas; the validating pipelines show why until a good load', async () => {
    const checked = key('checked');
    const unchecked = key('unchecked');
    const f = await startLogged({ pipelines: {
      [checked]: pipelineYaml({ name: checked, stream: key('in'), out: key('out') }),
      [unchecked]: pipelineYaml({ name: unchecked, stream: key('in2'), out: key('out'), validate: false }),
    } });
    // A refused edit of the unchecked pipeline's own file: its error is not the schemas' to clear.
    const uncheckedFile = join(f.pipelinesDir, `${unchecked}.yaml`);
    await writeFile(uncheckedFile, 'name: [broken\n');
    expect((await f.engine.reloadFile(uncheckedFile)).ok).toBe(false);
    const ownError = f.engine.handles.get(unchecked)!.lastReloadError;
    expect(ownError).toEqual(expect.any(String));

    await f.writeSchema('broken.json', '{ not json');
    await f.writeSchema('broken2.json', '{ not json either');
    const [refused, ...more] = await f.engine.reloadSchemas({ cause: 'schema changed: broken.json' });
    expect(more).toEqual([]);
    expect(refused).toMatchObject({ ok: false, diagnostics: [expect.objectContaining({ file: join(f.schemasDir, 'broken.json') }), expect.objectContaining({ file: join(f.schemasDir, 'broken2.json') })] });
    expect(await reloads(f, 'error')).toBe(2);
    // One line per broken schema.
    const why = f.engine.handles.get(checked)!.lastReloadError!.split('\n');
    expect(why).toHaveLength(2);
    expect(why[0]).toMatch(new RegExp(`^${join(f.schemasDir, 'broken.json')}:\\d+:\\d+ `));
    expect(why[1]).toMatch(new RegExp(`^${join(f.schemasDir, 'broken2.json')}:\\d+:\\d+ `));
    expect(f.engine.handles.get(unchecked)!.lastReloadError).toBe(ownError);
    expect(f.lines.find((l) => String(l.msg).startsWith('schema reload rejected'))).toMatchObject({ level: 50, cause: 'schema changed: broken.json' });
    // The running schemas stay: the pipeline still validates with them.
    expect(f.engine.loadContext.schemas.fingerprint(PING_ID)).toEqual(expect.any(String));

    // A good load clears the error from every pipeline that still shows it, though none is reloaded.
    await rm(join(f.schemasDir, 'broken.json'));
    await rm(join(f.schemasDir, 'broken2.json'));
    expect(await f.engine.reloadSchemas({ cause: 'schema removed: broken.json' })).toEqual([]);
    expect(f.engine.handles.get(checked)!.lastReloadError).toBeUndefined();
    expect(f.engine.handles.get(unchecked)!.lastReloadError).toBe(ownError);
    expect(f.lines.find((l) => l.msg === 'schemas reloaded: no pipeline uses a changed schema')).toMatchObject({ cause: 'schema removed: broken.json', reloading: [], retrying: 0, untouched: 2 });

    // A changed schema reloads the pipeline that validates with it, and only that one.
    await f.writeSchema('ping.json', pingSchema({ requireTag: true }));
    const results = await f.engine.reloadSchemas();
    expect(results).toEqual([expect.objectContaining({ ok: true, change: 'updated', name: checked, generation: 2 })]);
    expect(f.lines.find((l) => l.msg === 'schemas reloaded: 1 pipeline(s) use a changed schema')).toMatchObject({ cause: 'schemas changed', reloading: [checked], retrying: 0, untouched: 1 });
  });

  it('a schema named by its file beside the pipeline is reloaded on every schema reload (the schema directory does not hold it)', async () => {
    const name = key('p');
    const g = await start({ schemas: {} });
    const file = await g.writePipeline(name, pipelineYaml({ name, stream: key('in'), out: key('out') }).replace(PING_ID, './local-ping.json'));
    await writeFile(join(g.pipelinesDir, 'local-ping.json'), JSON.stringify({ ...pingSchema(), $id: 'https://synapse.test/local-ping.json' }));
    expect(await g.engine.reloadFile(file)).toMatchObject({ ok: true, change: 'added', name });
    await writeFile(join(g.pipelinesDir, 'local-ping.json'), JSON.stringify({ ...pingSchema({ requireTag: true }), $id: 'https://synapse.test/local-ping.json' }));
    expect(await g.engine.reloadSchemas()).toEqual([expect.objectContaining({ ok: true, change: 'updated', name, generation: 2 })]);
  });

  it('a reload that comes once the engine is stopping does nothing', async () => {
    const name = key('p');
    const f = await start({ pipelines: { [name]: pipelineYaml({ name, stream: key('in'), out: key('out') }) } });
    const file = join(f.pipelinesDir, `${name}.yaml`);
    await writeFile(file, pipelineYaml({ name, stream: key('in'), out: key('other') }));
    await f.engine.stop();
    expect(await f.engine.reloadFile(file)).toEqual({ ok: false, diagnostics: [] });
    expect(f.engine.handles.get(name)!.generation).toBe(1);
  });
});
