import { rename, unlink, writeFile } from 'node:fs/promises';
import { setTimeout as delay } from 'node:timers/promises';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import {
  entries, groupsOf, key, metricValue, payloads, PING_ID, ping, pingSchema, pipelineYaml, publish, sha256, startEngine,
  type EngineFixture,
} from '../../helpers/engine.ts';
import { gate, startHttpRecorder } from '../../helpers/http-recorder.ts';
import { startTestRedis, waitFor, type TestRedis } from '../../helpers/redis.ts';

let redis: TestRedis;
let open: EngineFixture[] = [];
let producers: Producer[] = [];

beforeAll(async () => {
  redis = await startTestRedis();
});
afterEach(async () => {
  for (const p of producers.splice(0)) p.stop();
  await Promise.all(open.splice(0).map((f) => f.close()));
});
afterAll(async () => {
  await redis?.close();
});

async function start(opts: Parameters<typeof startEngine>[0]): Promise<EngineFixture> {
  const f = await startEngine({ redis, watch: true, ...opts });
  open.push(f);
  return f;
}

interface Producer {
  /** Events XADDed so far. */
  produced(): number;
  /** Lets the producer write `n` more events than it was allowed so far. */
  allow(n: number): void;
  /** Lets the producer write all it has left. */
  release(): void;
  /** Resolves once all `total` are written. */
  done: Promise<void>;
  stop(): void;
}

/**
 * A steady, bounded load: `total` ping events (n = 0, 1, ...) in small chunks with a small pause
 * between them. It writes no further than it is allowed (`allowed`, then `allow(n)` more), so a
 * test can be sure events keep arriving before and after each of its edits, however fast or slow
 * the machine is.
 */
function produce(f: EngineFixture, stream: string, total: number, opts: { chunk?: number; pauseMs?: number; allowed?: number } = {}): Producer {
  const chunk = opts.chunk ?? 10;
  let produced = 0;
  let allowed = Math.min(total, opts.allowed ?? total);
  let stopped = false;
  let wake: (() => void) | undefined;
  const done = (async () => {
    while (produced < total && !stopped) {
      if (produced >= allowed) {
        await new Promise<void>((r) => (wake = r));
        continue;
      }
      const n = Math.min(chunk, allowed - produced);
      await publish(f.client, stream, Array.from({ length: n }, (_, i) => ping(produced + i)));
      produced += n;
      await delay(opts.pauseMs ?? 3);
    }
  })();
  const p: Producer = {
    produced: () => produced,
    allow(n) {
      allowed = Math.min(total, allowed + n);
      wake?.();
    },
    release() {
      allowed = total;
      wake?.();
    },
    done,
    stop() {
      stopped = true;
      wake?.();
    },
  };
  producers.push(p);
  return p;
}

/** The pipeline under reload: every ping through, as `{ n, version }`. */
function versioned(p: { name: string; stream: string; out: string }, version: number): string {
  return pipelineYaml({ ...p, filter: 'true', transform: `{ "n": data.n, "version": ${version} }`, batch: 50, blockMs: 100 });
}

async function reloads(f: EngineFixture): Promise<{ ok: number; error: number }> {
  const text = await f.engine.metrics.registry.metrics();
  return { ok: metricValue(text, 'synapse_reloads_total', { result: 'ok' }) ?? 0, error: metricValue(text, 'synapse_reloads_total', { result: 'error' }) ?? 0 };
}

/** Waits until the pipeline's group has read and acknowledged everything in its stream. */
async function drained(f: EngineFixture, stream: string, group: string) {
  await waitFor(async () => {
    const g = (await groupsOf(f.client, stream)).find((x) => x.name === group);
    return g && Number(g.lag) === 0 && Number(g.pending) === 0;
  }, `${group} to drain ${stream}`, 30_000);
}

/** Every output exactly once, in versions that never go back. */
function expectExactlyOnceInOrder(out: { n: number; version: number }[], total: number, versions: number[]) {
  expect(out).toHaveLength(total);
  const ns = out.map((o) => o.n);
  expect(new Set(ns).size).toBe(total);
  expect([...ns].sort((a, b) => a - b)).toEqual(Array.from({ length: total }, (_, i) => i));
  const seen = out.map((o) => o.version);
  for (let i = 1; i < seen.length; i++) if (seen[i]! < seen[i - 1]!) throw new Error(`version went back from ${seen[i - 1]} to ${seen[i]} at output ${i} (n=${out[i]!.n})`);
  expect([...new Set(seen)]).toEqual(versions);
}

