// Everything the worker's workflow bundle contains. Workflow code runs in Temporal's
// deterministic sandbox: no Node built-ins, no I/O; activities do all of that.
export { batchWorkflow } from './batch.workflow';
export { probeWorkflow } from './probe.workflow';
export { webhookDeliveryWorkflow } from './webhook-delivery.workflow';
