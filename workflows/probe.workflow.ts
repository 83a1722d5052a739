import { proxyActivities } from '@temporalio/workflow';
import type { Activities } from '../activities';
import type { ProbeResult } from '../activities/probe.activities';

const { probeDependencies } = proxyActivities<Activities>({
  startToCloseTimeout: '30 seconds',
  retry: { maximumAttempts: 3 },
});

/** Runs one activity on a worker: shows the whole Temporal path works end to end. */
export async function probeWorkflow(): Promise<ProbeResult> {
  return probeDependencies();
}
