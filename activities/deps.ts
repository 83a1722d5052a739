import type { DataSource } from 'typeorm';
import type { BargeConfig } from '../src/config/config';
import type { FileStore } from '../src/files/file-store';
import type { ObjectStorage } from '../src/storage/object-storage';
import type { UpstreamGateway } from '../src/upstreams/upstream-gateway';

/** What activities need from the outside world; injected so tests can pass their own. */
export interface ActivityDeps {
  config: BargeConfig;
  db: DataSource;
  storage: ObjectStorage;
  files: FileStore;
  gateway: UpstreamGateway;
}
