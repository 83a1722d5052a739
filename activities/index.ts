import { createDispatchActivities } from './dispatch.activity';
import { createFinalizeActivities } from './finalize.activity';
import { createStatusActivities } from './status.activity';
import { createValidateActivities } from './validate.activity';
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
