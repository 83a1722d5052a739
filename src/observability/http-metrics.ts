import type { NextFunction, Request, Response } from 'express';
import type { HistogramSeries, Metrics } from './metrics';

/** Not measured: Prometheus's own scrapes would only measure themselves. */
const UNMEASURED = new Set(['/metrics']);

/**
 * API request durations by method, route pattern and status, observed when the answer has
 * been sent. The route is Express's pattern (`/v1/batches/:batch_id`), never the raw path:
 * ids would make one series per batch. Requests answered before any route matched (unknown
 * paths, a body refused by the parser) count as `unmatched`.
 */
export function httpMetrics(metrics: Metrics) {
  const series = new Map<string, HistogramSeries>();
  return (req: Request, res: Response, next: NextFunction): void => {
    if (UNMEASURED.has(req.path)) return next();
    const startedAt = process.hrtime.bigint();
    res.once('finish', () => {
      const seconds = Number(process.hrtime.bigint() - startedAt) / 1e9;
      const route = routeOf(req);
      const key = `${req.method} ${route} ${res.statusCode}`;
      let s = series.get(key);
      if (!s) {
        s = metrics.httpSeconds.labels(req.method, route, String(res.statusCode));
        series.set(key, s);
      }
      s.observe(seconds);
    });
    next();
  };
}

/** The pattern of the route that answered, or `unmatched`. */
export function routeOf(req: Request): string {
  const path = (req.route as { path?: unknown } | undefined)?.path;
  return typeof path === 'string' ? `${req.baseUrl}${path}` : 'unmatched';
}

/** The route that streams a file's bytes (src/files/files.controller.ts). */
const CONTENT_ROUTE = '/v1/files/:id/content';

/**
 * File bytes sent: a download's Content-Length, counted once its answer has been sent in
 * full (a client that hangs up mid-download is not counted). Uploads are counted where they
 * are stored (FileUploadService), as the stored size.
 */
export function fileBytes(metrics: Metrics) {
  const downloaded = metrics.fileBytes.labels('downloaded');
  return (req: Request, res: Response, next: NextFunction): void => {
    if (req.method === 'GET') {
      res.once('finish', () => {
        if ((res.statusCode !== 200 && res.statusCode !== 206) || routeOf(req) !== CONTENT_ROUTE) return;
        const bytes = Number(res.getHeader('content-length'));
        if (Number.isFinite(bytes) && bytes > 0) downloaded.inc(bytes);
      });
    }
    next();
  };
}
