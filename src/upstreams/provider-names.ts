import type { BargeConfig, UpstreamConfig } from '../config/config';

/** The upstream name used when no upstream is configured and every model goes to the simulator. */
export const SIMULATOR_UPSTREAM = 'simulator';

/**
 * The upstreams in effect: the configured ones; or, when there are none and `simulatorUrl` is
 * set, a single keyless `simulator` upstream serving every model. The simulator is built to
 * take far more load than a real provider, hence its generous concurrency.
 */
export function effectiveUpstreams(config: BargeConfig): UpstreamConfig[] {
  if (config.upstreams.length > 0 || !config.simulatorUrl) return config.upstreams;
  return [
    {
      name: SIMULATOR_UPSTREAM,
      baseUrl: config.simulatorUrl,
      headers: {},
      timeoutMs: 600_000,
      models: ['*'],
      aliases: {},
      priority: 100,
      limits: { maxConcurrency: 256, models: {} },
    },
  ];
}

/** Names a batch may pin with the provider header; the API checks them without building a gateway. */
export function providerNames(config: BargeConfig): string[] {
  return effectiveUpstreams(config).map((u) => u.name);
}
