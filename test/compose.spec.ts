/**
 * Static checks of the on-prem deployment: docker-compose.yml, the Dockerfile and deploy/.
 * No Docker needed: the compose file is parsed, its interpolations resolved with their defaults,
 * and the API's and worker's environment fed to the real configuration loader.
 */
import { existsSync, readFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import * as ts from 'typescript';
import { parse as parseYaml } from 'yaml';
import { WORKER_NODE_OPTIONS } from '../bench/barge';
import { buildConfig, type BargeConfig } from '../src/config/config';

const ROOT = resolve(__dirname, '..');
const read = (path: string): string => readFileSync(join(ROOT, path), 'utf8');

type Service = {
  image?: string;
  build?: unknown;
  command?: string | string[];
  entrypoint?: string | string[];
  environment?: Record<string, unknown> | string[];
  depends_on?: string[] | Record<string, { condition?: string }>;
  healthcheck?: { test?: string | string[]; disable?: boolean };
  ports?: Array<string | number | { target?: number; published?: string | number }>;
  volumes?: Array<string | { source?: string; target?: string; read_only?: boolean }>;
  stop_grace_period?: string;
};
type Compose = { services: Record<string, Service>; volumes?: Record<string, unknown> };

const compose = parseYaml(read('docker-compose.yml'), { merge: true }) as Compose;
const services = compose.services;

/** Resolves Compose interpolation as `docker compose` would with no variables set: defaults only. */
function interpolate(value: string): string {
  const out = value.replace(
    /\$\$|\$\{([A-Za-z_][A-Za-z0-9_]*)(?:(:?[-?])([^}]*))?\}|\$([A-Za-z_][A-Za-z0-9_]*)/g,
    (match, braced: string | undefined, op: string | undefined, arg: string | undefined) => {
      if (match === '$$') return '$';
      if (!braced) return ''; // bare $VAR with nothing set
      if (op === ':-' || op === '-') return arg ?? '';
      if (op === ':?' || op === '?') throw new Error(`${braced} is required (${arg}) but has no default`);
      return '';
    },
  );
  return out;
}

function envOf(name: string): Record<string, string> {
  const env = services[name].environment ?? {};
  const entries: Array<[string, string]> = Array.isArray(env)
    ? env.map((line) => {
        const i = line.indexOf('=');
        return i < 0 ? [line, ''] : [line.slice(0, i), line.slice(i + 1)];
      })
    : Object.entries(env).map(([k, v]) => [k, v === null || v === undefined ? '' : String(v)]);
  return Object.fromEntries(entries.map(([k, v]) => [k, interpolate(v)]));
}

function dependencies(name: string): Record<string, string> {
  const deps = services[name].depends_on ?? {};
  if (Array.isArray(deps)) return Object.fromEntries(deps.map((d) => [d, 'service_started']));
  return Object.fromEntries(Object.entries(deps).map(([d, v]) => [d, v?.condition ?? 'service_started']));
}

function words(value: string | string[] | undefined): string[] {
  if (value === undefined) return [];
  return Array.isArray(value) ? value.map(String) : value.split(/\s+/).filter(Boolean);
}

/** Published host ports of a service, as numbers. */
function publishedPorts(name: string): Array<{ host: number; container: number }> {
  return (services[name].ports ?? []).map((p) => {
    if (typeof p === 'object')
      return { host: Number(interpolate(String(p.published))), container: Number(p.target) };
    const parts = interpolate(String(p)).split('/')[0].split(':');
    const container = Number(parts[parts.length - 1]);
    const host = parts.length >= 2 ? Number(parts[parts.length - 2]) : container;
    return { host, container };
  });
}

/** Seconds in a Compose duration such as "45s", "1m30s" or "500ms". */
function durationSeconds(value: string): number {
  const re = /(\d+(?:\.\d+)?)(ms|us|h|m|s)/g;
  let total = 0;
  let matched = '';
  for (let m = re.exec(value); m; m = re.exec(value)) {
    total +=
      Number(m[1]) * { h: 3600, m: 60, s: 1, ms: 1e-3, us: 1e-6 }[m[2] as 'h' | 'm' | 's' | 'ms' | 'us'];
    matched += m[0];
  }
  if (matched !== value) throw new Error(`not a duration: ${value}`);
  return total;
}

