import { InitialSchema1763700000000 } from './1763700000000-initial-schema';
import { FilesPurgedAt1763750000000 } from './1763750000000-files-purged-at';
import { UpstreamLimits1763800000000 } from './1763800000000-upstream-limits';
import { BatchIdempotencyFingerprint1764100000000 } from './1764100000000-batch-idempotency-fingerprint';
import { BatchWorkFencing1764200000000 } from './1764200000000-batch-work-fencing';
import { Webhooks1764300000000 } from './1764300000000-webhooks';
import { BatchResults1764310000000 } from './1764310000000-batch-results';
import { TenantQuotas1764600000000 } from './1764600000000-tenant-quotas';
import { TenantUpstreams1764700000000 } from './1764700000000-tenant-upstreams';
import { ApiKeyRole1764800000000 } from './1764800000000-api-key-role';
import { BatchUpstreamUsage1764900000000 } from './1764900000000-batch-upstream-usage';
import { ProviderKeys1765000000000 } from './1765000000000-provider-keys';

/** Every migration, oldest first. Add new ones at the end; never edit one that has shipped. */
export const MIGRATIONS = [
  InitialSchema1763700000000,
  FilesPurgedAt1763750000000,
  UpstreamLimits1763800000000,
  BatchIdempotencyFingerprint1764100000000,
  BatchWorkFencing1764200000000,
  Webhooks1764300000000,
  BatchResults1764310000000,
  TenantQuotas1764600000000,
  TenantUpstreams1764700000000,
  ApiKeyRole1764800000000,
  BatchUpstreamUsage1764900000000,
  ProviderKeys1765000000000,
];