describe('hot reload under load (Engine + ConfigWatcher)', () => {
  it('swaps versions while events flow: every event out exactly once, each version after its swap', async () => {
    const p = { name: key('hr'), stream: key('in'), out: key('out') };
    const f = await start({ pipelines: { [p.name]: versioned(p, 1) } });
    const TOTAL = 3000;
    const load = produce(f, p.stream, TOTAL, { allowed: 300 });
    await waitFor(() => load.produced() >= 300, 'the load to get going');

    for (const version of [2, 3, 4]) {
      const text = versioned(p, version);
      // Events keep coming while the edit is noticed, debounced, compiled and swapped in.
      load.allow(700);
      await writeFile(f.engine.handles.get(p.name)!.pipeline.file, text);
      await waitFor(() => f.engine.handles.get(p.name)?.pipeline.hash === sha256(text), `version ${version} to be swapped in`);
      expect(f.engine.handles.get(p.name)!.generation).toBe(version);
      // And some after the swap: they come out in the new version.
      load.allow(50);
      await waitFor(async () => (await payloads<{ version: number }>(f.client, p.out)).some((o) => o.version === version), `outputs of version ${version}`);
    }
    expect(load.produced()).toBeLessThan(TOTAL);
    const afterLastSwap = TOTAL - 300 - 3 * 750;
    load.release();
    await load.done;
    await drained(f, p.stream, p.name);

    const out = await payloads<{ n: number; version: number }>(f.client, p.out);
    expectExactlyOnceInOrder(out, TOTAL, [1, 2, 3, 4]);
    // Everything produced after the last swap carries the last version.
    expect(out.slice(-afterLastSwap).every((o) => o.version === 4)).toBe(true);
    expect(await f.client.exists(`${p.stream}:dlq`)).toBe(0);
    expect(f.engine.handles.get(p.name)!.counters).toEqual({ sunk: TOTAL, filtered: 0, dlq: 0, dropped: 0 });
    expect(metricValue(await f.engine.metrics.registry.metrics(), 'synapse_events_total', { pipeline: p.name, outcome: 'sunk' })).toBe(TOTAL);
    expect(await reloads(f)).toEqual({ ok: 3, error: 0 });
  });

  it('an invalid edit during load keeps the old version running and says where the error is', async () => {
    const p = { name: key('hr'), stream: key('in'), out: key('out') };
    const v1 = versioned(p, 1);
    const f = await start({ pipelines: { [p.name]: v1 } });
    const TOTAL = 1500;
    const load = produce(f, p.stream, TOTAL, { allowed: 200 });
    await waitFor(() => load.produced() >= 200, 'the load to get going');
    load.allow(400);

    // A transform whose `}` has no value before it.
    const broken = v1.replace(/^transform: .*$/m, `transform: '{ "n": data.n, "version": }'`);
    const line = broken.split('\n').findIndex((l) => l.startsWith('transform:')) + 1;
    const col = broken.split('\n')[line - 1]!.lastIndexOf('}') + 1;
    const file = f.engine.handles.get(p.name)!.pipeline.file;
    await writeFile(file, broken);
    const view = await waitFor(async () => {
      const v = JSON.parse((await f.inject({ method: 'GET', url: `/pipelines/${p.name}` })).body);
      return v.lastReloadError && v;
    }, 'lastReloadError');
    expect(view.lastReloadError).toMatch(new RegExp(`${p.name}\\.yaml:${line}:${col} transform: invalid JSONata`));
    expect(view).toMatchObject({ status: 'running', generation: 1, hash: sha256(v1), fileHash: sha256(broken) });
    expect(await reloads(f)).toEqual({ ok: 0, error: 1 });

    // Outputs keep flowing, from the old version.
    const before = await f.client.xlen(p.out);
    load.allow(300);
    await waitFor(async () => (await f.client.xlen(p.out)) >= before + 100, 'outputs to keep flowing');
    expect((await payloads<{ version: number }>(f.client, p.out)).every((o) => o.version === 1)).toBe(true);

    // A good edit then goes in and clears the error.
    const v2 = versioned(p, 2);
    await writeFile(file, v2);
    await waitFor(() => f.engine.handles.get(p.name)?.pipeline.hash === sha256(v2), 'version 2');
    const after = JSON.parse((await f.inject({ method: 'GET', url: `/pipelines/${p.name}` })).body);
    expect(after).toMatchObject({ generation: 2, lastReloadError: null, fileHash: sha256(v2) });
    load.release();
    await load.done;
    await drained(f, p.stream, p.name);
    expectExactlyOnceInOrder(await payloads(f.client, p.out), TOTAL, [1, 2]);
    expect(await reloads(f)).toEqual({ ok: 1, error: 1 });
  });

  it('a quiet pipeline takes a reload at once, before its first batch and after one, without waiting for its read to end', async () => {
    // block_ms 60000: a swap that waited for the blocking read would not happen before an entry came.
    const p = { name: key('hr'), stream: key('in'), out: key('out') };
    const quiet = (version: number) => pipelineYaml({ ...p, filter: 'true', transform: `{ "n": data.n, "version": ${version} }`, blockMs: 60_000 });
    const f = await start({ pipelines: { [p.name]: quiet(1) } });
    const file = f.engine.handles.get(p.name)!.pipeline.file;

    await writeFile(file, quiet(2));
    await waitFor(() => f.engine.handles.get(p.name)?.pipeline.hash === sha256(quiet(2)), 'version 2, with nothing read yet', 10_000);
    await publish(f.client, p.stream, [ping(1)]);
    await waitFor(async () => (await f.client.xlen(p.out)) === 1, 'the first output');

    await writeFile(file, quiet(3));
    await waitFor(() => f.engine.handles.get(p.name)?.pipeline.hash === sha256(quiet(3)), 'version 3, after a batch', 10_000);
    await publish(f.client, p.stream, [ping(2)]);
    await waitFor(async () => (await f.client.xlen(p.out)) === 2, 'the second output');
    expect(await payloads(f.client, p.out)).toEqual([{ n: 1, version: 2 }, { n: 2, version: 3 }]);
  });

  it('a reload during a batch waits for it: the batch in hand settles with the version that ran it', async () => {
    // The webhook holds the first request until released, then every request fails for good: the
    // event goes to the DLQ of the version that ran it (each version names its own DLQ).
    const { held, release } = gate();
    const hook = await startHttpRecorder(async (req) => {
      if (req.n === 1) await held;
      return { status: 500, body: { error: 'down' } };
    });
    try {
      const p = { name: key('hr'), stream: key('in') };
      const version = (v: number) => [
        `name: ${p.name}`,
        'source:',
        `  stream: ${p.stream}`,
        '  start: "0"',
        '  block_ms: 100',
        `dlq: ${p.stream}:dlq-v${v}`,
        'sink:',
        '  type: http',
        `  with: { url: "${hook.url}/v${v}" }`,
        'retry: { attempts: 1, backoff: fixed, delay_ms: 5 }',
        '',
      ].join('\n');
      const f = await start({ pipelines: { [p.name]: version(1) }, watch: false });
      await publish(f.client, p.stream, [ping(1)]);
      await waitFor(() => hook.requests.length === 1, 'the held request');

      await writeFile(f.engine.handles.get(p.name)!.pipeline.file, version(2));
      let swapped = false;
      const reload = f.engine.reloadFile(f.engine.handles.get(p.name)!.pipeline.file).then((r) => {
        swapped = true;
        return r;
      });
      // Time to compile version 2 and ask for the swap; the swap waits for the batch in hand.
      await delay(500);
      expect(swapped).toBe(false);
      release();
      expect(await reload).toMatchObject({ ok: true });
      expect(f.engine.handles.get(p.name)!.generation).toBe(2);
      await waitFor(async () => (await f.client.xlen(`${p.stream}:dlq-v1`)) === 1, 'the DLQ entry of version 1');
      expect(await f.client.exists(`${p.stream}:dlq-v2`)).toBe(0);

      await publish(f.client, p.stream, [ping(2)]);
      await waitFor(async () => (await f.client.xlen(`${p.stream}:dlq-v2`)) === 1, 'the DLQ entry of version 2');
      expect(hook.requests.map((r) => r.url)).toEqual(['/v1', '/v2']);
      expect(await f.client.xlen(`${p.stream}:dlq-v1`)).toBe(1);
    } finally {
      release();
      await hook.close();
    }
  });

  it('five quick writes end in one reload of the final content', async () => {
    const p = { name: key('hr'), stream: key('in'), out: key('out') };
    const f = await start({ pipelines: { [p.name]: versioned(p, 1) } });
    const file = f.engine.handles.get(p.name)!.pipeline.file;
    const final = versioned(p, 14);
    for (const version of [10, 11, 12, 13]) {
      await writeFile(file, versioned(p, version));
      await delay(10);
    }
    await writeFile(file, final);
    await waitFor(() => f.engine.handles.get(p.name)?.pipeline.hash === sha256(final), 'the final content to be loaded');
    expect(f.engine.handles.get(p.name)!.generation).toBe(2);
    expect(await reloads(f)).toEqual({ ok: 1, error: 0 });
    await publish(f.client, p.stream, [ping(1)]);
    await waitFor(async () => (await f.client.xlen(p.out)) === 1, 'an output');
    expect(await payloads(f.client, p.out)).toEqual([{ n: 1, version: 14 }]);
  });

  it('a deleted file stops its pipeline and keeps its consumer group; putting it back resumes where it was', async () => {
    const p = { name: key('hr'), stream: key('in'), out: key('out') };
    const text = versioned(p, 1);
    const f = await start({ pipelines: { [p.name]: text } });
    await publish(f.client, p.stream, [ping(1)]);
    await waitFor(async () => (await f.client.xlen(p.out)) === 1, 'the first output');

    const file = f.engine.handles.get(p.name)!.pipeline.file;
    await unlink(file);
    // The handle goes first; the reload is counted once its consumer has stopped.
    await waitFor(async () => !f.engine.handles.has(p.name) && (await reloads(f)).ok === 1, 'the pipeline to stop');
    expect((await f.inject({ method: 'GET', url: `/pipelines/${p.name}` })).statusCode).toBe(404);
    expect(await reloads(f)).toEqual({ ok: 1, error: 0 });
    expect(metricValue(await f.engine.metrics.registry.metrics(), 'synapse_pipeline_up', { pipeline: p.name })).toBe(0);
    const group = (await groupsOf(f.client, p.stream)).find((g) => g.name === p.name);
    expect(group).toMatchObject({ name: p.name, pending: 0, lag: 0 });

    // Nobody reads for it now: what arrives waits in the group.
    await publish(f.client, p.stream, [ping(2), ping(3)]);
    expect((await groupsOf(f.client, p.stream)).find((g) => g.name === p.name)).toMatchObject({ lag: 2, 'last-delivered-id': group!['last-delivered-id'] });

    await writeFile(file, text);
    await waitFor(() => f.engine.handles.get(p.name)?.status === 'running', 'the pipeline to start again');
    await drained(f, p.stream, p.name);
    expect(await payloads(f.client, p.out)).toEqual([{ n: 1, version: 1 }, { n: 2, version: 1 }, { n: 3, version: 1 }]);
  });

  it('a schema change reloads the pipelines that validate with it', async () => {
    const v = { name: key('validating'), stream: key('in'), out: key('out') };
    const n = { name: key('plain'), stream: key('in'), out: key('out') };
    const f = await start({
      pipelines: {
        [v.name]: pipelineYaml({ ...v, filter: 'true' }),
        [n.name]: pipelineYaml({ ...n, validate: false, filter: 'true' }),
      },
    });
    await publish(f.client, v.stream, [ping(1)]);
    await waitFor(async () => (await f.client.xlen(v.out)) === 1, 'an untagged ping to pass');

    // Tighten: data.tag is now required.
    await f.writeSchema('ping.json', pingSchema({ requireTag: true }));
    await waitFor(() => f.engine.handles.get(v.name)?.generation === 2, 'the validating pipeline to reload');
    expect(f.engine.handles.get(n.name)!.generation).toBe(1);
    expect(await reloads(f)).toEqual({ ok: 1, error: 0 });

    await publish(f.client, v.stream, [ping(2), ping(3, { tag: 'ok' })]);
    await waitFor(async () => (await f.client.xlen(`${v.stream}:dlq`)) === 1 && (await f.client.xlen(v.out)) === 2, 'one to the DLQ, one through');
    const [dlq] = await entries(f.client, `${v.stream}:dlq`);
    expect(dlq!.fields).toMatchObject({ stage: 'validate', payload: JSON.stringify(ping(2)), error: expect.stringContaining('tag') });
    expect(await payloads(f.client, v.out)).toEqual([{ n: 1, version: 1 }, { n: 3, version: 1 }]);

    // A broken schema file keeps the schemas in force and says where it is broken.
    const schemaFile = await f.writeSchema('ping.json', '{\n  "$id": "' + PING_ID + '",\n  "type": "object",\n  "required": [\n}\n');
    await waitFor(() => f.engine.handles.get(v.name)?.lastReloadError, 'the schema error to show');
    expect(f.engine.handles.get(v.name)!.lastReloadError).toMatch(/ping\.json:\d+:\d+ /);
    expect(f.engine.handles.get(v.name)!.generation).toBe(2);
    expect(await reloads(f)).toEqual({ ok: 1, error: 1 });
    await publish(f.client, v.stream, [ping(4)]);
    await waitFor(async () => (await f.client.xlen(`${v.stream}:dlq`)) === 2, 'the stricter schema to still apply');
    expect(schemaFile.endsWith('ping.json')).toBe(true);
  });
});

