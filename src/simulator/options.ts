/**
 * Simulator options: their types, defaults and validation (one zod schema), and parsing
 * from argv (node:util parseArgs) and SIM_* environment variables. Parsing never exits the
 * process; it throws OptionError naming the culprit as the user spelled it, so the CLI
 * decides how to report it and tests can assert on it.
 */
import { parseArgs } from 'node:util';
import { z } from 'zod';

export type LatencySpec =
  | { kind: 'fixed'; ms: number }
  | { kind: 'uniform'; minMs: number; maxMs: number }
  | { kind: 'lognormal'; medianMs: number; sigma: number };

export interface SimulatorOptions {
  host: string;
  /** 0 picks a free port; the handle reports the real one. */
  port: number;
  latency: LatencySpec;
  /** Probabilities in 0..1 of answering 500, 429, resetting the socket, or never answering. */
  errorRate: number;
  rateLimitRate: number;
  resetRate: number;
  hangRate: number;
  /** Advertised in Retry-After / retry-after-ms on 429s (and on 503s asked for by a directive). */
  retryAfterMs: number;
  /** Requests served at once; beyond it the simulator answers 429 at once. 0 = unlimited. */
  capacity: number;
  /** Tokens per minute, enforced as a token bucket holding one second's worth. 0 = unlimited. */
  capacityTpm: number;
  /** Retry-After advertised on 429s for exceeding `capacity`. */
  capacityRetryAfterMs: number;
  /** Queueing: latency grows by `capacitySlowdown x (serving / capacity)^2` (so x(1+F) when full). */
  capacitySlowdown: number;
  /** Seed of the PRNG behind global faults and latency, so a run can be replayed. */
  seed: number;
  /** Cap on remembered request identities for `simulate.fail_times`; oldest are forgotten. */
  maxTrackedRequests: number;
  /** Cap on arrival timestamps kept for /_sim/stats (per counter set). */
  maxRequestTimes: number;
  /** Cap on the seconds of per-second history kept for /_sim/stats (per counter set). */
  maxHistorySeconds: number;
  maxBodyBytes: number;
  /**
   * Bearer tokens the inference endpoints accept; any other Authorization (or none) is answered
   * 401 `invalid_api_key`, as OpenAI answers a wrong key. Empty (the default): no check.
   */
  apiKeys: string[];
}

/** What startSimulator accepts: any subset, latency also in its CLI spelling. */
export type SimulatorInput = Partial<Omit<SimulatorOptions, 'latency'>> & { latency?: LatencySpec | string };

/** setTimeout silently turns larger delays into 1 ms, so no latency may exceed this. */
export const MAX_DELAY_MS = 2_147_483_647;

export class OptionError extends Error {
  constructor(
    /** The option as the user spelled it (a flag, an env variable, or a property name). */
    readonly option: string,
    reason: string,
  ) {
    super(`invalid option ${option}: ${reason}`);
    this.name = 'OptionError';
  }
}

// --- schema ------------------------------------------------------------------------------

/** Number('') is 0 and Number(' 1 ') is 1; neither is an intended value, so both stay text. */
function numberFromText(value: unknown): unknown {
  if (typeof value !== 'string' || value === '' || value.trim() !== value) return value;
  const n = Number(value);
  return Number.isFinite(n) ? n : value;
}

const describe = (value: unknown): string => (typeof value === 'string' ? `"${value}"` : String(value));

/** A number in min..max, given as a number or (from argv and env) as its text. */
function bounded(min: number, max: number, integer = false) {
  return z.preprocess(
    numberFromText,
    z
      .number({ error: (issue) => `not a number: ${describe(issue.input)}` })
      .refine((v) => v >= min && v <= max && (!integer || Number.isInteger(v)), {
        error: (issue) =>
          `must be ${integer ? 'an integer' : 'a number'} in ${min}..${max}, got ${issue.input}`,
      }),
  );
}

const delayMs = bounded(0, MAX_DELAY_MS);

