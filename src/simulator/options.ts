/**
 * Simulator options: their types, defaults, validation, and parsing from argv and env.
 * Parsing never exits the process; it throws OptionError naming the culprit, so the CLI
 * decides how to report it and tests can assert on it.
 */

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
  /** Seed of the PRNG behind global faults and latency, so a run can be replayed. */
  seed: number;
  /** Cap on remembered request identities for `simulate.fail_times`; oldest are forgotten. */
  maxTrackedRequests: number;
  /** Cap on arrival timestamps kept for /_sim/stats (per counter set). */
  maxRequestTimes: number;
  maxBodyBytes: number;
}

/** What startSimulator accepts: any subset, latency also in its CLI spelling. */
export type SimulatorInput = Partial<Omit<SimulatorOptions, 'latency'>> & { latency?: LatencySpec | string };

export const DEFAULT_OPTIONS: Readonly<SimulatorOptions> = Object.freeze<SimulatorOptions>({
  host: '127.0.0.1',
  port: 8100,
  latency: { kind: 'fixed', ms: 0 },
  errorRate: 0,
  rateLimitRate: 0,
  resetRate: 0,
  hangRate: 0,
  retryAfterMs: 1000,
  seed: 42,
  maxTrackedRequests: 100_000,
  maxRequestTimes: 100_000,
  maxBodyBytes: 64 * 1024 * 1024,
});

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

function parseNumber(option: string, text: string): number {
  // Number('') is 0 and Number(' 1 ') is 1; neither is an intended value.
  if (text.trim() === '' || text !== text.trim()) throw new OptionError(option, `not a number: "${text}"`);
  const value = Number(text);
  if (!Number.isFinite(value)) throw new OptionError(option, `not a number: "${text}"`);
  return value;
}

function checkRange(option: string, value: number, min: number, max: number, integer = false): number {
  if (!Number.isFinite(value) || value < min || value > max || (integer && !Number.isInteger(value))) {
    throw new OptionError(
      option,
      `must be ${integer ? 'an integer' : 'a number'} in ${min}..${max}, got ${value}`,
    );
  }
  return value;
}

/** `fixed:50`, `uniform:10,200`, `lognormal:100,0.5`; a bare number means fixed. */
export function parseLatency(text: string, option = '--latency'): LatencySpec {
  const [kind, args = ''] = text.includes(':') ? text.split(':', 2) : ['fixed', text];
  const values = args.split(',').map((part) => parseNumber(option, part));
  const arity = (n: number): void => {
    if (values.length !== n) throw new OptionError(option, `${kind} takes ${n} value(s), got "${text}"`);
  };
  let spec: LatencySpec;
  switch (kind) {
    case 'fixed':
      arity(1);
      spec = { kind, ms: values[0] };
      break;
    case 'uniform':
      arity(2);
      spec = { kind, minMs: values[0], maxMs: values[1] };
      break;
    case 'lognormal':
      arity(2);
      spec = { kind, medianMs: values[0], sigma: values[1] };
      break;
    default:
      throw new OptionError(option, `unknown distribution "${kind}" (fixed, uniform or lognormal)`);
  }
  return validateLatency(spec, option);
}

function validateLatency(spec: LatencySpec, option: string): LatencySpec {
  switch (spec.kind) {
    case 'fixed':
      checkRange(option, spec.ms, 0, MAX_DELAY_MS);
      break;
    case 'uniform':
      checkRange(option, spec.minMs, 0, MAX_DELAY_MS);
      checkRange(option, spec.maxMs, spec.minMs, MAX_DELAY_MS);
      break;
    case 'lognormal':
      checkRange(option, spec.medianMs, 0, MAX_DELAY_MS);
      checkRange(option, spec.sigma, 0, 10);
      break;
  }
  return spec;
}

type NumericKey = Exclude<keyof SimulatorOptions, 'host' | 'latency'>;

/** Options settable from the CLI; the caps are for embedders and tests. */
type CliKey = Exclude<keyof SimulatorOptions, 'maxTrackedRequests' | 'maxRequestTimes' | 'maxBodyBytes'>;

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
  seed: ['--seed', 'SIM_SEED'],
};

const RANGES: Record<NumericKey, [min: number, max: number, integer: boolean]> = {
  port: [0, 65535, true],
  errorRate: [0, 1, false],
  rateLimitRate: [0, 1, false],
  resetRate: [0, 1, false],
  hangRate: [0, 1, false],
  retryAfterMs: [0, MAX_DELAY_MS, true],
  seed: [0, 0xffffffff, true],
  maxTrackedRequests: [1, Number.MAX_SAFE_INTEGER, true],
  maxRequestTimes: [0, Number.MAX_SAFE_INTEGER, true],
  maxBodyBytes: [1, Number.MAX_SAFE_INTEGER, true],
};

