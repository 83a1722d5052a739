import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { Registry } from 'prom-client';
import { parse as parseYaml } from 'yaml';
import { Metrics } from '../../src/observability/metrics';

/**
 * The Grafana dashboard, the alert rules and the metrics catalogue agree with the metrics
 * the code defines: every query names a metric that exists, and every Barge metric is
 * catalogued. (Temporal's names are checked against a live worker scrape in
 * batch-observability.spec.ts.)
 */

const ROOT = join(__dirname, '..', '..');
const read = (path: string): string => readFileSync(join(ROOT, path), 'utf8');

interface Panel {
  id: number;
  type: string;
  title: string;
  datasource?: { type: string; uid: string };
  targets?: { expr: string; refId: string; datasource?: { uid: string } }[];
  panels?: Panel[];
  gridPos: { h: number; w: number; x: number; y: number };
}

const dashboard = JSON.parse(read('deploy/grafana/dashboards/barge.json')) as {
  uid: string;
  title: string;
  panels: Panel[];
};
const panels = dashboard.panels.flatMap((p) => [p, ...(p.panels ?? [])]).filter((p) => p.type !== 'row');

/** Every family the registry exports (Node's process metrics included), and which are histograms. */
async function registryFamilies(): Promise<Map<string, string>> {
  const metrics = new Metrics(new Registry(), { defaults: true });
  const json = await metrics.registry.getMetricsAsJSON();
  return new Map(json.map((m) => [m.name, String(m.type)]));
}

/** Barge and Temporal metric names in a PromQL expression. */
function metricNames(expr: string): string[] {
  return [...expr.matchAll(/\b(?:barge|temporal)_[a-zA-Z0-9_]+\b/g)].map((m) => m[0]);
}

function known(families: Map<string, string>, name: string): boolean {
  if (families.has(name)) return true;
  const m = /^(.*)_(bucket|sum|count)$/.exec(name);
  return m !== null && families.get(m[1]) === 'histogram';
}

describe('the Grafana dashboard', () => {
  it('is provisioned: a file provider for its folder and the datasource its panels name', () => {
    const provider = parseYaml(read('deploy/grafana/provisioning/dashboards/barge.yml')) as {
      providers: { type: string; options: { path: string } }[];
    };
    expect(provider.providers).toEqual([
      expect.objectContaining({ type: 'file', options: { path: '/var/lib/grafana/dashboards' } }),
    ]);
    const sources = parseYaml(read('deploy/grafana/provisioning/datasources/prometheus.yml')) as {
      datasources: { uid: string; type: string; url: string }[];
    };
    expect(sources.datasources).toEqual([
      expect.objectContaining({ type: 'prometheus', uid: 'barge-prometheus', url: 'http://prometheus:9090' }),
    ]);
    expect(dashboard).toMatchObject({ uid: 'barge-overview', title: 'Barge' });
    expect(panels.length).toBeGreaterThan(20);
    for (const p of panels) {
      expect({ title: p.title, uid: p.datasource?.uid }).toEqual({ title: p.title, uid: 'barge-prometheus' });
      expect({ title: p.title, queries: (p.targets?.length ?? 0) > 0 }).toEqual({
        title: p.title,
        queries: true,
      });
    }
    const ids = dashboard.panels.flatMap((p) => [p, ...(p.panels ?? [])]).map((p) => p.id);
    expect(new Set(ids).size).toBe(ids.length);
  });

  it('queries only metrics the registry defines', async () => {
    const families = await registryFamilies();
    const unknown: string[] = [];
    let barge = 0;
    for (const p of panels) {
      for (const t of p.targets!) {
        const names = metricNames(t.expr);
        expect({ title: p.title, expr: t.expr, names: names.length > 0 }).toEqual({
          title: p.title,
          expr: t.expr,
          names: true,
        });
        for (const name of names.filter((n) => n.startsWith('barge_'))) {
          barge++;
          if (!known(families, name)) unknown.push(`${p.title}: ${name}`);
        }
      }
    }
    expect(barge).toBeGreaterThan(20);
    expect(unknown).toEqual([]);
  });

  it('shows every Barge metric somewhere (dashboard or alert rules)', async () => {
    const families = await registryFamilies();
    const shown = new Set(
      [read('deploy/grafana/dashboards/barge.json'), read('deploy/prometheus/alerts.yml')]
        .flatMap(metricNames)
        .map((n) => n.replace(/_(bucket|sum|count)$/, '')),
    );
    const own = new Metrics(new Registry());
    const ownNames = (await own.registry.getMetricsAsJSON()).map((m) => m.name);
    expect(ownNames.length).toBeGreaterThan(20);
    expect(ownNames.filter((n) => !shown.has(n))).toEqual([]);
    expect([...families.keys()]).toEqual(expect.arrayContaining(ownNames));
  });
});

describe('the alert rules', () => {
  const rules = (
    parseYaml(read('deploy/prometheus/alerts.yml')) as {
      groups: { name: string; rules: { alert: string; expr: string }[] }[];
    }
  ).groups.flatMap((g) => g.rules);

  it('cover what the issue asks for, each on metrics the registry defines', async () => {
    expect(rules.map((r) => r.alert)).toEqual(
      expect.arrayContaining([
        'BargeBatchWithoutProgress',
        'BargeChunkActivitiesFailing',
        'BargeUpstreamCircuitOpen',
        'BargeFinalizeRunningLong',
        'BargeWorkerMemoryNearLimit',
      ]),
    );
    const families = await registryFamilies();
    for (const rule of rules) {
      const names = metricNames(rule.expr).filter((n) => n.startsWith('barge_'));
      if (rule.alert === 'BargeTargetDown') continue; // Prometheus's own `up`
      expect({ alert: rule.alert, names: names.length > 0 }).toEqual({ alert: rule.alert, names: true });
      expect({ alert: rule.alert, unknown: names.filter((n) => !known(families, n)) }).toEqual({
        alert: rule.alert,
        unknown: [],
      });
    }
  });
});

describe('docs/metrics.md', () => {
  it('catalogues every metric the registry defines', async () => {
    const doc = read('docs/metrics.md');
    const own = new Metrics(new Registry(), { defaults: true });
    const names = (await own.registry.getMetricsAsJSON())
      .map((m) => m.name)
      // Node's process metrics are catalogued as one family (barge_process_*, barge_nodejs_*).
      .filter((n) => !/^barge_(process|nodejs)_/.test(n));
    expect(names.length).toBeGreaterThan(20);
    expect(names.filter((n) => !doc.includes(`\`${n}\``))).toEqual([]);
  });
});