function hostOf(url: string): string {
  return new URL(url).hostname;
}

/** The bind-mounted host path for a container path, e.g. BARGE_CONFIG's file. */
function hostPathFor(name: string, containerPath: string): string | undefined {
  for (const v of services[name].volumes ?? []) {
    const [source, target] = typeof v === 'string' ? v.split(':') : [v.source, v.target];
    if (target === containerPath && source) return resolve(ROOT, source);
  }
  return undefined;
}

const EXPECTED_SERVICES = [
  'postgres',
  'temporal-schema',
  'temporal',
  'temporal-setup',
  'temporal-ui',
  'minio',
  'barge-api',
  'barge-worker',
  'prometheus',
  'grafana',
];
const BARGE = ['barge-api', 'barge-worker'];
const SEARCH_ATTRIBUTES = ['BatchStatus', 'TenantId', 'Model', 'Endpoint'];

describe('docker-compose.yml', () => {
  it('defines every service of the stack', () => {
    expect(Object.keys(services)).toEqual(expect.arrayContaining(EXPECTED_SERVICES));
  });

  it('pins every image to an explicit tag, never latest', () => {
    for (const [name, service] of Object.entries(services)) {
      expect({ name, image: service.image }).toEqual({ name, image: expect.any(String) });
      const image = interpolate(service.image!);
      const tag = image.split('@')[0].match(/:([^/:]+)$/)?.[1];
      expect({ name, image, tag }).toEqual({ name, image, tag: expect.stringMatching(/\S/) });
      expect({ name, tag }).not.toEqual({ name, tag: 'latest' });
    }
  });

  it('uses the expected images for Postgres, Temporal and MinIO', () => {
    expect(services.postgres.image).toMatch(/^postgres:16\.\d+/);
    expect(services.temporal.image).toMatch(/^temporalio\/server:\d+\.\d+\.\d+$/);
    expect(services['temporal-ui'].image).toMatch(/^temporalio\/ui:\d+\.\d+\.\d+$/);
    expect(services['temporal-schema'].image).toMatch(/^temporalio\/admin-tools:\d+\.\d+\.\d+/);
    expect(services['temporal-setup'].image).toMatch(/^temporalio\/admin-tools:\d+\.\d+\.\d+/);
    expect(services.minio.image).toMatch(/^minio\/minio:RELEASE\.\d{4}-\d{2}-\d{2}T/);
    // admin-tools carries the schema files for one server version: keep both on the same one.
    const serverVersion = services.temporal.image!.split(':')[1];
    expect(services['temporal-schema'].image!.split(':')[1].startsWith(serverVersion)).toBe(true);
    for (const image of Object.values(services).map((s) => s.image ?? '')) {
      expect(image).not.toMatch(/auto-setup/);
    }
  });

  it('gives postgres, temporal, minio and the API a healthcheck', () => {
    for (const name of ['postgres', 'temporal', 'minio', 'barge-api']) {
      const test = words(services[name].healthcheck?.test);
      expect({ name, test: test.length > 0, disabled: services[name].healthcheck?.disable ?? false }).toEqual(
        {
          name,
          test: true,
          disabled: false,
        },
      );
    }
    expect(words(services.postgres.healthcheck?.test).join(' ')).toContain('pg_isready');
    expect(words(services.minio.healthcheck?.test).join(' ')).toContain('/minio/health/live');
    expect(words(services['barge-api'].healthcheck?.test).join(' ')).toContain(
      'http://127.0.0.1:8000/readyz',
    );
  });

  it('starts everything in order', () => {
    expect(dependencies('temporal-schema')).toMatchObject({ postgres: 'service_healthy' });
    expect(dependencies('temporal')).toMatchObject({ 'temporal-schema': 'service_completed_successfully' });
    expect(dependencies('temporal-setup')).toMatchObject({ temporal: 'service_healthy' });
    expect(dependencies('temporal-ui')).toMatchObject({ temporal: 'service_healthy' });
    for (const name of BARGE) {
      expect({ name, deps: dependencies(name) }).toMatchObject({
        name,
        deps: {
          postgres: 'service_healthy',
          minio: 'service_healthy',
          'temporal-setup': 'service_completed_successfully',
        },
      });
    }
  });

  it('points Temporal at Postgres (postgres12) for both stores', () => {
    const env = envOf('temporal');
    expect(env).toMatchObject({ DB: 'postgres12', POSTGRES_SEEDS: 'postgres', DB_PORT: '5432' });
    expect(env.POSTGRES_USER).toBe(envOf('postgres').POSTGRES_USER);
    expect(env.POSTGRES_PWD).toBe(envOf('postgres').POSTGRES_PASSWORD);
    expect(env.DBNAME ?? 'temporal').toBe('temporal');
    expect(env.VISIBILITY_DBNAME ?? 'temporal_visibility').toBe('temporal_visibility');
  });

  it('sets up the Temporal schema for both databases with the admin tools', () => {
    const command = [
      ...words(services['temporal-schema'].entrypoint),
      ...words(services['temporal-schema'].command),
    ];
    const scriptPath = command.find((w) => w.endsWith('.sh'));
    expect(scriptPath).toBeDefined();
    const hostScript = hostPathFor('temporal-schema', scriptPath!);
    expect(hostScript && existsSync(hostScript)).toBe(true);
    const script = readFileSync(hostScript!, 'utf8');
    for (const needle of [
      'temporal-sql-tool',
      'create-database',
      'setup-schema',
      'update-schema',
      '/etc/temporal/schema/postgresql/v12',
      'temporal/versioned',
      'visibility/versioned',
      'temporal_visibility',
    ]) {
      expect({ needle, found: script.includes(needle) }).toEqual({ needle, found: true });
    }
    const env = envOf('temporal-schema');
    expect(env).toMatchObject({ SQL_PLUGIN: 'postgres12', SQL_HOST: 'postgres' });
    expect(env.SQL_PASSWORD).toBe(envOf('postgres').POSTGRES_PASSWORD);
  });

  it('creates the namespace and registers the four search attributes as Keyword', () => {
    const command = words(services['temporal-setup'].command);
    expect(command).toContain('namespace');
    for (const attribute of SEARCH_ATTRIBUTES) expect(command).toContain(`${attribute}=Keyword`);
    const env = envOf('temporal-setup');
    expect(env.TEMPORAL_ADDRESS).toBe('temporal:7233');
    expect(env.TEMPORAL_NAMESPACE).toBe(envOf('barge-worker').BARGE_TEMPORAL_NAMESPACE);
    expect(env.TEMPORAL_NAMESPACE_RETENTION).toMatch(/^\d+h$/);
  });

  it('publishes the API on 8000 and the Temporal Web UI on 8233', () => {
    expect(publishedPorts('barge-api')).toContainEqual({ host: 8000, container: 8000 });
    expect(publishedPorts('temporal-ui')).toContainEqual({ host: 8233, container: 8080 });
    expect(envOf('temporal-ui').TEMPORAL_ADDRESS).toBe('temporal:7233');
  });

  it('runs MinIO with a console, a volume and credentials from the environment', () => {
    expect(words(services.minio.command)).toEqual(['server', '/data', '--console-address', ':9001']);
    expect(services.minio.environment).toMatchObject({
      MINIO_ROOT_USER: expect.stringMatching(/^\$\{MINIO_ROOT_USER:-.+\}$/),
      MINIO_ROOT_PASSWORD: expect.stringMatching(/^\$\{MINIO_ROOT_PASSWORD:-.+\}$/),
    });
    expect(envOf('minio').MINIO_ROOT_PASSWORD.length).toBeGreaterThanOrEqual(8); // MinIO's minimum
  });

  it('keeps data in named volumes', () => {
    const named = Object.keys(compose.volumes ?? {});
    for (const [name, target] of [
      ['postgres', '/var/lib/postgresql/data'],
      ['minio', '/data'],
    ]) {
      const mount = (services[name].volumes ?? []).map(String).find((v) => v.endsWith(`:${target}`));
      expect({ name, mount }).toEqual({ name, mount: expect.any(String) });
      expect(named).toContain(mount!.split(':')[0]);
    }
  });

  describe.each(BARGE)('%s', (name) => {
    const env = envOf(name);
    const configFile = hostPathFor(name, env.BARGE_CONFIG);
    let config: BargeConfig;

    beforeAll(() => {
      // Same as in the container, except that BARGE_CONFIG points at the mounted file in the repo.
      config = buildConfig({ ...env, BARGE_CONFIG: configFile });
    });

    it('is built from the repository Dockerfile', () => {
      expect(services[name].build).toBeDefined();
      expect(services[name].image).toBe(services['barge-api'].image);
    });

    it('mounts deploy/barge.yaml as BARGE_CONFIG', () => {
      expect(env.BARGE_CONFIG).toBe('/etc/barge/barge.yaml');
      expect(configFile).toBe(join(ROOT, 'deploy/barge.yaml'));
    });

    it('has every setting the configuration requires, pointing at real services', () => {
      expect(hostOf(config.postgres.url)).toBe('postgres');
      expect(hostOf(config.storage.endpoint)).toBe('minio');
      expect(config.temporal.address.split(':')[0]).toBe('temporal');
      for (const host of [hostOf(config.postgres.url), hostOf(config.storage.endpoint), 'temporal']) {
        expect(Object.keys(services)).toContain(host);
      }
      expect(config.api).toMatchObject({ host: '0.0.0.0', port: 8000 });
      expect(config.storage.accessKey).toBe(envOf('minio').MINIO_ROOT_USER);
      expect(config.storage.secretKey).toBe(envOf('minio').MINIO_ROOT_PASSWORD);
      const pg = new URL(config.postgres.url);
      expect(decodeURIComponent(pg.username)).toBe(envOf('postgres').POSTGRES_USER);
      expect(decodeURIComponent(pg.password)).toBe(envOf('postgres').POSTGRES_PASSWORD);
      expect(pg.pathname).toBe(`/${envOf('postgres').POSTGRES_DB}`);
    });

    it('loads the upstream registry and passes its API keys through', () => {
      expect(config.upstreams.map((u) => u.name)).toContain('openai');
      const openai = config.upstreams.find((u) => u.name === 'openai')!;
      expect(openai.baseUrl).toBe('https://api.openai.com/v1');
      for (const upstream of config.upstreams) {
        if (upstream.apiKeyEnv) expect(Object.keys(envOf(name))).toContain(upstream.apiKeyEnv);
      }
      const raw = services[name].environment as Record<string, string>;
      expect(raw.OPENAI_API_KEY).toBe('${OPENAI_API_KEY:-}');
    });

    it('runs a file the build produces', () => {
      const command = words(services[name].command);
      expect(command[0]).toBe('node');
      expect(emittedEntryPoints()).toContain(command[1]);
    });
  });

  it('gives the worker time to checkpoint in-flight activities on shutdown', () => {
    const config = buildConfig({
      ...envOf('barge-worker'),
      BARGE_CONFIG: hostPathFor('barge-worker', envOf('barge-worker').BARGE_CONFIG),
    });
    const grace = services['barge-worker'].stop_grace_period;
    expect(grace).toBeDefined();
    expect(durationSeconds(grace!)).toBeGreaterThan(config.temporal.shutdownGraceSeconds);
  });

  it('caps the worker heap, and only the worker, as scripts/stack.sh and the bench do', () => {
    const stackDefault = /^WORKER_NODE_OPTIONS="(.+)"$/m.exec(read('scripts/stack.sh'))?.[1];
    expect(stackDefault).toMatch(/^--max-old-space-size=\d+ --max-semi-space-size=\d+$/);
    expect(envOf('barge-worker').NODE_OPTIONS).toBe(stackDefault);
    expect(WORKER_NODE_OPTIONS).toBe(stackDefault);
    expect(envOf('barge-api').NODE_OPTIONS).toBeUndefined();
  });

  it('runs the API and worker with the entry points of src/main.ts and src/worker.ts', () => {
    expect(words(services['barge-api'].command)).toEqual(['node', emittedPath('src/main.ts')]);
    expect(words(services['barge-worker'].command)).toEqual(['node', emittedPath('src/worker.ts')]);
  });

  it('interpolates secrets with defaults and says that production must override them', () => {
    const text = read('docker-compose.yml');
    for (const variable of ['POSTGRES_PASSWORD', 'MINIO_ROOT_PASSWORD', 'GRAFANA_ADMIN_PASSWORD']) {
      expect(text).toMatch(new RegExp(`\\$\\{${variable}:-[^}]+\\}`));
    }
    expect(text).toMatch(/production must override/i);
  });
});

