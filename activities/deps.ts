import type { BatchRepository } from '../src/batches/store/batch.repository';
import type { WorkRepository } from '../src/batches/store/work.repository';
import type { ByteBudget } from '../src/batches/dispatch/byte-budget';
import type { Finalizer } from '../src/batches/finalize/finalizer';
import type { BargeConfig } from '../src/config/config';
import type { FileStore } from '../src/files/file-store';
import type { Logger } from '../src/observability/logger';
import type { Metrics } from '../src/observability/metrics';
import type { ObjectStorage } from '../src/storage/object-storage';
import type { Clock } from '../src/upstreams/clock';
import type { UpstreamGateway } from '../src/upstreams/upstream-gateway';
import type { DataSource } from 'typeorm';
import type { ProviderKeyStore } from '../src/tenants/provider-keys';
import type { TenantQuotas } from '../src/tenants/tenant-quotas';

/**
 * What activities need from the outside world, built once per worker process (src/worker.ts)
 * and injected, so tests can pass their own.
 */
export interface ActivityDeps {
  config: BargeConfig;
  db: DataSource;
  batches: BatchRepository;
  work: WorkRepository;
  files: FileStore;
  storage: ObjectStorage;
  gateway: UpstreamGateway;
  finalizer: Finalizer;
  /** Tenant quotas: validation admits a batch under the enqueued-token quota. */
  quotas: TenantQuotas;
  /** The tenants' own upstream keys: dispatch reads a batch's from Postgres by its ids. */
  providerKeys: ProviderKeyStore;
  /** Input bytes of chunks held in memory at once, shared by every chunk on this worker. */
  chunkMemory: ByteBudget;
  /**
   * Answers being read and waiting to be recorded, shared by every chunk on this worker (the
   * same budget the upstream gateway's transports read answers under). None: unbounded.
   */
  answerMemory?: ByteBudget;
  clock: Clock;
  metrics: Metrics;
  /** The worker's logger; activities log through children carrying `batch_id`. */
  logger: Logger;
}
