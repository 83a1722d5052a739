import { parseArgs } from 'node:util';
import { API_OPTIONS, ApiClient, resolveTarget } from '../api-client';
import type { CliIO } from '../io';
import { UsageError } from '../io';
import { BatchAction, systemClock } from './action';
import { cancelAction } from './cancel';
import { downloadAction } from './download';
import { getAction } from './get';
import { listAction } from './list';
import { retryAction } from './retry';
import { submitAction } from './submit';
import { watchAction } from './watch';

/** `barge batches ACTION`: each action in its own file; a new one is one line here. */
const ACTIONS: Record<string, BatchAction> = {
  submit: submitAction,
  watch: watchAction,
  list: listAction,
  get: getAction,
  cancel: cancelAction,
  download: downloadAction,
  retry: retryAction,
};

export const BATCHES_USAGE = Object.values(ACTIONS)
  .map((action) => action.usage)
  .join('\n');

/** Runs `barge batches ...` against the API; returns the exit code. */
export async function batchesCommand(
  argv: string[],
  io: CliIO,
  env: Record<string, string | undefined>,
): Promise<number> {
  const [name, ...rest] = argv;
  const action = name === undefined ? undefined : Object.hasOwn(ACTIONS, name) ? ACTIONS[name] : undefined;
  if (!action) throw new UsageError(name ? `unknown batches command "${name}"` : 'batches needs a command');
  let parsed;
  try {
    parsed = parseArgs({
      args: rest,
      options: { ...API_OPTIONS, ...action.options },
      allowPositionals: true,
      strict: true,
    });
  } catch (err) {
    throw new UsageError((err as Error).message);
  }
  const client = new ApiClient(resolveTarget(parsed.values as Record<string, string | undefined>, env));
  return action.run({
    client,
    values: parsed.values,
    positionals: parsed.positionals,
    io,
    clock: systemClock,
  });
}
