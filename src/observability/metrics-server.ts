import { createServer, type Server } from 'node:http';
import { createServer as createNetServer, type AddressInfo } from 'node:net';
import type { Logger } from './logger';
import type { Metrics } from './metrics';

export interface MetricsServerOptions {
  host: string;
  port: number;
  metrics: Metrics;
  /**
   * More exposition text appended to every scrape (the Temporal runtime's metrics), so
   * Prometheus needs one target per worker. Resolves to '' when there is nothing to add.
   */
  extra?: () => Promise<string>;
  logger: Logger;
}

export interface MetricsServer {
  url: string;
  close(): Promise<void>;
}

/**
 * The worker's metrics-only HTTP server: GET /metrics answers Barge's registry followed by the
 * Temporal runtime's metrics; nothing else is served. No authentication: bind it to an
 * address only Prometheus reaches (the default is loopback).
 */
export async function startMetricsServer(options: MetricsServerOptions): Promise<MetricsServer> {
  const { metrics, extra, logger } = options;
  const server: Server = createServer((req, res) => {
    const path = (req.url ?? '').split('?')[0];
    if (path !== '/metrics' || (req.method !== 'GET' && req.method !== 'HEAD')) {
      res.writeHead(404, { 'content-type': 'text/plain' }).end('not found; metrics are at /metrics\n');
      return;
    }
    Promise.all([metrics.scrape(), extra ? extra() : Promise.resolve('')])
      .then(([own, appended]) => {
        res.writeHead(200, { 'content-type': metrics.contentType });
        res.end(appended ? `${own}\n${appended}` : own);
      })
      .catch((error: unknown) => {
        logger.warn({ err: error }, 'metrics scrape failed');
        res.writeHead(500, { 'content-type': 'text/plain' }).end('metrics unavailable\n');
      });
  });
  server.keepAliveTimeout = 65_000;
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(options.port, options.host, () => {
      server.off('error', reject);
      resolve();
    });
  });
  const { port } = server.address() as AddressInfo;
  const url = `http://${options.host.includes(':') ? `[${options.host}]` : options.host}:${port}/metrics`;
  return {
    url,
    close: () =>
      new Promise<void>((resolve) => {
        server.close(() => resolve());
        server.closeAllConnections();
      }),
  };
}

/**
 * Fetches another exporter's exposition text (Temporal's, on loopback). A failed or slow
 * scrape answers a comment instead, so Barge's own metrics are still served.
 */
export function scrapeText(url: string, timeoutMs = 2_000): () => Promise<string> {
  return async () => {
    try {
      const res = await fetch(url, { signal: AbortSignal.timeout(timeoutMs) });
      if (!res.ok) return `# ${url} answered HTTP ${res.status}\n`;
      return await res.text();
    } catch (error) {
      return `# ${url} could not be scraped: ${(error as Error).message}\n`;
    }
  };
}

/** A loopback port free right now (for an exporter that cannot report the port it bound). */
export function freeLoopbackPort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const probe = createNetServer();
    probe.unref();
    probe.once('error', reject);
    probe.listen(0, '127.0.0.1', () => {
      const { port } = probe.address() as AddressInfo;
      probe.close(() => resolve(port));
    });
  });
}
