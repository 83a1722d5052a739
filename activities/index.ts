import { createDispatchActivities } from './batch/dispatch-chunk.activity';
import { createFinalizeActivities } from './batch/finalize.activity';
import { createStatusActivities } from './batch/status.activity';
import { createValidateActivities } from './batch/validate-input.activity';
import type { ActivityDeps } from './deps';
import { createProbeActivities } from './probe.activities';

export type { ActivityDeps } from './deps';

/** Every activity the worker registers, built from injected dependencies. */
export function createActivities(deps: ActivityDeps) {
  return {
    ...createProbeActivities(deps),
    ...createValidateActivities(deps),
    ...createDispatchActivities(deps),
    ...createFinalizeActivities(deps),
    ...createStatusActivities(deps),
  };
}

export type Activities = ReturnType<typeof createActivities>;