describe('monitoring in docker-compose.yml', () => {
  const workerConfig = () =>
    buildConfig({
      ...envOf('barge-worker'),
      BARGE_CONFIG: hostPathFor('barge-worker', envOf('barge-worker').BARGE_CONFIG),
    });
  const mounted = (name: string, containerPath: string): string => {
    const host = hostPathFor(name, containerPath);
    expect({ name, containerPath, mounted: host !== undefined && existsSync(host) }).toEqual({
      name,
      containerPath,
      mounted: true,
    });
    return host!;
  };

  it('runs Prometheus with deploy/prometheus.yml and the alert rules it loads', () => {
    expect(services.prometheus.image).toMatch(/^prom\/prometheus:v3\.\d+\.\d+$/);
    expect(words(services.prometheus.healthcheck?.test).join(' ')).toContain('/-/ready');
    const configPath = words(services.prometheus.command)
      .find((w) => w.startsWith('--config.file='))!
      .split('=')[1];
    const config = parseYaml(readFileSync(mounted('prometheus', configPath), 'utf8')) as {
      rule_files: string[];
      scrape_configs: {
        job_name: string;
        static_configs?: { targets: string[] }[];
        dns_sd_configs?: { names: string[]; port: number }[];
      }[];
    };
    for (const rules of config.rule_files) mounted('prometheus', rules);
    expect(config.rule_files).toEqual(['/etc/prometheus/alerts.yml']);
    expect(hostPathFor('prometheus', '/etc/prometheus/alerts.yml')).toBe(
      join(ROOT, 'deploy/prometheus/alerts.yml'),
    );
    const jobs = Object.fromEntries(config.scrape_configs.map((j) => [j.job_name, j]));
    // The API's own port and the worker's configured metrics port, by service name.
    const api = buildConfig({
      ...envOf('barge-api'),
      BARGE_CONFIG: hostPathFor('barge-api', '/etc/barge/barge.yaml'),
    });
    expect(jobs['barge-api'].static_configs).toEqual([{ targets: [`barge-api:${api.api.port}`] }]);
    const worker = workerConfig();
    expect(jobs['barge-worker'].dns_sd_configs).toEqual([
      expect.objectContaining({ names: ['barge-worker'], port: worker.worker.metricsPort }),
    ]);
  });

  it("exposes the worker's metrics port to the compose network, not the host", () => {
    const worker = workerConfig();
    expect(worker.worker).toMatchObject({ metricsHost: '0.0.0.0', metricsPort: 9464 });
    expect(publishedPorts('barge-worker')).toEqual([]);
    expect(words(services['barge-worker'].healthcheck?.test).join(' ')).toContain(
      `http://127.0.0.1:${worker.worker.metricsPort}/metrics`,
    );
  });

  it('runs Grafana with the provisioned datasource and dashboard', () => {
    expect(services.grafana.image).toMatch(/^grafana\/grafana:\d+\.\d+\.\d+$/);
    expect(words(services.grafana.healthcheck?.test).join(' ')).toContain('/api/health');
    expect(dependencies('grafana')).toMatchObject({ prometheus: 'service_healthy' });
    expect(mounted('grafana', '/etc/grafana/provisioning')).toBe(join(ROOT, 'deploy/grafana/provisioning'));
    const provider = parseYaml(read('deploy/grafana/provisioning/dashboards/barge.yml')) as {
      providers: { options: { path: string } }[];
    };
    const dashboards = mounted('grafana', provider.providers[0].options.path);
    expect(existsSync(join(dashboards, 'barge.json'))).toBe(true);
    const datasource = (
      parseYaml(read('deploy/grafana/provisioning/datasources/prometheus.yml')) as {
        datasources: { url: string }[];
      }
    ).datasources[0];
    const url = new URL(datasource.url);
    expect(Object.keys(services)).toContain(url.hostname);
    expect(publishedPorts(url.hostname).map((p) => p.container)).toContain(Number(url.port));
    expect(envOf('grafana').GF_DASHBOARDS_DEFAULT_HOME_DASHBOARD_PATH).toBe(
      `${provider.providers[0].options.path}/barge.json`,
    );
  });
});

