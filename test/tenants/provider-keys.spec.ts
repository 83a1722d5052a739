import type { ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdtempSync, readdirSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Client, Connection } from '@temporalio/client';
import type { Batch } from 'openai/resources/batches';
import { startSimulator, type SimulatorHandle } from '../../src/simulator/server';
import { credentialTag } from '../../src/simulator/stats';
import { openaiFor, withTestDb } from '../support/api';
import { chatLine, downloadLines, submitBatch, uploadJsonl, waitForStatus } from '../support/batches';
import { ROOT, startApi, startProcess, stopProcess } from '../support/stack';
import { apiError, bargeWith, quotaTenant, type QuotaTenant } from './support';

const secret = (label: string) => `sk-${label}-${randomBytes(20).toString('hex')}`;

/** Every string and byte array inside `value` (Temporal's payloads are bytes: read as UTF-8). */
function* texts(value: unknown, seen = new Set<unknown>()): Generator<string> {
  if (typeof value === 'string') yield value;
  else if (value instanceof Uint8Array) yield Buffer.from(value).toString('utf8');
  else if (value && typeof value === 'object' && !seen.has(value)) {
    seen.add(value);
    for (const v of Object.values(value)) yield* texts(v, seen);
  }
}

function filesUnder(dir: string): string[] {
  return readdirSync(dir).flatMap((name) => {
    const path = join(dir, name);
    return statSync(path).isDirectory() ? filesUnder(path) : [path];
  });
}

/**
 * A tenant's own provider key, against an API and a worker of the test's own whose one
 * upstream (`paid`, a simulator that accepts only the keys below) has an operator's key.
 */