const latencySpecSchema = z.discriminatedUnion(
  'kind',
  [
    z.object({ kind: z.literal('fixed'), ms: delayMs }),
    z
      .object({ kind: z.literal('uniform'), minMs: delayMs, maxMs: delayMs })
      .refine((s) => s.maxMs >= s.minMs, {
        error: (issue) => {
          const s = issue.input as { minMs: number; maxMs: number };
          return `uniform maximum ${s.maxMs} is below its minimum ${s.minMs}`;
        },
      }),
    z.object({ kind: z.literal('lognormal'), medianMs: delayMs, sigma: bounded(0, 10) }),
  ],
  {
    error: (issue) =>
      `unknown distribution ${describe((issue.input as { kind?: unknown })?.kind)} (fixed, uniform or lognormal)`,
  },
);

const ARITY: Record<string, [number, string[]]> = {
  fixed: [1, ['ms']],
  uniform: [2, ['minMs', 'maxMs']],
  lognormal: [2, ['medianMs', 'sigma']],
};

/** `fixed:50`, `uniform:10,200`, `lognormal:100,0.5`; a bare number means fixed. */
const latencySchema = z.preprocess((value, ctx) => {
  if (typeof value !== 'string') return value;
  const [kind, args = ''] = value.includes(':') ? value.split(':', 2) : ['fixed', value];
  const arity = ARITY[kind];
  if (arity === undefined) return { kind };
  const parts = args.split(',');
  if (parts.length !== arity[0]) {
    ctx.issues.push({
      code: 'custom',
      message: `${kind} takes ${arity[0]} value(s), got "${value}"`,
      input: value,
    });
    return z.NEVER;
  }
  return Object.fromEntries([['kind', kind], ...arity[1].map((key, i) => [key, parts[i]])]);
}, latencySpecSchema);

const FAULT_RATES = ['errorRate', 'rateLimitRate', 'resetRate', 'hangRate'] as const;

const optionsSchema = z
  .object({
    host: z
      .string()
      .refine((s) => s.trim() !== '', 'must not be empty')
      .default('127.0.0.1'),
    port: bounded(0, 65535, true).default(8100),
    latency: latencySchema.default({ kind: 'fixed', ms: 0 }),
    errorRate: bounded(0, 1).default(0),
    rateLimitRate: bounded(0, 1).default(0),
    resetRate: bounded(0, 1).default(0),
    hangRate: bounded(0, 1).default(0),
    retryAfterMs: bounded(0, MAX_DELAY_MS, true).default(1000),
    capacity: bounded(0, Number.MAX_SAFE_INTEGER, true).default(0),
    capacityTpm: bounded(0, Number.MAX_SAFE_INTEGER, true).default(0),
    // Shorter than most latencies, as providers' overload answers are: the client comes back
    // soon, and a client that paces itself well seldom needs to.
    capacityRetryAfterMs: bounded(0, MAX_DELAY_MS, true).default(200),
    capacitySlowdown: bounded(0, 1000).default(0),
    seed: bounded(0, 0xffffffff, true).default(42),
    maxTrackedRequests: bounded(1, Number.MAX_SAFE_INTEGER, true).default(100_000),
    maxRequestTimes: bounded(0, Number.MAX_SAFE_INTEGER, true).default(100_000),
    maxHistorySeconds: bounded(0, Number.MAX_SAFE_INTEGER, true).default(3600),
    maxBodyBytes: bounded(1, Number.MAX_SAFE_INTEGER, true).default(64 * 1024 * 1024),
    apiKeys: z.array(z.string().min(1)).default([]),
  })
  .superRefine((o, ctx) => {
    // One uniform draw picks at most one fault, so the rates share the unit interval.
    const faultTotal = o.errorRate + o.rateLimitRate + o.resetRate + o.hangRate;
    if (faultTotal > 1 + 1e-9) {
      ctx.addIssue({
        code: 'custom',
        path: [],
        message: `fault rates must add up to at most 1, got ${faultTotal}`,
        // Named as set, so the message points at what the user typed.
        params: { keys: FAULT_RATES.filter((key) => o[key] > 0) },
      });
    }
    if (o.capacitySlowdown > 0 && o.capacity === 0) {
      ctx.addIssue({
        code: 'custom',
        path: ['capacitySlowdown'],
        message: 'needs a capacity to slow down towards',
      });
    }
  });

