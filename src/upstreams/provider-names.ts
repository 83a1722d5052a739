import type { BargeConfig } from '../config/config';

/** The upstream name used when no upstream is configured and every model goes to the simulator. */
export const SIMULATOR_UPSTREAM = 'simulator';

/** Names a batch may pin with the provider header; the API checks them without building a gateway. */
export function providerNames(config: BargeConfig): string[] {
  if (config.upstreams.length > 0) return config.upstreams.map((u) => u.name);
  return config.simulatorUrl ? [SIMULATOR_UPSTREAM] : [];
}