/**
 * Fills in defaults and validates. `names` maps an option to how the caller spelled it,
 * so errors name the flag or env variable the user actually typed.
 */
export function resolveOptions(
  input: SimulatorInput = {},
  names: Partial<Record<keyof SimulatorOptions, string>> = {},
): SimulatorOptions {
  const nameOf = (key: keyof SimulatorOptions): string => names[key] ?? key;
  const options: SimulatorOptions = { ...DEFAULT_OPTIONS };
  for (const key of Object.keys(RANGES) as NumericKey[]) {
    const value = input[key];
    if (value === undefined) continue;
    const [min, max, integer] = RANGES[key];
    options[key] = checkRange(nameOf(key), value, min, max, integer);
  }
  if (input.host !== undefined) {
    if (input.host.trim() === '') throw new OptionError(nameOf('host'), 'must not be empty');
    options.host = input.host;
  }
  if (input.latency !== undefined) {
    options.latency =
      typeof input.latency === 'string'
        ? parseLatency(input.latency, nameOf('latency'))
        : validateLatency(input.latency, nameOf('latency'));
  }
  // One uniform draw picks at most one fault, so the rates share the unit interval.
  const faultTotal = options.errorRate + options.rateLimitRate + options.resetRate + options.hangRate;
  if (faultTotal > 1 + 1e-9) {
    throw new OptionError(
      [nameOf('errorRate'), nameOf('rateLimitRate'), nameOf('resetRate'), nameOf('hangRate')].join('/'),
      `fault rates must add up to at most 1, got ${faultTotal}`,
    );
  }
  return options;
}

export const USAGE = `Usage: node dist/src/simulator/main.js [options]

Barge's upstream model simulator: an OpenAI-compatible HTTP server with deterministic answers,
configurable latency and fault injection. Flags win over environment variables.

  --host HOST              SIM_HOST             listen address (default 127.0.0.1)
  --port PORT              SIM_PORT             listen port, 0 = any free port (default 8100)
  --latency SPEC           SIM_LATENCY          fixed:MS | uniform:MIN,MAX | lognormal:MEDIAN,SIGMA (default 0)
  --error-rate P           SIM_ERROR_RATE       probability of HTTP 500 (default 0)
  --rate-limit-rate P      SIM_RATE_LIMIT_RATE  probability of HTTP 429 (default 0)
  --reset-rate P           SIM_RESET_RATE       probability of resetting the connection (default 0)
  --hang-rate P            SIM_HANG_RATE        probability of never answering (default 0)
  --retry-after-ms MS      SIM_RETRY_AFTER_MS   Retry-After advertised on 429s (default 1000)
  --seed N                 SIM_SEED             PRNG seed for faults and latency (default 42)
  --help                                        print this text
`;

export type CliResult = { kind: 'help' } | { kind: 'run'; options: SimulatorOptions };

/** Parses `--flag value` / `--flag=value` arguments over SIM_* environment variables. */
export function parseCli(argv: readonly string[], env: NodeJS.ProcessEnv = {}): CliResult {
  const byFlag = new Map(Object.entries(SPELLINGS).map(([key, [flag]]) => [flag, key as CliKey]));
  const raw = new Map<CliKey, { text: string; name: string }>();

  for (const [key, [, envName]] of Object.entries(SPELLINGS) as [CliKey, [string, string]][]) {
    const text = env[envName];
    if (text !== undefined && text !== '') raw.set(key, { text, name: envName });
  }
  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i];
    if (arg === '--help' || arg === '-h') return { kind: 'help' };
    const eq = arg.indexOf('=');
    const flag = arg.startsWith('--') && eq > 0 ? arg.slice(0, eq) : arg;
    const key = byFlag.get(flag);
    if (key === undefined) throw new OptionError(flag, 'unknown option (see --help)');
    let text: string;
    if (flag !== arg) {
      text = arg.slice(eq + 1);
    } else {
      const next = argv[i + 1];
      if (next === undefined || next.startsWith('--')) throw new OptionError(flag, 'missing value');
      text = next;
      i++;
    }
    raw.set(key, { text, name: flag });
  }

  const input: SimulatorInput = {};
  const names: Partial<Record<keyof SimulatorOptions, string>> = {};
  for (const [key, { text, name }] of raw) {
    names[key] = name;
    if (key === 'host' || key === 'latency') input[key] = text;
    else input[key] = parseNumber(name, text);
  }
  return { kind: 'run', options: resolveOptions(input, names) };
}
