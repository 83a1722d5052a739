import type { ParseArgsConfig } from 'node:util';
import type { ApiClient } from '../api-client';
import type { CliIO } from '../io';
import { UsageError } from '../io';

/** What a `barge batches ACTION` needs: the API, its arguments, where to write, a clock. */
export interface ActionContext {
  client: ApiClient;
  values: Record<string, string | boolean | (string | boolean)[] | undefined>;
  positionals: string[];
  io: CliIO;
  clock: Clock;
}

export interface Clock {
  now(): number;
  sleep(ms: number): Promise<void>;
}

export const systemClock: Clock = {
  now: () => Date.now(),
  sleep: (ms) => new Promise((resolve) => setTimeout(resolve, ms)),
};

/** One `barge batches ACTION`, each in a file of its own. */
export interface BatchAction {
  /** Its lines of the usage text. */
  usage: string;
  /** Its own options, beside --base-url and --api-key. */
  options: NonNullable<ParseArgsConfig['options']>;
  /** Runs it; returns the exit code. */
  run(context: ActionContext): Promise<number>;
}

export function stringOption(context: ActionContext, name: string): string | undefined {
  const value = context.values[name];
  return typeof value === 'string' ? value : undefined;
}

export function stringsOption(context: ActionContext, name: string): string[] {
  const value = context.values[name];
  return Array.isArray(value) ? value.filter((v): v is string => typeof v === 'string') : [];
}

/** Exactly `count` positional arguments, named in the message when they are missing. */
export function positionals(context: ActionContext, names: string[], command: string): string[] {
  if (context.positionals.length !== names.length) {
    throw new UsageError(`${command} needs ${names.join(' ') || 'no argument'}`);
  }
  return context.positionals;
}

/** `--interval SECONDS` (default 2): how often a watch polls. */
export function intervalMs(context: ActionContext): number {
  const raw = stringOption(context, 'interval');
  if (raw === undefined) return 2_000;
  const seconds = Number(raw);
  if (!Number.isFinite(seconds) || seconds < 0.1 || seconds > 3600) {
    throw new UsageError(`--interval must be a number of seconds from 0.1 to 3600, not "${raw}"`);
  }
  return Math.round(seconds * 1000);
}

export const batchPath = (id: string) => `/batches/${encodeURIComponent(id)}`;
