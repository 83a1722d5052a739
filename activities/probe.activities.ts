import { hostname } from 'node:os';
import type { ActivityDeps } from './deps';

export interface ProbeResult {
  worker: string;
  postgres: string;
  storage: 'ok';
}

/** Proves a worker can reach Postgres and object storage; used by `barge` diagnostics and tests. */
export function createProbeActivities({ db, storage }: ActivityDeps) {
  return {
    async probeDependencies(): Promise<ProbeResult> {
      const [{ version }] = await db.query('SELECT version()');
      await storage.ping();
      return {
        worker: `${hostname()}:${process.pid}`,
        postgres: String(version).split(' ').slice(0, 2).join(' '),
        storage: 'ok',
      };
    },
  };
}