/** Where `npm run build` (tsc -p tsconfig.build.json) writes the JavaScript for a source file. */
function emittedPath(source: string): string {
  const file = join(ROOT, source);
  expect({ source, exists: existsSync(file) }).toEqual({ source, exists: true });
  const configPath = join(ROOT, 'tsconfig.build.json');
  const { config, error } = ts.readConfigFile(configPath, ts.sys.readFile);
  if (error) throw new Error(ts.flattenDiagnosticMessageText(error.messageText, '\n'));
  const parsed = ts.parseJsonConfigFileContent(config, ts.sys, ROOT, undefined, configPath);
  expect({ source, included: parsed.fileNames.map((f) => resolve(f)).includes(file) }).toEqual({
    source,
    included: true,
  });
  const js = ts.getOutputFileNames(parsed, file, false).find((f) => f.endsWith('.js'));
  expect(js).toBeDefined();
  return resolve(js!)
    .slice(ROOT.length + 1)
    .split('\\')
    .join('/');
}

function emittedEntryPoints(): string[] {
  return ['src/main.ts', 'src/worker.ts'].map(emittedPath);
}

describe('Dockerfile', () => {
  const dockerfile = read('Dockerfile');
  const lines = dockerfile
    .replace(/\\\n/g, ' ')
    .split('\n')
    .map((l) => l.trim())
    .filter((l) => l && !l.startsWith('#'));
  const args = Object.fromEntries(
    lines
      .filter((l) => /^ARG\s+\w+=/.test(l))
      .map((l) => l.replace(/^ARG\s+/, '').split('=') as [string, string]),
  );
  const froms = lines
    .filter((l) => /^FROM\s/i.test(l))
    .map((l) => l.split(/\s+/)[1].replace(/\$\{(\w+)\}|\$(\w+)/g, (_m, a, b) => args[a ?? b] ?? ''));

  it('is multi-stage on a pinned node:20 bookworm-slim image', () => {
    expect(froms.length).toBeGreaterThanOrEqual(2);
    for (const image of froms)
      expect(image).toMatch(/^node:20\.\d+\.\d+-bookworm-slim(@sha256:[0-9a-f]{64})?$/);
  });

  it('builds with npm ci and npm run build, and installs production dependencies only at runtime', () => {
    const stages = dockerfile.split(/^FROM\s/m).slice(1);
    const runtime = stages[stages.length - 1];
    expect(stages.slice(0, -1).join('\n')).toMatch(/RUN npm ci\b/);
    expect(stages.slice(0, -1).join('\n')).toMatch(/RUN npm run build/);
    expect(runtime).toMatch(/npm ci --omit=dev/);
    expect(runtime).toMatch(/COPY --from=\S+ \/app\/dist \.\/dist/);
    expect(runtime).toMatch(/^ENV NODE_ENV=production/m);
    const user = runtime.match(/^USER\s+(\S+)/m)?.[1];
    expect(user).toBeDefined();
    expect(['root', '0']).not.toContain(user);
  });

  it('starts the API by default with the file the build emits for src/main.ts', () => {
    const cmd = lines.filter((l) => l.startsWith('CMD')).pop();
    expect(cmd).toBeDefined();
    expect(JSON.parse(cmd!.replace(/^CMD\s+/, ''))).toEqual(['node', emittedPath('src/main.ts')]);
  });

  it('has a .dockerignore that keeps local state out of the build context', () => {
    const ignored = read('.dockerignore')
      .split('\n')
      .map((l) => l.trim());
    for (const entry of ['node_modules', 'dist', '.barge', '.git']) expect(ignored).toContain(entry);
  });
});
