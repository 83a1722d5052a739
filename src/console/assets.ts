import { createHash } from 'node:crypto';
import { existsSync, readFileSync } from 'node:fs';
import { extname, join } from 'node:path';

/** One static file of the console, read once at start: the whole console is a few kilobytes. */
export interface Asset {
  body: Buffer;
  contentType: string;
  /** Strong validator: the content's hash, so a redeploy invalidates what browsers cached. */
  etag: string;
}

const CONTENT_TYPES: Record<string, string> = {
  '.html': 'text/html; charset=utf-8',
  '.js': 'text/javascript; charset=utf-8',
  '.css': 'text/css; charset=utf-8',
  '.svg': 'image/svg+xml',
};

/**
 * The folder of the console's files. They are plain files in the sources (no build step), and
 * tsc copies nothing but code into dist/, so from dist/src/console the sources' copy is used.
 */
export function consoleAssetDir(): string {
  const candidates = [
    join(__dirname, 'public'),
    join(__dirname, '..', '..', '..', 'src', 'console', 'public'),
  ];
  const found = candidates.find((dir) => existsSync(join(dir, 'index.html')));
  if (!found) throw new Error(`the console's files are missing (looked in ${candidates.join(', ')})`);
  return found;
}

export function loadAsset(path: string, transform?: (text: string) => string): Asset {
  const raw = readFileSync(path);
  const body = transform ? Buffer.from(transform(raw.toString('utf8'))) : raw;
  const contentType = CONTENT_TYPES[extname(path)];
  if (!contentType) throw new Error(`no content type for ${path}`);
  const etag = `"${createHash('sha256').update(body).digest('base64url').slice(0, 22)}"`;
  return { body, contentType, etag };
}
