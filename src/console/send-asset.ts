import type { Request, Response } from 'express';
import type { Asset } from './assets';
import { setPageSecurityHeaders } from './security-headers';

/**
 * Answers with `asset`: revalidated on every use (no-cache with an ETag costs a 304 of a few
 * bytes), so a browser never runs a stale script against a newer API.
 */
export function sendAsset(
  req: Request,
  res: Response,
  asset: Asset,
  options: { imgData?: boolean } = {},
): void {
  setPageSecurityHeaders(res, options);
  res.set({ 'Cache-Control': 'no-cache', ETag: asset.etag, 'Content-Type': asset.contentType });
  if (req.headers['if-none-match'] === asset.etag) {
    res.status(304).end();
    return;
  }
  res.set('Content-Length', String(asset.body.length));
  res.status(200).end(asset.body);
}
