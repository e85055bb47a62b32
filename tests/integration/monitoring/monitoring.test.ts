import { execFile } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { resolve } from 'node:path';
import { promisify } from 'node:util';
import { describe, expect, it } from 'vitest';
import { key, ping, pipelineYaml, publish, useEngines } from '../../helpers/engine.ts';
import { dashboardExprs, dashboardMetrics, exposedNames, ruleMetrics } from '../../helpers/promql.ts';
import { requirePromtool } from '../../helpers/promtool.ts';
import { waitFor } from '../../helpers/redis.ts';

const run = promisify(execFile);
const ROOT = resolve(import.meta.dirname, '../../..');
const DASHBOARD = resolve(ROOT, 'monitoring/grafana/synapse.json');
const RULES_DIR = resolve(ROOT, 'monitoring/prometheus');
const RULES = resolve(RULES_DIR, 'alerts.yml');
/** Series Prometheus makes itself for every target, which no engine serves. */
const PROMETHEUS_OWN = new Set(['up']);

const { start } = useEngines();

/**
 * The names of the samples a real engine serves at GET /metrics once it has handled a few events
 * (sunk, filtered, dead-lettered), reloaded a pipeline and been refused a reload. Metrics with
 * labels have no sample before their first observation, so `wanted` is polled for (the lag gauge
 * is set by the consumer's housekeeping) and what is missing after that is reported.
 */
async function servedNames(wanted: string[]): Promise<{ names: Set<string>; missing: string[] }> {
  const name = key('p');
  const stream = key('in');
  const v1 = pipelineYaml({ name, stream, out: key('out') });
  const f = await start({ pipelines: { [name]: v1 } });
  const sent = [ping(1), ping(2), ping(3, { keep: false }), { event: 'ping', data: { n: 'x' } }];
  await publish(f.client, stream, sent);
  const settled = () => Object.values(f.engine.handles.get(name)!.counters).reduce((a, b) => a + b, 0);
  await waitFor(() => settled() === sent.length, 'every event settled');
  const file = await f.writePipeline(name, pipelineYaml({ name, stream, out: key('out'), version: 2 }));
  expect(await f.engine.reloadFile(file)).toMatchObject({ ok: true, change: 'updated' });
  await f.writePipeline(name, v1.replace('type: publish', 'type: nosuch'));
  expect((await f.engine.reloadFile(file)).ok).toBe(false);

  const scrape = async () => {
    const res = await f.inject({ method: 'GET', url: '/metrics' });
    expect(res.statusCode).toBe(200);
    return exposedNames(res.body);
  };
  let names = await scrape();
  const missingNow = () => wanted.filter((n) => !names.has(n) && !PROMETHEUS_OWN.has(n));
  await waitFor(async () => {
    names = await scrape();
    return missingNow().length === 0;
  }, 'every queried metric served', 10_000).catch(() => undefined);
  return { names, missing: missingNow() };
}