describe('files that fail to load (Engine + ConfigWatcher)', () => {
  it('a new invalid file is listed as invalid, and runs once fixed on disk', async () => {
    const f = await start({});
    const p = { name: key('hr'), stream: key('in'), out: key('out') };
    const good = versioned(p, 1);
    const bad = good.replace('type: publish', 'type: nosuch');
    const file = await f.writePipeline(p.name, bad);
    const listed = await waitFor(async () => {
      const v = JSON.parse((await f.inject({ method: 'GET', url: `/pipelines/${p.name}` })).body);
      return v.status === 'invalid' && v;
    }, 'the file to be listed as invalid');
    const line = bad.split('\n').findIndex((l) => l.includes('type: nosuch')) + 1;
    expect(listed.lastReloadError).toMatch(new RegExp(`${p.name}\\.yaml:${line}:9 unknown sink type 'nosuch'`));
    expect(await reloads(f)).toEqual({ ok: 0, error: 1 });

    await writeFile(file, good);
    await waitFor(() => f.engine.handles.get(p.name)?.status === 'running', 'the fixed pipeline to run');
    expect(f.engine.rejected.size).toBe(0);
    await publish(f.client, p.stream, [ping(1)]);
    await waitFor(async () => (await f.client.xlen(p.out)) === 1, 'an output');
  });

  it('a pipeline rejected for an unknown schema starts once that schema appears', async () => {
    const f = await start({ schemas: {}, allowRejected: true, pipelines: {} });
    const p = { name: key('hr'), stream: key('in'), out: key('out') };
    await f.writePipeline(p.name, pipelineYaml({ ...p, filter: 'true' }));
    await waitFor(() => f.engine.rejected.size === 1, 'the pipeline to be rejected');
    await f.writeSchema('ping.json', pingSchema());
    await waitFor(() => f.engine.handles.get(p.name)?.status === 'running', 'the pipeline to start');
    expect(f.engine.rejected.size).toBe(0);
    await publish(f.client, p.stream, [ping(1), { event: 'ping', data: {} }]);
    await waitFor(async () => (await f.client.xlen(p.out)) === 1 && (await f.client.xlen(`${p.stream}:dlq`)) === 1, 'one through, one to the DLQ');
  });
});

