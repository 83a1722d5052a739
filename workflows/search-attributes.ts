import { defineSearchAttributeKey, SearchAttributeType } from '@temporalio/common';

/** Registered on the Temporal server (scripts/stack.sh, deploy/temporal-setup.sh); find batches in the Web UI. */
export const BatchStatusKey = defineSearchAttributeKey('BatchStatus', SearchAttributeType.KEYWORD);
export const TenantIdKey = defineSearchAttributeKey('TenantId', SearchAttributeType.KEYWORD);
export const ModelKey = defineSearchAttributeKey('Model', SearchAttributeType.KEYWORD);
export const EndpointKey = defineSearchAttributeKey('Endpoint', SearchAttributeType.KEYWORD);
