import { FilePurgeScheduler } from '../../src/files/file-purge.scheduler';
import { FileStore } from '../../src/files/file-store';
import { ResultIndex } from '../../src/batches/store/result-index';
import { MinioStorage } from '../../src/storage/minio-storage';
import { createTenantKey, openaiFor, uniqueTenant, withTestDb } from '../support/api';
import { chatLine, submitBatch, waitForStatus } from '../support/batches';
import { apiUrl, stackConfig } from '../support/stack';

/**
 * output_expires_after end to end: it sets the output and error files' expires_at (anchored at
 * the files' creation), and the purge job (run here with a clock past that time) removes
 * them, and with them the results the batch kept.
 */
describe('output_expires_after', () => {
  it("sets the files' expiry, and the purge job honours it", async () => {
    const key = await createTenantKey(uniqueTenant('expiry'));
    const client = openaiFor(key);
    const created = await submitBatch(
      client,
      [chatLine('keep'), chatLine('refused', { simulate: { fail_times: 1_000_000, fail_status: 400 } })],
      { output_expires_after: { anchor: 'created_at', seconds: 3_600 } },
    );
    const batch = await waitForStatus(client, created.id, ['completed']);
    const output = await client.files.retrieve(batch.output_file_id!);
    const errors = await client.files.retrieve(batch.error_file_id!);
    for (const file of [output, errors]) {
      expect(file.purpose).toBe('batch_output');
      expect(file.expires_at).toBe(file.created_at + 3_600);
    }
    const unexpiring = await waitForStatus(client, (await submitBatch(client, [chatLine('x')])).id, [
      'completed',
    ]);
    expect((await client.files.retrieve(unexpiring.output_file_id!)).expires_at).toBeNull();

    const config = stackConfig();
    const storage = new MinioStorage(config.storage);
    const keys = await withTestDb(async (db) =>
      (await db.query(`SELECT object_key FROM files WHERE id = ANY($1)`, [[output.id, errors.id]])).map(
        (r: { object_key: string }) => r.object_key,
      ),
    );
    expect(keys).toHaveLength(2);
    const results = await fetch(`${apiUrl()}/v1/batches/${batch.id}/results`, {
      headers: { authorization: `Bearer ${key}` },
    });
    expect(results.status).toBe(200);

    // An hour later, the purge job's round.
    const later = new Date((output.expires_at! + 60) * 1000);
    await withTestDb(async (db) => {
      await new FilePurgeScheduler(new FileStore(db, storage, config), db).runOnce(later);
      // The stack's own worker sweeps too (its maintenance round): either may remove the rows,
      // so the effect is checked, not which sweep did it.
      await new ResultIndex(db).sweepGone(later);
      const [{ n }] = await db.query(`SELECT count(*)::int AS n FROM request_results WHERE batch_id = $1`, [
        batch.id,
      ]);
      expect(n).toBe(0);
    });
    for (const id of [output.id, errors.id]) {
      await expect(client.files.retrieve(id)).rejects.toMatchObject({ status: 404 });
      await expect(client.files.content(id)).rejects.toMatchObject({ status: 404 });
    }
    for (const k of keys) expect(await storage.size(k)).toBeNull();
    const gone = await fetch(`${apiUrl()}/v1/batches/${batch.id}/results`, {
      headers: { authorization: `Bearer ${key}` },
    });
    expect(gone.status).toBe(410);
    expect(((await gone.json()) as { error: { code: string } }).error.code).toBe('results_expired');
    // The batch without an expiry keeps its files.
    expect((await client.files.retrieve(unexpiring.output_file_id!)).id).toBe(unexpiring.output_file_id);
  });
});