describe('renaming a pipeline file (Engine + ConfigWatcher)', () => {
  it('the pipeline keeps running from its new file, on its consumer group', async () => {
    const p = { name: key('hr'), stream: key('in'), out: key('out') };
    const f = await start({ pipelines: { [p.name]: versioned(p, 1) } });
    await publish(f.client, p.stream, [ping(1)]);
    await waitFor(async () => (await f.client.xlen(p.out)) === 1, 'the first output');
    const from = f.engine.handles.get(p.name)!.pipeline.file;
    const to = from.replace(/\.yaml$/, '-renamed.yaml');
    await rename(from, to);
    await waitFor(() => f.engine.handles.get(p.name)?.pipeline.file === to, 'the pipeline to run from its new file', 10_000);
    expect(f.engine.rejected.size).toBe(0);
    await publish(f.client, p.stream, [ping(2)]);
    await drained(f, p.stream, p.name);
    expect(await payloads(f.client, p.out)).toEqual([{ n: 1, version: 1 }, { n: 2, version: 1 }]);
  });

  it('copying a pipeline file to a new name, then deleting the old one, leaves it running', async () => {
    const p = { name: key('hr'), stream: key('in'), out: key('out') };
    const text = versioned(p, 1);
    const f = await start({ pipelines: { [p.name]: text } });
    const from = f.engine.handles.get(p.name)!.pipeline.file;
    const to = from.replace(/\.yaml$/, '-copy.yaml');
    await writeFile(to, text);
    // Two files, one name: the copy is refused while the original runs.
    await waitFor(() => f.engine.rejected.has(to), 'the copy to be refused as a duplicate');
    await unlink(from);
    await waitFor(() => f.engine.handles.get(p.name)?.pipeline.file === to, 'the copy to take over', 10_000);
    await publish(f.client, p.stream, [ping(1)]);
    await drained(f, p.stream, p.name);
    expect(await payloads(f.client, p.out)).toEqual([{ n: 1, version: 1 }]);
  });
});