export const DEFAULT_OPTIONS: Readonly<SimulatorOptions> = Object.freeze<SimulatorOptions>(
  optionsSchema.parse({}),
);

type OptionKey = keyof SimulatorOptions;

/** Validates `raw` (numbers, or their text) and names the first problem as the user spelled it. */
function validate(raw: Record<string, unknown>, names: Partial<Record<OptionKey, string>>): SimulatorOptions {
  const result = optionsSchema.safeParse(raw);
  if (result.success) return result.data;
  const issue = result.error.issues[0];
  const nameOf = (key: PropertyKey): string => names[key as OptionKey] ?? String(key);
  const keys = (issue as { params?: { keys?: string[] } }).params?.keys ?? [issue.path[0] ?? 'options'];
  throw new OptionError(keys.map(nameOf).join('/'), issue.message);
}

/**
 * Fills in defaults and validates. `names` maps an option to how the caller spelled it,
 * so errors name the flag or env variable the user actually typed.
 */
export function resolveOptions(
  input: SimulatorInput = {},
  names: Partial<Record<OptionKey, string>> = {},
): SimulatorOptions {
  return validate({ ...input }, names);
}

/** Parses a latency spec in its CLI spelling; errors name `option`. */
export function parseLatency(text: string, option = '--latency'): LatencySpec {
  return validate({ latency: text }, { latency: option }).latency;
}

// --- command line ---------------------------------------------------------------------------

/** Options settable from the CLI; the caps are for embedders and tests. */
type CliKey = Exclude<
  OptionKey,
  'maxTrackedRequests' | 'maxRequestTimes' | 'maxHistorySeconds' | 'maxBodyBytes' | 'apiKeys'
>;

/** How each option is spelled on the command line and in the environment. */
const SPELLINGS: Record<CliKey, [flag: string, env: string]> = {
  host: ['--host', 'SIM_HOST'],
  port: ['--port', 'SIM_PORT'],
  latency: ['--latency', 'SIM_LATENCY'],
  errorRate: ['--error-rate', 'SIM_ERROR_RATE'],
  rateLimitRate: ['--rate-limit-rate', 'SIM_RATE_LIMIT_RATE'],
  resetRate: ['--reset-rate', 'SIM_RESET_RATE'],
  hangRate: ['--hang-rate', 'SIM_HANG_RATE'],
  retryAfterMs: ['--retry-after-ms', 'SIM_RETRY_AFTER_MS'],
  capacity: ['--capacity', 'SIM_CAPACITY'],
  capacityTpm: ['--capacity-tpm', 'SIM_CAPACITY_TPM'],
  capacityRetryAfterMs: ['--capacity-retry-after-ms', 'SIM_CAPACITY_RETRY_AFTER_MS'],
  capacitySlowdown: ['--capacity-slowdown', 'SIM_CAPACITY_SLOWDOWN'],
  seed: ['--seed', 'SIM_SEED'],
};

