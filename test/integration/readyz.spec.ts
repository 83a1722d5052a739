import { ChildProcess, spawn } from 'node:child_process';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { freePort, startApi, stopProcess, waitFor } from '../support/stack';

/**
 * /readyz against a dependency that really stops: an API process of its own, pointed at a
 * MinIO server of its own, which the test then kills.
 */
describe('GET /readyz', () => {
  let minio: ChildProcess;
  let api: ChildProcess;
  let apiUrl: string;

  beforeAll(async () => {
    const minioPort = await freePort();
    minio = spawn(
      process.env.BARGE_TEST_MINIO_BIN!,
      [
        'server',
        mkdtempSync(join(tmpdir(), 'barge-minio-')),
        '--quiet',
        '--address',
        `127.0.0.1:${minioPort}`,
        '--console-address',
        `127.0.0.1:${await freePort()}`,
      ],
      {
        env: { ...process.env, MINIO_ROOT_USER: 'readyz', MINIO_ROOT_PASSWORD: 'readyz-secret' },
        stdio: 'ignore',
      },
    );
    await waitFor('minio', async () => (await fetch(`http://127.0.0.1:${minioPort}/minio/health/live`)).ok);
    ({ api, url: apiUrl } = await startApi({
      BARGE_STORAGE_ENDPOINT: `http://127.0.0.1:${minioPort}`,
      BARGE_STORAGE_ACCESS_KEY: 'readyz',
      BARGE_STORAGE_SECRET_KEY: 'readyz-secret',
    }));
  });

  afterAll(async () => {
    await stopProcess(api);
    await stopProcess(minio, 'SIGKILL');
  });

  it('is ready while everything answers, and names MinIO once it stops', async () => {
    const ready = await fetch(`${apiUrl}/readyz`);
    expect(ready.status).toBe(200);
    expect(await ready.json()).toMatchObject({ status: 'ok', down: [] });

    await stopProcess(minio, 'SIGKILL');

    const res = await fetch(`${apiUrl}/readyz`);
    expect(res.status).toBe(503);
    const body = (await res.json()) as { down: string[]; checks: Record<string, { status: string }> };
    expect(body.down).toEqual(['minio']);
    expect(body.checks.minio.status).toBe('down');
    expect(body.checks.postgres.status).toBe('ok');
    expect(body.checks.temporal.status).toBe('ok');
    // Liveness is unaffected: the process itself is fine.
    expect((await fetch(`${apiUrl}/healthz`)).status).toBe(200);
  });
});
