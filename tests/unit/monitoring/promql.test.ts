import { describe, expect, it } from 'vitest';
import { dashboardExprs, exposedNames, metricNames, ruleExprs } from '../../helpers/promql.ts';

// The reader the monitoring suite uses to check that every metric the dashboard and the alerting
// rules query exists: it must find each metric name, and nothing that is not one.
describe('metricNames (PromQL)', () => {
  it('finds histogram series, skipping functions, grouping labels, matchers, ranges and numbers', () => {
    expect(metricNames('histogram_quantile(0.95, sum by (le, pipeline, stage) (rate(synapse_stage_seconds_bucket{pipeline=~"$pipeline"}[$__rate_interval])))'))
      .toEqual(['synapse_stage_seconds_bucket']);
    expect(metricNames('sum(rate(a_sum[5m] offset 1h)) / on(pipeline) group_left(state) sum without (instance) (a_count) * 1e3 > bool 0.5'))
      .toEqual(['a_count', 'a_sum']);
  });

  it('finds both sides of set operators, and metric names inside strings are no selectors', () => {
    expect(metricNames('x > 1000 and delta(y[10m]) > 0 unless z{name="not_a_metric"} or vector(0)')).toEqual(['x', 'y', 'z']);
    expect(metricNames('up{job="synapse"} == 0')).toEqual(['up']);
  });

  it("reads Grafana's label_values(metric, label) as its metric", () => {
    expect(metricNames('label_values(synapse_redis_up{job=~"$job"}, instance)')).toEqual(['synapse_redis_up']);
    expect(metricNames('label_values(instance)')).toEqual([]);
  });
});

describe('expressions of dashboards, rules and expositions', () => {
  it('dashboardExprs takes panel targets at any depth and query variables', () => {
    const dashboard = {
      panels: [{ targets: [{ expr: 'a' }] }, { type: 'row', panels: [{ targets: [{ expr: 'b' }, { expr: 'c' }] }] }],
      templating: { list: [{ type: 'datasource', query: 'prometheus' }, { type: 'query', definition: 'label_values(d, x)' }] },
    };
    expect(dashboardExprs(dashboard)).toEqual(['a', 'b', 'c', 'label_values(d, x)']);
  });

  it('ruleExprs takes every rule of every group', () => {
    expect(ruleExprs('groups:\n  - name: g\n    rules:\n      - alert: A\n        expr: a > 1\n      - record: r\n        expr: sum(b)\n  - name: h\n    rules:\n      - alert: C\n        expr: |\n          c\n'))
      .toEqual(['a > 1', 'sum(b)', 'c\n']);
  });

  it('exposedNames takes sample names, not comments', () => {
    expect([...exposedNames('# HELP a_total x\n# TYPE a_total counter\na_total{p="1"} 2\nh_bucket{le="+Inf"} 1\nh_sum 0.1\nb 1\n')])
      .toEqual(['a_total', 'h_bucket', 'h_sum', 'b']);
  });
});
