import { existsSync, mkdirSync, readFileSync } from 'node:fs';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import type OpenAI from 'openai';
import type { Browser, BrowserContext, Page } from 'playwright-core';
import { createTenantKey, openaiFor, uniqueTenant } from '../support/api';
import { chatLine, downloadLines, InputLine, submitBatch, waitForStatus } from '../support/batches';
import { guardLoopback, launchChromium, pageProblems } from '../support/browser';
import { apiUrl, ROOT, waitFor } from '../support/stack';

/**
 * The web console in a real browser (Debian's Chromium, headless, driven by playwright-core):
 * what a user does, by keyboard where it matters, with every request the page makes kept on
 * loopback.
 */

/** `n` chat lines whose answers arrive spread over `spreadMs`; the ids in `failing` get a 400. */
function spreadLines(n: number, spreadMs: number, failing: Set<number> = new Set()): InputLine[] {
  return Array.from({ length: n }, (_, i) =>
    chatLine(`req-${i}`, {
      simulate: {
        latency_ms: Math.round((spreadMs * i) / n),
        ...(failing.has(i) && { fail_times: 99, fail_status: 400 }),
      },
    }),
  );
}

const jsonl = (lines: InputLine[]) => Buffer.from(lines.map((l) => JSON.stringify(l)).join('\n') + '\n');

interface ProgressReading {
  value: number | null;
  max: number;
  status: string;
}

async function progressOf(page: Page, batchId: string): Promise<ProgressReading> {
  const card = page.locator(`article[data-batch-id="${batchId}"]`);
  return card.evaluate((el) => {
    const bar = el.querySelector('progress')!;
    return {
      value: bar.hasAttribute('value') ? bar.value : null,
      max: bar.max,
      status: el.querySelector('.status')!.textContent ?? '',
    };
  });
}