export const USAGE = `Usage: node dist/src/simulator/main.js [options]

Barge's upstream model simulator: an OpenAI-compatible HTTP server with deterministic answers,
configurable latency, fault injection and a congestion model. Flags win over environment variables.

  --host HOST                   SIM_HOST                     listen address (default 127.0.0.1)
  --port PORT                   SIM_PORT                     listen port, 0 = any free port (default 8100)
  --latency SPEC                SIM_LATENCY                  fixed:MS | uniform:MIN,MAX | lognormal:MEDIAN,SIGMA (default 0)
  --error-rate P                SIM_ERROR_RATE               probability of HTTP 500 (default 0)
  --rate-limit-rate P           SIM_RATE_LIMIT_RATE          probability of HTTP 429 (default 0)
  --reset-rate P                SIM_RESET_RATE               probability of resetting the connection (default 0)
  --hang-rate P                 SIM_HANG_RATE                probability of never answering (default 0)
  --retry-after-ms MS           SIM_RETRY_AFTER_MS           Retry-After advertised on those 429s (default 1000)
  --capacity N                  SIM_CAPACITY                 requests served at once; more are answered 429 (default 0 = unlimited)
  --capacity-tpm N              SIM_CAPACITY_TPM             tokens per minute, a token bucket of one second's worth (default 0 = unlimited)
  --capacity-retry-after-ms MS  SIM_CAPACITY_RETRY_AFTER_MS  Retry-After on 429s for exceeding --capacity (default 200)
  --capacity-slowdown F         SIM_CAPACITY_SLOWDOWN        latency x (1 + F x (serving/capacity)^2), queueing near capacity (default 0)
  --seed N                      SIM_SEED                     PRNG seed for faults and latency (default 42)
  --help                                                     print this text
`;

export type CliResult = { kind: 'help' } | { kind: 'run'; options: SimulatorOptions };

const PARSE_OPTIONS = {
  ...Object.fromEntries(
    Object.values(SPELLINGS).map(([flag]) => [flag.slice(2), { type: 'string' as const }]),
  ),
  help: { type: 'boolean' as const, short: 'h' },
};
const KEY_BY_FLAG = new Map(Object.entries(SPELLINGS).map(([key, [flag]]) => [flag.slice(2), key as CliKey]));

/**
 * parseArgs reports problems in prose ("Option '-h, --help' does not take an argument");
 * the option meant is the quoted word the user typed.
 */
function parseArgsError(error: unknown, argv: readonly string[]): OptionError {
  const { code, message } = error as { code?: string; message: string };
  const typed = new Set(argv.map((arg) => arg.split('=', 1)[0]));
  const quoted = /'([^']*)'/.exec(message)?.[1] ?? '';
  const words = quoted.split(/[\s,]+/).filter((word) => word !== '' && !word.startsWith('<'));
  const option = words.find((word) => typed.has(word)) ?? words[0] ?? '';
  switch (code) {
    case 'ERR_PARSE_ARGS_UNKNOWN_OPTION':
    case 'ERR_PARSE_ARGS_UNEXPECTED_POSITIONAL':
      return new OptionError(option, 'unknown option (see --help)');
    case 'ERR_PARSE_ARGS_INVALID_OPTION_VALUE':
      return new OptionError(option, /does not take/.test(message) ? 'takes no value' : 'missing value');
    default:
      throw error;
  }
}

/** Parses `--flag value` / `--flag=value` arguments over SIM_* environment variables. */
export function parseCli(argv: readonly string[], env: NodeJS.ProcessEnv = {}): CliResult {
  if (argv.includes('--help') || argv.includes('-h')) return { kind: 'help' };
  let tokens;
  try {
    ({ tokens } = parseArgs({
      args: [...argv],
      options: PARSE_OPTIONS,
      strict: true,
      allowPositionals: false,
      tokens: true,
    }));
  } catch (error) {
    throw parseArgsError(error, argv);
  }

  const raw: Record<string, unknown> = {};
  const names: Partial<Record<OptionKey, string>> = {};
  for (const [key, [, envName]] of Object.entries(SPELLINGS) as [CliKey, [string, string]][]) {
    const text = env[envName];
    if (text === undefined || text === '') continue;
    raw[key] = text;
    names[key] = envName;
  }
  for (const token of tokens) {
    const key = token.kind === 'option' ? KEY_BY_FLAG.get(token.name) : undefined;
    if (key === undefined || token.kind !== 'option') continue;
    raw[key] = token.value ?? '';
    names[key] = token.rawName;
  }
  return { kind: 'run', options: validate(raw, names) };
}
