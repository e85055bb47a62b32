import { describe, expect, it } from 'vitest';
import { key, metricValue, ping, pipelineYaml, useEngines } from '../../helpers/engine.ts';

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
    expect(JSON.parse(ok.body)).toEqual({ valid: true, name, diagnostics: [] });
    const bad = await f.inject({ method: 'POST', url: '/validate', payload: { yaml: hungry(name, 1).replace('$count(', '$count((') } });
    expect(JSON.parse(bad.body)).toMatchObject({ valid: false, diagnostics: [{ line: expect.any(Number), message: expect.any(String) }] });
  });
});
