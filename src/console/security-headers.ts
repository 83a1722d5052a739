import type { Response } from 'express';

/**
 * Headers for the HTML pages Barge serves (the console, the API docs). The policy allows only
 * Barge's own origin: no inline script, no CDN, no framing; `form-action 'none'` means no form
 * can ever be submitted (the console's forms are handled by its script, so a key typed into
 * one cannot end up in a URL even if the script failed to load).
 */
export function setPageSecurityHeaders(res: Response, extra: { imgData?: boolean } = {}): void {
  const csp = [
    "default-src 'none'",
    "script-src 'self'",
    "style-src 'self'",
    `img-src 'self'${extra.imgData ? ' data:' : ''}`,
    "connect-src 'self'",
    "font-src 'self'",
    "manifest-src 'self'",
    "form-action 'none'",
    "frame-ancestors 'none'",
    "base-uri 'none'",
  ].join('; ');
  res.set({
    'Content-Security-Policy': csp,
    'X-Content-Type-Options': 'nosniff',
    'X-Frame-Options': 'DENY',
    'Referrer-Policy': 'no-referrer',
    'Cross-Origin-Opener-Policy': 'same-origin',
    'Cross-Origin-Resource-Policy': 'same-origin',
  });
}
