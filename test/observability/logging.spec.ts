import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { Writable } from 'node:stream';
import { createLogger } from '../../src/observability/logger';
import { Metrics } from '../../src/observability/metrics';
import { scrapeText, startMetricsServer } from '../../src/observability/metrics-server';
import { TemporalLogger } from '../../src/observability/temporal-logger';
import { freePort } from '../support/stack';
import { parseExposition } from '../support/prometheus';

/** A destination that keeps the lines pino writes. */
function lines(): { stream: Writable; parsed: () => Record<string, unknown>[] } {
  const chunks: string[] = [];
  const stream = new Writable({
    write(chunk, _encoding, done) {
      chunks.push(String(chunk));
      done();
    },
  });
  return {
    stream,
    parsed: () =>
      chunks
        .join('')
        .split('\n')
        .filter((l) => l !== '')
        .map((l) => JSON.parse(l) as Record<string, unknown>),
  };
}

describe('the Temporal logger adapter', () => {
  it("writes the SDK's lines as Barge JSON, with the batch id of a batch workflow and no task token", () => {
    const out = lines();
    const temporal = new TemporalLogger(createLogger({ name: 'w', level: 'info', destination: out.stream }));
    temporal.warn('Activity failed', {
      sdkComponent: 'worker',
      workflowId: 'batch_abc123',
      activityType: 'dispatchChunk',
      attempt: 2,
      taskToken: 'c2VjcmV0LXRhc2stdG9rZW4=',
      error: new Error('Postgres is gone'),
    });
    temporal.debug('below the level', { workflowId: 'batch_abc123' });
    temporal.info('Worker state changed', { state: 'RUNNING', workflowId: 'not-a-batch' });

    const [failed, state] = out.parsed();
    expect(out.parsed()).toHaveLength(2);
    expect(failed).toMatchObject({
      level: 'warn',
      msg: 'Activity failed',
      batch_id: 'batch_abc123',
      temporal: { activityType: 'dispatchChunk', attempt: 2, workflowId: 'batch_abc123' },
      err: { message: 'Postgres is gone' },
    });
    expect(JSON.stringify(failed)).not.toContain('c2VjcmV0LXRhc2stdG9rZW4=');
    expect(state).toMatchObject({ level: 'info', temporal: { state: 'RUNNING' } });
    expect(state.batch_id).toBeUndefined();
  });
});

describe('the logger', () => {
  it('redacts credentials wherever a line would carry them', () => {
    const out = lines();
    const logger = createLogger({ name: 'api', level: 'debug', destination: out.stream });
    logger.info(
      {
        req: {
          headers: { authorization: 'Bearer sk-live-1', 'x-api-key': 'sk-live-2', cookie: 'session=3' },
        },
        upstream: { apiKey: 'sk-live-4' },
        api_key: 'sk-live-5',
      },
      'a request',
    );
    const text = JSON.stringify(out.parsed());
    for (const secret of ['sk-live-1', 'sk-live-2', 'session=3', 'sk-live-4', 'sk-live-5']) {
      expect(text).not.toContain(secret);
    }
    expect(out.parsed()[0]).toMatchObject({ req: { headers: { authorization: '[redacted]' } } });
  });
});

describe('the worker metrics server', () => {
  it("serves the registry followed by the Temporal exporter's text, and nothing else", async () => {
    const temporal = createServer((_req, res) => {
      res.end('# TYPE temporal_num_pollers gauge\ntemporal_num_pollers{poller_type="activity_task"} 3\n');
    });
    await new Promise<void>((r) => temporal.listen(0, '127.0.0.1', r));
    const temporalUrl = `http://127.0.0.1:${(temporal.address() as AddressInfo).port}/metrics`;
    const metrics = new Metrics();
    metrics.transition('completed');
    const server = await startMetricsServer({
      host: '127.0.0.1',
      port: 0,
      metrics,
      extra: scrapeText(temporalUrl),
      logger: createLogger({ name: 'w', level: 'error', destination: lines().stream }),
    });
    try {
      const res = await fetch(server.url);
      expect(res.headers.get('content-type')).toContain('text/plain');
      const samples = parseExposition(await res.text());
      expect(samples).toEqual(
        expect.arrayContaining([
          { name: 'barge_batch_transitions_total', labels: { status: 'completed' }, value: 1 },
          { name: 'temporal_num_pollers', labels: { poller_type: 'activity_task' }, value: 3 },
        ]),
      );
      expect((await fetch(server.url.replace('/metrics', '/'))).status).toBe(404);
    } finally {
      await server.close();
      await new Promise((r) => temporal.close(r));
    }
  });

  it("still serves Barge's metrics when the Temporal exporter does not answer", async () => {
    const metrics = new Metrics();
    metrics.transition('failed');
    const server = await startMetricsServer({
      host: '127.0.0.1',
      port: 0,
      metrics,
      extra: scrapeText(`http://127.0.0.1:${await freePort()}/metrics`, 500),
      logger: createLogger({ name: 'w', level: 'error', destination: lines().stream }),
    });
    try {
      const text = await (await fetch(server.url)).text();
      expect(parseExposition(text)).toContainEqual({
        name: 'barge_batch_transitions_total',
        labels: { status: 'failed' },
        value: 1,
      });
      expect(text).toMatch(/^# http:\/\/127\.0\.0\.1:\d+\/metrics could not be scraped/m);
    } finally {
      await server.close();
    }
  });
});