describe('web console (headless Chromium)', () => {
  let browser: Browser;
  let context: BrowserContext;
  let page: Page;
  let key: string;
  let client: OpenAI;
  let traffic: { requests: string[]; offLoopback: string[] };
  let problems: string[];
  let downloads: string;
  const base = apiUrl();

  beforeAll(async () => {
    key = await createTenantKey(uniqueTenant('console'));
    client = openaiFor(key, { maxRetries: 0 });
    browser = await launchChromium();
    context = await browser.newContext({ viewport: { width: 1200, height: 900 }, acceptDownloads: true });
    traffic = await guardLoopback(context);
    page = await context.newPage();
    problems = pageProblems(page);
    downloads = await mkdtemp(join(tmpdir(), 'barge-console-'));
  });

  afterAll(async () => {
    await browser?.close();
    if (downloads) await rm(downloads, { recursive: true, force: true });
  });

  afterEach(() => {
    // Every test: nothing left loopback, no script error, nothing the policy had to refuse.
    expect(traffic.offLoopback).toEqual([]);
    expect(problems).toEqual([]);
  });

  it('serves the page and every asset itself, under a strict Content-Security-Policy', async () => {
    const res = await fetch(`${base}/console`);
    expect(res.status).toBe(200);
    const csp = res.headers.get('content-security-policy') ?? '';
    expect(csp).toContain("default-src 'none'");
    expect(csp).toContain("script-src 'self'");
    expect(csp).toContain("form-action 'none'");
    expect(csp).not.toContain('unsafe-inline');
    const html = await res.text();
    expect(html).not.toMatch(/<script(?![^>]*\bsrc=)[^>]*>/); // no inline script
    expect(html).not.toMatch(/(src|href)="(https?:)?\/\//); // nothing from another origin
    // The completion windows the server accepts, filled in by the server.
    expect(html).toContain('content="24h 48h 20s"');
    const unknown = await fetch(`${base}/console/assets/secret.txt`);
    expect(unknown.status).toBe(404);
  });

  it('signs in by keyboard; the key stays in this tab (sessionStorage), never in the URL', async () => {
    await page.goto(`${base}/console`);
    // The form has the focus, and the order is: key, then the button.
    await expect(page.evaluate('document.activeElement?.id')).resolves.toBe('api-key');
    await page.keyboard.type('sk-barge-not-a-real-key');
    await page.keyboard.press('Enter');
    await waitFor('the refusal', async () =>
      (await page.locator('#sign-in-error').textContent())?.includes('refused'),
    );
    await page.getByLabel('API key').fill(key);
    await page.keyboard.press('Tab');
    await expect(page.evaluate('document.activeElement?.textContent')).resolves.toBe('Sign in');
    await page.keyboard.press('Enter');
    await page.getByRole('heading', { name: 'Batches', exact: true }).waitFor();

    expect(page.url()).toBe(`${base}/console`);
    expect(page.url()).not.toContain(key);
    // (Page code as text: this file is compiled without the DOM's types.)
    const storage = await page.evaluate(`({
      session: sessionStorage.getItem('barge.apiKey'),
      local: Object.keys(localStorage).length,
      cookie: document.cookie,
    })`);
    expect(storage).toEqual({ session: key, local: 0, cookie: '' });
    expect(traffic.requests.some((url) => url.includes(key))).toBe(false);
  });

  it('uploads a JSONL file, creates a batch, and shows its progress moving until completed', async () => {
    const lines = spreadLines(30, 9_000, new Set([4, 17]));
    await page.getByLabel('JSONL file').setInputFiles({
      name: 'requests.jsonl',
      mimeType: 'application/jsonl',
      buffer: jsonl(lines),
    });
    await page.getByLabel('Description').fill('console test');
    await page.getByRole('button', { name: 'Upload and create' }).click();
    await waitFor('the batch created', async () =>
      /Created batch_/.test((await page.locator('#new-batch-status').textContent()) ?? ''),
    );
    const batchId = (await page.locator('#batch-list article').first().getAttribute('data-batch-id'))!;
    expect(batchId).toMatch(/^batch_/);
    const created = await client.batches.retrieve(batchId);
    expect(created).toMatchObject({
      endpoint: '/v1/chat/completions',
      metadata: { description: 'console test' },
    });

    // Read the bar as the page updates it, until the batch ends.
    const readings: ProgressReading[] = [];
    await waitFor(
      'the batch to show completed',
      async () => {
        const reading = await progressOf(page, batchId);
        readings.push(reading);
        return reading.status === 'completed';
      },
      45_000,
    );
    const values = readings.map((r) => r.value);
    const partial = values.filter((v): v is number => v !== null && v > 0 && v < 30);
    expect(partial.length).toBeGreaterThan(0); // the bar moved through the middle
    expect(readings[readings.length - 1]).toEqual({ value: 30, max: 30, status: 'completed' });
    // Never backwards.
    const numbers = values.filter((v): v is number => v !== null);
    expect(numbers).toEqual([...numbers].sort((a, b) => a - b));

    const card = page.locator(`article[data-batch-id="${batchId}"]`);
    await expect(card.locator('.counts').textContent()).resolves.toBe(
      '30 of 30 done · 28 completed · 2 failed',
    );
    await expect(card.locator('.timeline').textContent()).resolves.toMatch(
      /created.*in progress.*finalizing.*completed/,
    );
    await expect(page.locator('#live').textContent()).resolves.toContain(`${batchId} is now completed`);

    // Download the output file: the same bytes as the API's.
    const downloadEvent = page.waitForEvent('download');
    await card.getByRole('button', { name: /Download output/ }).click();
    const download = await downloadEvent;
    const saved = join(downloads, download.suggestedFilename());
    await download.saveAs(saved);
    const batch = await client.batches.retrieve(batchId);
    const expected = Buffer.from(await (await client.files.content(batch.output_file_id!)).arrayBuffer());
    expect(await readFile(saved)).toEqual(expected);
    expect(download.suggestedFilename()).toMatch(/\.jsonl$/);
    expect(expected.toString().trim().split('\n')).toHaveLength(28);

    // Its own page: the failures, with their ids and the upstream's answer.
    await card.getByRole('link', { name: batchId }).click();
    await page.getByRole('heading', { name: `Batch ${batchId}` }).waitFor();
    const rows = page.locator('table.failures tbody tr');
    await waitFor('the failures table', async () => (await rows.count()) === 2);
    const failed = await rows.locator('td:first-child').allTextContents();
    expect(failed.sort()).toEqual(['req-17', 'req-4']);
    await expect(rows.first().locator('td').nth(1).textContent()).resolves.toBe('400');
    const errorLines = await downloadLines(client, batch.error_file_id);
    expect(errorLines.map((l) => l.custom_id).sort()).toEqual(['req-17', 'req-4']);

    // Retry: offered exactly when the server has the endpoint (GET on it: 405 there, 404 not).
    const probe = await fetch(`${base}/v1/batches/${batchId}/retry`, {
      headers: { authorization: `Bearer ${key}` },
    });
    const retry = page.getByRole('button', { name: 'Retry failed requests' });
    if (probe.status === 404) await expect(retry.isHidden()).resolves.toBe(true);
    else {
      expect(probe.status).toBe(405);
      await retry.waitFor();
    }
  });

  it('shows rate and ETA on the page of a running batch, and cancels it', async () => {
    const batch = await submitBatch(client, spreadLines(40, 120_000));
    await page.goto(`${base}/console/batches/${batch.id}`);
    const card = page.locator(`article[data-batch-id="${batch.id}"]`);
    await waitFor('a rate', async () => {
      const rate = await card.locator('.stats div', { hasText: 'Rate' }).locator('dd').textContent();
      return rate !== null && /requests\/s$/.test(rate);
    });
    await expect(card.locator('.stats div', { hasText: 'ETA' }).locator('dd').textContent()).resolves.toMatch(
      /\d+ (s|min)/,
    );

    const cancel = card.getByRole('button', { name: 'Cancel batch' });
    await cancel.focus();
    await page.keyboard.press('Enter');
    await waitFor(
      'cancelled in the page',
      async () => (await progressOf(page, batch.id)).status === 'cancelled',
    );
    const ended = await waitForStatus(client, batch.id, ['cancelled']);
    expect(ended.request_counts!.completed).toBeLessThan(40);
    await expect(cancel.isHidden()).resolves.toBe(true);
    // The focus did not fall off the page with the button.
    await expect(page.evaluate('document.activeElement?.tagName')).resolves.toBe('A');
  });

  it('takes a screenshot of the console with a running batch (docs/console.png)', async () => {
    // A batch still running, beside the ended ones above.
    // Answers spread over 20 s: a quarter done after ~5 s, the rest still running well after.
    const batch = await submitBatch(client, spreadLines(60, 20_000, new Set([7, 21])), {
      metadata: { description: 'nightly eval, 60 prompts' },
    });
    await page.goto(`${base}/console`);
    await waitFor(
      'the running batch part done',
      async () => {
        const { value } = await progressOf(page, batch.id);
        return value !== null && value >= 15;
      },
      45_000,
    );
    // BARGE_CONSOLE_SCREENSHOT=docs/console.png npm test -- test/console renews the README's picture.
    const target = process.env.BARGE_CONSOLE_SCREENSHOT ?? join(ROOT, '.barge/test/console.png');
    mkdirSync(dirname(target), { recursive: true });
    await page.screenshot({ path: target, fullPage: true });
    expect(existsSync(target)).toBe(true);
    await client.batches.cancel(batch.id); // nothing left running for the next test files
    await waitForStatus(client, batch.id, ['cancelled']);
  });

  it('signs out: the key is gone from the tab, and the API never logged it', async () => {
    await page.getByRole('button', { name: 'Sign out' }).click();
    await page.getByRole('heading', { name: 'Sign in' }).waitFor();
    await expect(page.evaluate('sessionStorage.length')).resolves.toBe(0);
    const log = join(ROOT, '.barge/test/logs/api.log');
    expect(existsSync(log)).toBe(true);
    expect(readFileSync(log, 'utf8')).not.toContain(key);
  });
});