describe("a tenant's own provider key", () => {
  const operatorKey = secret('operator');
  const registeredKey = secret('registered');
  const batchKey = secret('per-batch');
  const refusedKey = secret('refused');
  /** The tenants' keys, and the operator's too: none of them may show anywhere. */
  const everyKey = [registeredKey, batchKey, refusedKey, operatorKey];
  let sim: SimulatorHandle;
  let api: ChildProcess;
  let worker: ChildProcess;
  let apiUrl: string;
  let env: Record<string, string>;
  /** Every answer the API gave the test, as text, for the final scan. */
  const answers: string[] = [];
  const batchIds: string[] = [];

  const tenant = async (prefix: string): Promise<QuotaTenant> => {
    const t = await quotaTenant(prefix);
    return { ...t, client: openaiFor(t.key, { baseUrl: apiUrl, maxRetries: 0, fetch: recording }) };
  };
  const recording: typeof fetch = async (input, init) => {
    const res = await fetch(input, init);
    answers.push(`${JSON.stringify([...res.headers])}\n${await res.clone().text()}`);
    return res;
  };
  const cli = (input: string, ...args: string[]) => bargeWith({ env, input }, ...args);
  const seenWith = (key: string | null) =>
    sim.stats().byCredential[credentialTag(key === null ? undefined : `Bearer ${key}`)] ?? 0;

  const run = async (t: QuotaTenant, ids: string[], headers?: Record<string, string>) => {
    const created = await submitBatch(
      t.client,
      ids.map((id) => chatLine(id)),
      {},
      { headers },
    );
    batchIds.push(created.id);
    return waitForStatus(t.client, created.id, ['completed', 'failed', 'expired', 'cancelled'], 60_000);
  };

  beforeAll(async () => {
    sim = await startSimulator({ port: 0, apiKeys: [operatorKey, registeredKey, batchKey] });
    const configFile = join(mkdtempSync(join(tmpdir(), 'barge-keys-')), 'barge.yaml');
    writeFileSync(
      configFile,
      `upstreams:\n  - { name: paid, baseUrl: "${sim.url}/v1", models: ["*"], apiKeyEnv: KEYS_TEST_OPERATOR_KEY }\n`,
    );
    env = {
      BARGE_CONFIG: configFile,
      KEYS_TEST_OPERATOR_KEY: operatorKey,
      BARGE_TEMPORAL_TASK_QUEUE: `keys-${process.pid}`,
      BARGE_TEMPORAL_UPSTREAM_TASK_QUEUE: `keys-upstream-${process.pid}`,
      // Everything that could be logged is.
      BARGE_LOG_LEVEL: 'debug',
    };
    worker = startProcess('src/worker.js', env);
    ({ api, url: apiUrl } = await startApi(env, '/readyz'));
  });

  afterAll(async () => {
    await Promise.all([stopProcess(worker), stopProcess(api)]);
    await sim.close();
  });

  it('registered with the CLI, goes to its upstream for that tenant only; others keep the operator key', async () => {
    const own = await tenant('keys-own');
    const other = await tenant('keys-other');

    const keyFor = ['tenants', 'set-key', '--tenant', own.name, '--upstream', 'paid'];
    const set = await cli(`${registeredKey}\n`, ...keyFor);
    expect(set).toMatchObject({ code: 0, stdout: '' });
    expect(set.stderr).toContain(`Registered tenant "${own.name}"'s key for upstream "paid"`);
    const ownKeys = async () =>
      JSON.parse((await cli('', 'tenants', 'list', '--tenant', own.name, '--json')).stdout)[0].providerKeys;
    expect(await ownKeys()).toEqual(['paid']);

    const before = { own: seenWith(registeredKey), operator: seenWith(operatorKey) };
    expect((await run(own, ['own-1', 'own-2', 'own-3'])).request_counts).toEqual({
      total: 3,
      completed: 3,
      failed: 0,
    });
    expect((await run(other, ['other-1', 'other-2'])).request_counts).toMatchObject({ completed: 2 });
    expect(seenWith(registeredKey) - before.own).toBe(3);
    expect(seenWith(operatorKey) - before.operator).toBe(2);

    // Replaced from a variable, then deleted: the tenant is back on the operator's key.
    const replaced = await bargeWith(
      { env: { ...env, MY_KEY: registeredKey } },
      ...keyFor,
      '--key-env',
      'MY_KEY',
    );
    expect(replaced.stderr).toContain('Replaced');
    expect(await cli('', 'tenants', 'delete-key', '--tenant', own.name, '--upstream', 'paid')).toMatchObject({
      code: 0,
    });
    expect(await ownKeys()).toEqual([]);
    const operatorBefore = seenWith(operatorKey);
    await run(own, ['own-4']);
    expect(seenWith(operatorKey) - operatorBefore).toBe(1);
    const again = await cli('', 'tenants', 'delete-key', '--tenant', own.name, '--upstream', 'paid');
    expect(again.code).toBe(1);
    expect(again.stderr).toContain('has no key of its own for upstream "paid"');
  });

  it('sent on create, is used for that batch on its pinned upstream and deleted when the batch ends', async () => {
    const t = await tenant('keys-header');
    const file = await uploadJsonl(t.client, [chatLine('h-1'), chatLine('h-2')]);
    const params = {
      input_file_id: file.id,
      endpoint: '/v1/chat/completions',
      completion_window: '24h',
    } as const;

    // Only for a pinned upstream: a batch routed by model could fall back to another provider.
    const unpinned = await apiError(
      t.client.batches.create(params, { headers: { 'x-barge-provider-key': batchKey } }),
    );
    expect(unpinned.status).toBe(400);
    expect(unpinned.error).toMatchObject({
      param: 'x-barge-provider-key',
      code: 'missing_required_parameter',
    });
    const blank = await apiError(
      t.client.batches.create(params, {
        headers: { 'x-barge-provider': 'paid', 'x-barge-provider-key': 'a b' },
      }),
    );
    expect(blank.error).toMatchObject({ param: 'x-barge-provider-key', code: 'invalid_value' });

    const before = seenWith(batchKey);
    const created = await t.client.batches.create(
      { ...params, metadata: { barge_provider: 'paid' } },
      { headers: { 'x-barge-provider-key': batchKey } },
    );
    batchIds.push(created.id);
    const held = await withTestDb((db) =>
      db.query(`SELECT upstream, key_sealed FROM batch_provider_keys WHERE batch_id = $1`, [created.id]),
    );
    // Held sealed while the batch runs (unless it already ended).
    for (const row of held)
      expect(row).toEqual({ upstream: 'paid', key_sealed: expect.stringMatching(/^v1\./) });
    const done = await waitForStatus(t.client, created.id, ['completed', 'failed'], 60_000);
    expect(done.request_counts).toEqual({ total: 2, completed: 2, failed: 0 });
    expect(seenWith(batchKey) - before).toBe(2);
    const left = await withTestDb((db) =>
      db.query(`SELECT count(*)::int AS n FROM batch_provider_keys WHERE batch_id = $1`, [created.id]),
    );
    expect(left).toEqual([{ n: 0 }]);
  });

  it('that the upstream refuses fails each request once with its 401 in the error file', async () => {
    const t = await tenant('keys-refused');
    const before = sim.stats().byStatus['401'] ?? 0;
    const batch: Batch = await run(t, ['r-1', 'r-2', 'r-3'], {
      'x-barge-provider': 'paid',
      'x-barge-provider-key': refusedKey,
    });
    expect(batch.status).toBe('completed');
    expect(batch.request_counts).toEqual({ total: 3, completed: 0, failed: 3 });
    // Final at once: one attempt per request, no retries.
    expect(seenWith(refusedKey)).toBe(3);
    expect((sim.stats().byStatus['401'] ?? 0) - before).toBe(3);
    const errors = await downloadLines(t.client, batch.error_file_id);
    expect(errors).toHaveLength(3);
    for (const line of errors) {
      expect(line.response).toMatchObject({
        status_code: 401,
        body: { error: { code: 'invalid_api_key', type: 'authentication_error' } },
      });
    }

    // Retried with the right key (on the original's pinned upstream), they all go through.
    const goodBefore = seenWith(batchKey);
    const retry = await t.client.post<Batch>(`/batches/${batch.id}/retry`, {
      headers: { 'x-barge-provider-key': batchKey },
    });
    batchIds.push(retry.id);
    const retried = await waitForStatus(t.client, retry.id, ['completed', 'failed'], 60_000);
    expect(retried.request_counts).toEqual({ total: 3, completed: 3, failed: 0 });
    expect(seenWith(batchKey) - goodBefore).toBe(3);
    expect(seenWith(refusedKey)).toBe(3);
  });

  it('refuses bad set-key usage clearly, and never echoes a key', async () => {
    const t = await quotaTenant('keys-cli');
    const setKey = (...more: string[]) => ['tenants', 'set-key', '--tenant', t.name, ...more];
    const cases: [string, string[], number, string][] = [
      [
        'sk-x\n',
        setKey('--upstream', 'nowhere'),
        2,
        'no upstream "nowhere" is configured (configured: paid)',
      ],
      ['', setKey('--upstream', 'paid', 'sk-on-argv'), 2, 'never from the command line'],
      ['\n', setKey('--upstream', 'paid'), 1, 'not a usable key: it is empty'],
      ['sk-x y\n', setKey('--upstream', 'paid'), 1, 'not a usable key: it holds spaces'],
      [
        '',
        setKey('--upstream', 'paid', '--key-env', 'UNSET_X'),
        2,
        '--key-env UNSET_X: the variable is not set',
      ],
      [
        'sk-x\n',
        ['tenants', 'set-key', '--tenant', 'no-such-tenant-x', '--upstream', 'paid'],
        1,
        'no tenant',
      ],
      ['', ['tenants', 'set-key', '--upstream', 'paid'], 2, 'needs --tenant'],
      ['', setKey(), 2, 'needs --upstream'],
    ];
    for (const [input, args, code, message] of cases) {
      const run = await cli(input, ...args);
      expect({ args, code: run.code }).toEqual({ args, code });
      expect(run.stderr).toContain(message);
      expect(run.stderr + run.stdout).not.toMatch(/sk-on-argv|sk-x/);
    }
  });

  it('appears in no log, answer, Postgres row or Temporal history', async () => {
    expect(batchIds.length).toBeGreaterThanOrEqual(4);
    const found: string[] = [];
    /** Notes each key `text` holds; `control`, something the text must hold, proves it was read. */
    const scan = (where: string, text: string, control?: string) => {
      for (const key of everyKey) if (text.includes(key)) found.push(`${where}: ${key.split('-')[1]}`);
      if (control !== undefined && !text.includes(control)) found.push(`${where}: no ${control}`);
    };
    const [firstBatch] = batchIds;

    // Logs: this test's API and worker (at debug), and every file the stack logs to.
    const output = (child: ChildProcess) => (child as ChildProcess & { output: () => string }).output();
    scan('api output', output(api), '/v1/batches');
    scan('worker output', output(worker), firstBatch);
    for (const path of filesUnder(join(ROOT, '.barge', 'test', 'logs')))
      scan(path, readFileSync(path, 'utf8'));
    // The API's answers, the simulator's too.
    scan('answers', answers.join('\n'), firstBatch);
    scan('simulator stats', JSON.stringify(sim.stats()));

    // Every row of every table, as text.
    await withTestDb(async (db) => {
      const tables = (await db.query(
        `SELECT table_name FROM information_schema.tables WHERE table_schema = 'public' AND table_type = 'BASE TABLE'`,
      )) as { table_name: string }[];
      expect(tables.map((t) => t.table_name)).toEqual(expect.arrayContaining(['tenant_provider_keys']));
      const rowsHolding = async (table: string, text: string): Promise<number> =>
        (
          await db.query(`SELECT count(*)::int AS n FROM "${table}" t WHERE strpos(t::text, $1) > 0`, [text])
        )[0].n;
      for (const { table_name: table } of tables) {
        for (const key of everyKey) {
          if ((await rowsHolding(table, key)) > 0) found.push(`table ${table}: ${key.split('-')[1]}`);
        }
      }
      expect(await rowsHolding('batches', firstBatch)).toBe(1);
    });

    // Each batch's workflow history, payloads decoded.
    const connection = await Connection.connect({ address: process.env.BARGE_TEMPORAL_ADDRESS });
    try {
      const client = new Client({ connection, namespace: process.env.BARGE_TEMPORAL_NAMESPACE ?? 'default' });
      for (const id of batchIds) {
        const history = await client.workflow.getHandle(id).fetchHistory();
        expect(history.events?.length).toBeGreaterThan(0);
        // The workflow's input, a payload's bytes, is read: it names the batch.
        scan(`history of ${id}`, [...texts(history)].join('\n'), `"batchId":"${id}"`);
        scan(`description of ${id}`, [...texts(await client.workflow.getHandle(id).describe())].join('\n'));
      }
    } finally {
      await connection.close();
    }
    expect(found).toEqual([]);
  });
});
