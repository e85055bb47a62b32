import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { key, metricValue, ping, pipelineYaml, publish, useEngines } from '../../helpers/engine.ts';

// Issue #10, item 4: an admin dry-run (or validation) of submitted YAML cannot take the engine
// down. It runs in a worker thread with a memory bound and a time bound; a request that goes past
// one is answered 422 with the bound it hit, logged and counted, and the next request gets a fresh
// worker. Within the bounds every expression limit still holds (L1001 and the others).

const { start } = useEngines();

/** A pipeline whose transform holds `arrays` arrays of a million numbers each (~8 MB apiece). */
function hungry(name: string, arrays: number): string {
  return pipelineYaml({
    name, stream: key('in'), out: key('out'), validate: false, filter: null,
    transform: `$count($map([1..${arrays}], function($v) { [1..999999] }))`,
    extra: 'expression_timeout_ms: 60000',
  });
}

/** A pipeline whose transform takes tens of milliseconds per event, within its own time limit. */
function slow(name: string): string {
  return pipelineYaml({
    name, stream: key('in'), out: key('out'), validate: false, filter: null,
    transform: '$count([1..999999][$ % 7 = 3])',
    extra: 'expression_timeout_ms: 60000',
  });
}

describe('admin dry-runs in the sandbox thread', () => {
  it('a dry-run that would take more memory than its bound is stopped; the engine and the next dry-run are fine', async () => {
    const f = await start({ admin: { sandboxLimits: { memoryMb: 64 } } });
    const name = key('p');
    const res = await f.inject({ method: 'POST', url: `/pipelines/${name}/dry-run`, payload: { yaml: hungry(name, 400), events: [ping(1)] } });
    expect(res.statusCode, res.body).toBe(422);
    expect(JSON.parse(res.body)).toMatchObject({ error: 'syn_sandbox_limit', message: expect.stringContaining('64 MB memory bound') });
    expect(metricValue(await f.engine.metrics.registry.metrics(), 'synapse_refused_total', { limit: 'admin.sandbox_memory' })).toBe(1);

    expect((await f.inject({ method: 'GET', url: '/health' })).statusCode).toBe(200);
    // Two such arrays fit the bound: the next request runs in a fresh worker.
    const next = await f.inject({ method: 'POST', url: `/pipelines/${name}/dry-run`, payload: { yaml: hungry(name, 2), events: [ping(1)] } });
    expect(next.statusCode, next.body).toBe(200);
    expect(JSON.parse(next.body).results[0]).toMatchObject({ outcome: 'sunk', sinks: { publish: 2 } });
  });

  it('a dry-run past its time bound is stopped, and the admin API answers while it runs', async () => {
    const f = await start({ admin: { sandboxLimits: { timeoutMs: 1500 } } });
    const name = key('p');
    const events = Array.from({ length: 1000 }, (_, i) => ping(i));
    let done = false;
    const dry = f.inject({ method: 'POST', url: `/pipelines/${name}/dry-run`, payload: { yaml: slow(name), events } })
      .finally(() => { done = true; });
    // The dry-run's events evaluate in the worker: the engine's own event loop stays free.
    await new Promise((resolve) => setTimeout(resolve, 200));
    const health = await f.inject({ method: 'GET', url: '/health' });
    expect(health.statusCode).toBe(200);
    expect(done).toBe(false);
    const res = await dry;
    expect(res.statusCode, res.body).toBe(422);
    expect(JSON.parse(res.body).message).toContain('stopped after 1500 ms, the time bound of a dry-run or validation (SYNAPSE_SANDBOX_TIMEOUT_MS)');
    expect(metricValue(await f.engine.metrics.registry.metrics(), 'synapse_refused_total', { limit: 'admin.sandbox_time' })).toBe(1);
    const again = await f.inject({ method: 'POST', url: `/pipelines/${name}/dry-run`, payload: { yaml: slow(name), events: [ping(1)] } });
    expect(again.statusCode, again.body).toBe(200);
  });

  it('a string doubled without end is refused inside the expression (L1001, the string limit), as in the engine', async () => {
    const f = await start();
    const name = key('p');
    const yaml = pipelineYaml({
      name, stream: key('in'), out: key('out'), validate: false, filter: null,
      transform: '( $double := function($s, $n) { $n = 0 ? $s : $double($s & $s, $n - 1) }; $length($double("x", 40)) )',
      extra: 'expression_timeout_ms: 60000',
    });
    const res = await f.inject({ method: 'POST', url: `/pipelines/${name}/dry-run`, payload: { yaml, events: [ping(1)] } });
    expect(res.statusCode, res.body).toBe(200);
    expect(JSON.parse(res.body).results[0]).toMatchObject({ outcome: 'dlq', stage: 'transform', error: expect.stringContaining('more than the limit of 10000000') });
  });

  it('a running pipeline is dry-run in the sandbox too, compiled from the text it was loaded from', async () => {
    const name = key('p');
    const f = await start({ pipelines: { [name]: hungry(name, 400) }, admin: { sandboxLimits: { memoryMb: 64 } } });
    const res = await f.inject({ method: 'POST', url: `/pipelines/${name}/dry-run`, payload: { events: [ping(1)] } });
    expect(res.statusCode, res.body).toBe(422);
    expect(JSON.parse(res.body).message).toContain('memory bound');
  });

  it('POST /validate runs in the sandbox: what it reports comes from the worker', async () => {
    const f = await start({ admin: { sandboxLimits: { memoryMb: 64 } } });
    const name = key('p');
    const ok = await f.inject({ method: 'POST', url: '/validate', payload: { yaml: hungry(name, 1) } });
    expect(JSON.parse(ok.body)).toEqual({ valid: true, name, diagnostics: [], warnings: [] });
    const bad = await f.inject({ method: 'POST', url: '/validate', payload: { yaml: hungry(name, 1).replace('$count(', '$count((') } });
    expect(JSON.parse(bad.body)).toMatchObject({ valid: false, diagnostics: [{ line: expect.any(Number), message: expect.any(String) }] });
  });

  it('a reply bigger than the byte bound is refused in the worker: the engine never holds it', async () => {
    const f = await start({ admin: { sandboxLimits: { maxBytes: 1024 * 1024 } } });
    const name = key('p');
    // One 200,000-character string, returned 20 times: 4 MB of JSON from a few hundred KB of heap.
    const yaml = pipelineYaml({
      name, stream: key('in'), out: key('out'), validate: false, filter: null,
      transform: '( $s := $pad("", 200000, "y"); [1..20].$s )',
    });
    const res = await f.inject({ method: 'POST', url: `/pipelines/${name}/dry-run`, payload: { yaml, events: [ping(1)] } });
    expect(res.statusCode, res.body.slice(0, 300)).toBe(422);
    expect(JSON.parse(res.body).message).toMatch(/^the dry-run's reply would be \d+ bytes, over the bound of 1048576 \(SYNAPSE_SANDBOX_MAX_BYTES\)/);
    expect(metricValue(await f.engine.metrics.registry.metrics(), 'synapse_refused_total', { limit: 'admin.sandbox_size' })).toBe(1);
    // Within the bound the same worker answers (nothing had to end).
    const small = await f.inject({ method: 'POST', url: `/pipelines/${name}/dry-run`, payload: { yaml: yaml.replace('[1..20]', '[1..2]'), events: [ping(1)] } });
    expect(small.statusCode).toBe(200);
    expect(JSON.parse(small.body).results[0].sinks.publish).toHaveLength(2);
  });

  it('a stream slice bigger than the byte bound is refused while it is read', async () => {
    const stream = key('big');
    const name = key('p');
    const f = await start({
      pipelines: { [name]: pipelineYaml({ name, stream, out: key('out'), validate: false, filter: null, transform: '{ "n": data.n }' }) },
      admin: { sandboxLimits: { maxBytes: 1024 * 1024 } },
    });
    await publish(f.client, stream, Array.from({ length: 20 }, (_, n) => ping(n, { pad: 'x'.repeat(100_000) })));
    const res = await f.inject({ method: 'POST', url: `/pipelines/${name}/dry-run`, payload: { count: 20 } });
    expect(res.statusCode).toBe(422);
    expect(JSON.parse(res.body)).toEqual({ error: 'slice_too_large', message: expect.stringContaining('more than 1048576 bytes (SYNAPSE_SANDBOX_MAX_BYTES)') });
    const few = await f.inject({ method: 'POST', url: `/pipelines/${name}/dry-run`, payload: { count: 5 } });
    expect(few.statusCode, few.body.slice(0, 300)).toBe(200);
    expect(JSON.parse(few.body).summary.sunk).toBe(5);
  });

  it('a request that cannot be handed to the worker (nested too deep) is refused, and the worker goes on unharmed', async () => {
    const f = await start({ admin: { sandboxLimits: { timeoutMs: 5000 } } });
    const name = key('p');
    const yaml = pipelineYaml({ name, stream: key('in'), out: key('out'), validate: false, filter: null, transform: '{ "n": 1 }' });
    // Warm: the worker knows the schemas already.
    expect((await f.inject({ method: 'POST', url: `/pipelines/${name}/dry-run`, payload: { yaml, events: [ping(1)] } })).statusCode).toBe(200);
    const deep = `{"yaml":${JSON.stringify(yaml)},"events":[${'['.repeat(100_000)}${']'.repeat(100_000)}]}`;
    const res = await f.inject({ method: 'POST', url: `/pipelines/${name}/dry-run`, headers: { 'content-type': 'application/json' }, payload: deep });
    expect(res.statusCode, res.body).toBe(422);
    expect(JSON.parse(res.body).message).toContain('cannot be handed to the dry-run thread');
    // No timer left behind: the next request runs to its end, well past when a stray one would fire.
    const next = await f.inject({ method: 'POST', url: `/pipelines/${name}/dry-run`, payload: { yaml, events: [ping(2)] } });
    expect(next.statusCode, next.body).toBe(200);
    expect(metricValue(await f.engine.metrics.registry.metrics(), 'synapse_refused_total', { limit: 'admin.sandbox_time' }) ?? 0).toBe(0);
  });

  it('beyond the requests allowed to wait, a request is answered 503 at once', async () => {
    const f = await start({ admin: { sandboxLimits: { timeoutMs: 4000, maxQueued: 1 } } });
    const name = key('p');
    // One event whose transform runs far past the 4 s bound.
    const endless = slow(name).replace('$count([1..999999][$ % 7 = 3])', '$sum($map([1..1000], function($i) { $count([1..999999][$ % 7 = 3]) }))');
    const running = f.inject({ method: 'POST', url: `/pipelines/${name}/dry-run`, payload: { yaml: endless, events: [ping(1)] } });
    await new Promise((resolve) => setTimeout(resolve, 200));
    // Two more: one may wait for its turn, the other is refused at once.
    const [a, b] = await Promise.all([1, 2].map(() => f.inject({ method: 'POST', url: '/validate', payload: { yaml: slow(name) } })));
    const refused = [a!, b!].find((r) => r.statusCode === 503);
    const waited = [a!, b!].find((r) => r !== refused);
    expect(refused, `${a!.statusCode} ${b!.statusCode}`).toBeDefined();
    expect(JSON.parse(refused!.body).message).toBe('1 dry-runs and validations are waiting for the one running; try again shortly');
    expect(waited!.statusCode).toBe(200);
    expect((await running).statusCode).toBe(422); // its time bound
  });

  it('a failure inside the worker is answered 500 without its details; they go to the engine log', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'synapse-plugin-'));
    // A plugin that loads in the engine but throws when a worker thread loads it.
    await writeFile(join(dir, 'worker-shy.mjs'), `import { isMainThread } from 'node:worker_threads';
if (!isMainThread) throw new Error('secret detail: postgres://svc:hunter2@db');
export default { name: 'worker-shy', description: 'x', configSchema: { type: 'object' }, create: () => ({ write: async () => {}, close: async () => {} }) };
`);
    process.env.SYNAPSE_PLUGINS = dir;
    try {
      const f = await start();
      const name = key('p');
      const res = await f.inject({ method: 'POST', url: '/validate', payload: { yaml: slow(name) } });
      expect(res.statusCode).toBe(500);
      expect(JSON.parse(res.body)).toEqual({ error: 'syn_sandbox_limit', message: 'the dry-run thread failed; see the engine log' });
      expect(res.body).not.toContain('hunter2');
    } finally {
      delete process.env.SYNAPSE_PLUGINS;
      await rm(dir, { recursive: true, force: true });
    }
  });

  it('closing the admin server answers a dry-run in flight 503 instead of waiting for it', async () => {
    const f = await start({ admin: { sandboxLimits: { timeoutMs: 60_000 } } });
    const name = key('p');
    const warm = await f.inject({ method: 'POST', url: '/validate', payload: { yaml: slow(name) } });
    expect(warm.statusCode).toBe(200);
    const events = Array.from({ length: 1000 }, (_, i) => ping(i));
    const inFlight = f.inject({ method: 'POST', url: `/pipelines/${name}/dry-run`, payload: { yaml: slow(name), events } });
    await new Promise((resolve) => setTimeout(resolve, 300));
    await f.app.close();
    const res = await inFlight;
    expect(res.statusCode).toBe(503);
    expect(JSON.parse(res.body).message).toBe('the engine is stopping');
  });
});
