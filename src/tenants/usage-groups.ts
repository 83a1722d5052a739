import { echo } from '../common/text';

/**
 * How usage can be grouped (besides by tenant), and the one reading of a group list, shared by
 * the API's `group_by` and the CLI's `--group-by`. Light on purpose: the CLI checks its
 * arguments with it before loading anything that talks to Postgres.
 */
export const USAGE_GROUPS = ['model', 'day'] as const;
export type UsageGroup = (typeof USAGE_GROUPS)[number];

/** Comma-separated (or repeated) names out of USAGE_GROUPS, each once; or the first that is none. */
export function readUsageGroups(value: unknown): { groups: UsageGroup[] } | { invalid: string } {
  if (value === undefined || value === '') return { groups: [] };
  const parts = (Array.isArray(value) ? value : [value]).flatMap((v) =>
    typeof v === 'string' ? v.split(',') : [v],
  );
  const groups: UsageGroup[] = [];
  for (const part of parts) {
    const name = typeof part === 'string' ? part.trim() : part;
    if (!(USAGE_GROUPS as readonly unknown[]).includes(name)) return { invalid: String(name) };
    if (!groups.includes(name as UsageGroup)) groups.push(name as UsageGroup);
  }
  return { groups };
}

/** What is wrong with a group list that holds `invalid`, in the API's words and the CLI's. */
export function invalidUsageGroupMessage(param: string, invalid: string): string {
  return `Invalid value for '${param}': ${echo(invalid)}. Supported: ${USAGE_GROUPS.join(', ')}.`;
}
