import OpenAI, { toFile } from 'openai';
import type { Batch, BatchCreateParams } from 'openai/resources/batches';

export interface InputLine {
  custom_id: string;
  method?: string;
  url?: string;
  body: Record<string, unknown>;
}

export function chatLine(customId: string, extra: Record<string, unknown> = {}): InputLine {
  return {
    custom_id: customId,
    method: 'POST',
    url: '/v1/chat/completions',
    body: {
      model: 'gpt-4o-mini',
      messages: [{ role: 'user', content: `Say something about ${customId}` }],
      ...extra,
    },
  };
}

export async function uploadJsonl(client: OpenAI, lines: (InputLine | string)[], name = 'input.jsonl') {
  const text =
    lines.map((l) => (typeof l === 'string' ? l : JSON.stringify({ method: 'POST', ...l }))).join('\n') +
    '\n';
  return client.files.create({ file: await toFile(Buffer.from(text), name), purpose: 'batch' });
}

/** Uploads `lines` and creates a batch over them (chat completions, 24h unless told otherwise). */
export async function submitBatch(
  client: OpenAI,
  lines: (InputLine | string)[],
  params: Partial<BatchCreateParams> = {},
  options: { headers?: Record<string, string>; filename?: string } = {},
): Promise<Batch> {
  const file = await uploadJsonl(client, lines, options.filename);
  return client.batches.create(
    { input_file_id: file.id, endpoint: '/v1/chat/completions', completion_window: '24h', ...params },
    { headers: options.headers },
  );
}

/** Polls the batch until its status is one of `statuses`. */
export async function waitForStatus(
  client: OpenAI,
  id: string,
  statuses: Batch['status'][],
  timeoutMs = 60_000,
): Promise<Batch> {
  const deadline = Date.now() + timeoutMs;
  let batch = await client.batches.retrieve(id);
  while (!statuses.includes(batch.status)) {
    if (Date.now() > deadline) {
      throw new Error(
        `batch ${id} is still ${batch.status} after ${timeoutMs} ms (${JSON.stringify(batch.request_counts)})`,
      );
    }
    await new Promise((r) => setTimeout(r, 250));
    batch = await client.batches.retrieve(id);
  }
  return batch;
}

export interface OutputLine {
  id: string;
  custom_id: string;
  response: { status_code: number; request_id: string; body: Record<string, unknown> } | null;
  error: { code: string; message: string } | null;
}

export async function downloadLines(
  client: OpenAI,
  fileId: string | null | undefined,
): Promise<OutputLine[]> {
  if (!fileId) return [];
  const text = await (await client.files.content(fileId)).text();
  return text
    .split('\n')
    .filter((l) => l.length > 0)
    .map((l) => JSON.parse(l) as OutputLine);
}

/** Output and error lines of an ended batch, with a check that no custom_id appears twice. */
export async function results(client: OpenAI, batch: Batch) {
  const output = await downloadLines(client, batch.output_file_id);
  const errors = await downloadLines(client, batch.error_file_id);
  const seen = new Set<string>();
  const duplicates: string[] = [];
  for (const { custom_id: id } of [...output, ...errors]) {
    if (seen.has(id)) duplicates.push(id);
    seen.add(id);
  }
  return { output, errors, ids: seen, duplicates, count: output.length + errors.length };
}
