/**
 * The requests of one run: the JSONL lines Barge gets, and the very same bodies the direct
 * client sends. Latencies and faults are drawn from a seeded PRNG and written into each
 * line's `simulate` directive, so every run of a scenario sees the same upstream.
 */
import { mulberry32, normal } from '../src/simulator/latency';
import type { FaultMix, LatencyModel, RequestShape } from './scenarios';

export const ENDPOINT = '/v1/chat/completions';
export const MODEL = 'gpt-4o-mini';

/** The throughput scenarios' lines: one short chat question each (unchanged, so figures stay comparable). */
export const CHAT_REQUESTS: RequestShape = {
  endpoint: ENDPOINT,
  body: (i) => ({ model: MODEL, messages: [{ role: 'user', content: `Question number ${i}?` }] }),
};

export type Destination = 'output' | 'error';

export interface Workload {
  /** The endpoint of every line, and of the batch. */
  endpoint: RequestShape['endpoint'];
  /** The batch input file. */
  jsonl: Buffer;
  /** Request bodies in line order, as the direct client sends them. */
  bodies: Buffer[];
  customIds: string[];
  /** Where each line must end up: 2xx answers in the output file, the rest in the error file. */
  expected: Destination[];
  /** Mean of the per-line latencies, for the ideal time. */
  meanLatencyMs: number;
  /** Lines per fault kind (none when the workload has no faults). */
  faultCounts: Record<string, number>;
}

type Simulate = Record<string, number | string>;

function latencyOf(model: LatencyModel, random: () => number): number {
  if (model.kind === 'fixed') return model.ms;
  return Math.round(model.medianMs * Math.exp(model.sigma * normal(random)));
}

/** Picks a line's scripted failure; one uniform draw, so the shares are exact in expectation. */
function faultOf(mix: FaultMix, u: number): { kind: string; simulate?: Simulate; destination: Destination } {
  const bands: [number, string, Simulate | undefined, Destination][] = [
    [
      mix.rateLimitedOnce.share,
      'rate_limited_once',
      { fail_times: 1, fail_status: 429, retry_after_ms: mix.rateLimitedOnce.retryAfterMs },
      'output',
    ],
    [mix.serverErrorTwice, 'server_error_twice', { fail_times: 2, fail_status: 500 }, 'output'],
    [mix.permanentBadRequest, 'permanent_bad_request', { fail_times: 1e9, fail_status: 400 }, 'error'],
    [mix.resetOnce, 'reset_once', { fail_times: 1, fail_mode: 'reset' }, 'output'],
  ];
  for (const [share, kind, simulate, destination] of bands) {
    if ((u -= share) < 0) return { kind, simulate, destination };
  }
  return { kind: 'none', destination: 'output' };
}

export function buildWorkload(
  name: string,
  requests: number,
  latency: LatencyModel,
  faults?: FaultMix,
  request: RequestShape = CHAT_REQUESTS,
  seed = 12345,
): Workload {
  // Separate streams, so adding faults does not change the latencies of a scenario.
  const latencyRandom = mulberry32(seed);
  const faultRandom = mulberry32(seed ^ 0x9e3779b9);
  const lines: string[] = [];
  const bodies: Buffer[] = [];
  const customIds: string[] = [];
  const expected: Destination[] = [];
  const faultCounts: Record<string, number> = {};
  let latencySum = 0;
  for (let i = 0; i < requests; i++) {
    const ms = latencyOf(latency, latencyRandom);
    latencySum += ms;
    const simulate: Simulate = ms > 0 ? { latency_ms: ms } : {};
    let destination: Destination = 'output';
    if (faults) {
      const fault = faultOf(faults, faultRandom());
      faultCounts[fault.kind] = (faultCounts[fault.kind] ?? 0) + 1;
      Object.assign(simulate, fault.simulate);
      destination = fault.destination;
    }
    const body = {
      ...request.body(i),
      ...(Object.keys(simulate).length > 0 ? { simulate } : {}),
    };
    const customId = `${name}-${i}`;
    const bodyJson = JSON.stringify(body);
    lines.push(
      `{"custom_id":"${customId}","method":"POST","url":"${request.endpoint}","body":${bodyJson}}\n`,
    );
    bodies.push(Buffer.from(bodyJson));
    customIds.push(customId);
    expected.push(destination);
  }
  return {
    endpoint: request.endpoint,
    jsonl: Buffer.from(lines.join('')),
    bodies,
    customIds,
    expected,
    meanLatencyMs: requests > 0 ? latencySum / requests : 0,
    faultCounts,
  };
}

export interface FileCheck {
  ok: boolean;
  outputLines: number;
  errorLines: number;
  /** custom_ids in no file. */
  missing: number;
  /** custom_ids found more than once (in one file or across both). */
  duplicated: number;
  /** custom_ids in the wrong file, or in the output file without a 2xx status. */
  misplaced: number;
  /** Lines whose custom_id is not in the batch, or that are not JSON. */
  unexpected: number;
  /** Error-file lines `batch_cancelled`: not misplaced when the bench cancelled the batch at its deadline. */
  cancelled: number;
  examples: string[];
}

/** Checks that every custom_id appears exactly once, in the file it belongs in. */
export function checkFiles(
  workload: Workload,
  output: string,
  errors: string,
  cancelledByBench = false,
): FileCheck {
  const index = new Map(workload.customIds.map((id, i) => [id, i]));
  const seen = new Uint32Array(workload.customIds.length);
  const check: FileCheck = {
    ok: true,
    outputLines: 0,
    errorLines: 0,
    missing: 0,
    duplicated: 0,
    misplaced: 0,
    unexpected: 0,
    cancelled: 0,
    examples: [],
  };
  const note = (what: string): void => {
    if (check.examples.length < 10) check.examples.push(what);
  };
  const scan = (text: string, file: Destination): void => {
    for (const line of text.split('\n')) {
      if (line === '') continue;
      if (file === 'output') check.outputLines++;
      else check.errorLines++;
      let parsed: {
        custom_id?: unknown;
        response?: { status_code?: unknown } | null;
        error?: { code?: unknown } | null;
      };
      try {
        parsed = JSON.parse(line);
      } catch {
        check.unexpected++;
        note(`not JSON in the ${file} file: ${line.slice(0, 80)}`);
        continue;
      }
      const i = typeof parsed.custom_id === 'string' ? index.get(parsed.custom_id) : undefined;
      if (i === undefined) {
        check.unexpected++;
        note(`unknown custom_id ${String(parsed.custom_id)} in the ${file} file`);
        continue;
      }
      if (++seen[i] === 2) {
        check.duplicated++;
        note(`${parsed.custom_id} appears more than once`);
      }
      const status = Number(parsed.response?.status_code);
      const answered = status >= 200 && status < 300;
      if (file === 'error' && parsed.error?.code === 'batch_cancelled') {
        check.cancelled++;
        if (cancelledByBench) continue;
      }
      if (file !== workload.expected[i] || (file === 'output' && !answered)) {
        check.misplaced++;
        note(
          `${parsed.custom_id} in the ${file} file (status ${status}), expected in the ${workload.expected[i]} file`,
        );
      }
    }
  };
  scan(output, 'output');
  scan(errors, 'error');
  for (let i = 0; i < seen.length; i++) {
    if (seen[i] === 0) {
      check.missing++;
      note(`${workload.customIds[i]} is in neither file`);
    }
  }
  check.ok = check.missing + check.duplicated + check.misplaced + check.unexpected === 0;
  return check;
}
