import { execFileSync } from 'node:child_process';
import { Browser, BrowserContext, chromium, Page } from 'playwright-core';

/**
 * Headless Chromium from the distribution's package (scripts/install.sh ensure_chromium),
 * driven by playwright-core, which never downloads a browser of its own.
 */
export function chromiumPath(): string {
  try {
    return execFileSync('sh', ['-c', 'command -v chromium || command -v chromium-browser'], {
      encoding: 'utf8',
    }).trim();
  } catch {
    throw new Error("Chromium not found: install Debian's chromium package (scripts/install.sh does)");
  }
}

/**
 * The flags keep Chromium from calling home (updates, sync, field trials, QUIC probes): on a
 * closed network those calls fail by the dozen, and a test must send nothing off loopback.
 */
export function launchChromium(): Promise<Browser> {
  return chromium.launch({
    executablePath: chromiumPath(),
    headless: true,
    args: [
      '--no-sandbox',
      '--disable-gpu',
      '--disable-quic',
      '--no-first-run',
      '--disable-background-networking',
      '--disable-component-update',
      '--disable-sync',
      '--disable-default-apps',
    ],
  });
}

const LOOPBACK = new Set(['127.0.0.1', 'localhost', '[::1]']);

/**
 * Every request pages of `context` make, with those to anything but loopback refused before
 * they leave: `offLoopback` lists them (a test asserts it stays empty).
 */
export async function guardLoopback(
  context: BrowserContext,
): Promise<{ requests: string[]; offLoopback: string[] }> {
  const seen = { requests: [] as string[], offLoopback: [] as string[] };
  await context.route('**/*', async (route) => {
    const url = route.request().url();
    seen.requests.push(url);
    const { protocol, hostname } = new URL(url);
    if ((protocol === 'http:' || protocol === 'https:') && LOOPBACK.has(hostname)) await route.continue();
    else {
      seen.offLoopback.push(url);
      await route.abort('blockedbyclient');
    }
  });
  return seen;
}

/**
 * What goes wrong in `page` that a user would not see: script exceptions, and resources the
 * Content-Security-Policy refused (Chromium reports those on the console).
 */
export function pageProblems(page: Page): string[] {
  const problems: string[] = [];
  page.on('pageerror', (err) => problems.push(`exception: ${err.message}`));
  page.on('console', (message) => {
    if (message.type() === 'error' && /Content Security Policy/i.test(message.text())) {
      problems.push(`csp: ${message.text()}`);
    }
  });
  return problems;
}