describe('the Grafana dashboard (monitoring/grafana/synapse.json)', () => {
  const dashboard = JSON.parse(readFileSync(DASHBOARD, 'utf8')) as {
    uid: string; title: string;
    templating: { list: { name: string; type: string; query?: unknown; datasource?: { uid: string } }[] };
    panels: { id: number; type: string; title: string; datasource?: { type: string; uid: string }; gridPos: { x: number; w: number }; targets?: { expr: string; datasource: { uid: string } }[] }[];
  };

  it('is importable anywhere: a Prometheus data-source variable that every panel and query uses, no fixed data source', () => {
    expect(dashboard.uid).toBe('synapse-engine');
    expect((dashboard as Record<string, unknown>).id ?? null).toBeNull();
    const ds = dashboard.templating.list.find((v) => v.type === 'datasource');
    expect(ds).toMatchObject({ name: 'datasource', query: 'prometheus' });
    for (const v of dashboard.templating.list.filter((t) => t.type === 'query')) expect(v.datasource?.uid, v.name).toBe('${datasource}');
    const panels = dashboard.panels.filter((p) => p.type !== 'row');
    expect(panels.length).toBeGreaterThan(10);
    for (const p of panels) {
      expect(p.datasource, p.title).toEqual({ type: 'prometheus', uid: '${datasource}' });
      expect(p.targets?.length, p.title).toBeGreaterThan(0);
      for (const t of p.targets!) expect(t.datasource.uid, p.title).toBe('${datasource}');
      expect(p.gridPos.x + p.gridPos.w, p.title).toBeLessThanOrEqual(24);
    }
    const ids = dashboard.panels.map((p) => p.id);
    expect(new Set(ids).size).toBe(ids.length);
  });

  it('shows rate per pipeline and outcome, DLQ rate, consumer lag, stage percentiles, reloads and Redis', () => {
    const exprs = dashboardExprs(dashboard).join('\n');
    expect(exprs).toMatch(/sum by \(pipeline, outcome\) \(rate\(synapse_events_total/);
    expect(exprs).toMatch(/rate\(synapse_dlq_total/);
    expect(exprs).toMatch(/synapse_consumer_lag/);
    for (const q of ['0.5', '0.95', '0.99']) expect(exprs).toContain(`histogram_quantile(${q}, sum by (le, pipeline, stage) (rate(synapse_stage_seconds_bucket`);
    expect(exprs).toMatch(/increase\(synapse_reloads_total/);
    expect(exprs).toMatch(/synapse_redis_up/);
  });
});

describe('the alerting rules (monitoring/prometheus/alerts.yml)', () => {
  it('pass `promtool check rules`', async (ctx) => {
    const promtool = requirePromtool(ctx);
    const { stdout } = await run(promtool, ['check', 'rules', RULES]);
    expect(stdout).toMatch(/SUCCESS: \d+ rules found/);
  });

  it('pass their unit tests, `promtool test rules alerts.test.yml` (each alert fires, and does not)', async (ctx) => {
    const promtool = requirePromtool(ctx);
    const result = await run(promtool, ['test', 'rules', 'alerts.test.yml'], { cwd: RULES_DIR }).catch((err: { stdout?: string; stderr?: string }) => err);
    expect(`${result.stdout ?? ''}${result.stderr ?? ''}`).toMatch(/^\s*SUCCESS\s*$/m);
  });

  it('each alert has a unit test that it fires, a severity, and a summary and description', () => {
    const rules = readFileSync(RULES, 'utf8');
    const tests = readFileSync(resolve(RULES_DIR, 'alerts.test.yml'), 'utf8');
    const alerts = [...rules.matchAll(/^\s*- alert: (\S+)$/gm)].map((m) => m[1]!);
    expect(alerts.length).toBeGreaterThanOrEqual(5);
    for (const alert of alerts) {
      expect(tests, alert).toMatch(new RegExp(`alertname: ${alert}\\n\\s+exp_alerts:\\n\\s+- exp_labels:`));
      expect(tests, alert).toMatch(new RegExp(`alertname: ${alert}\\n\\s+exp_alerts: \\[\\]`));
    }
    expect(rules.match(/severity: (critical|warning)/g)).toHaveLength(alerts.length);
    expect(rules.match(/summary: /g)).toHaveLength(alerts.length);
    expect(rules.match(/description: /g)).toHaveLength(alerts.length);
  });
});

describe('every metric the dashboard and the alerting rules query', () => {
  it('is served at GET /metrics by a running engine that handled a few events', async () => {
    const dashboard = dashboardMetrics(DASHBOARD);
    const rules = ruleMetrics(RULES);
    // The readers found the queries: a broken reader would make this test pass on nothing.
    expect(dashboard).toEqual(expect.arrayContaining(['synapse_events_total', 'synapse_stage_seconds_bucket', 'synapse_consumer_lag', 'synapse_redis_up', 'synapse_reloads_total']));
    expect(rules).toEqual(expect.arrayContaining(['synapse_events_total', 'synapse_consumer_lag', 'synapse_pipeline_state', 'synapse_pipeline_load_error', 'synapse_redis_up']));

    const { names, missing } = await servedNames([...new Set([...dashboard, ...rules])]);
    expect(missing).toEqual([]);
    // And the reader of the exposition reads it: histograms as their series.
    expect(names).toContain('synapse_stage_seconds_count');
    expect(names).not.toContain('synapse_stage_seconds');
  });
});
