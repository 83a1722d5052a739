import * as proto from '@temporalio/proto';
import { patchProtobufRoot } from '@temporalio/proto/lib/patch-protobuf-root';
import { readdirSync, readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { join } from 'node:path';
import { gunzipSync } from 'node:zlib';

/**
 * Workflow histories as proto3 JSON (the form `temporal workflow show --output json` writes).
 *
 * Not through @temporalio/common's historyFromJSON/historyToJSON: in this install npm gives
 * @temporalio/common, proto and worker each their own protobufjs copy, and those helpers throw
 * "type must be a Type" (see test/fixtures/histories/first-release/README.md). The protojson of
 * the copy @temporalio/proto loaded works.
 */

type History = proto.temporal.api.history.v1.IHistory;

interface ProtoJson {
  fromJson(type: unknown, json: unknown, options?: { ignoreUnknownFields?: boolean }): unknown;
  toJson(type: unknown, message: unknown): unknown;
}

const protojson = createRequire(require.resolve('@temporalio/proto'))(
  'protobufjs/ext/protojson',
) as ProtoJson;
const historyType = (patchProtobufRoot(proto) as unknown as { lookupType(name: string): unknown }).lookupType(
  'temporal.api.history.v1.History',
);

export function historyFromProtoJson(text: string): History {
  return protojson.fromJson(historyType, JSON.parse(text), { ignoreUnknownFields: true }) as History;
}

export function historyToProtoJson(history: History): string {
  return JSON.stringify(protojson.toJson(historyType, history), null, 2) + '\n';
}

/** The histories of a fixture folder (`*.json`, or `*.json.gz`), by file name. */
export function loadHistories(dir: string): { file: string; workflowId: string; history: History }[] {
  return readdirSync(dir)
    .filter((f) => f.endsWith('.json') || f.endsWith('.json.gz'))
    .sort()
    .map((file) => {
      const bytes = readFileSync(join(dir, file));
      const history = historyFromProtoJson(
        (file.endsWith('.gz') ? gunzipSync(bytes) : bytes).toString('utf8'),
      );
      return { file, workflowId: workflowIdOf(history) ?? file.replace(/\.json(\.gz)?$/, ''), history };
    });
}

/** The workflow id of a run, from its first event (the test server does not write it there). */
export function workflowIdOf(history: History): string | undefined {
  const first = history.events?.[0];
  if (!first?.workflowExecutionStartedEventAttributes) {
    throw new Error('not a workflow history: its first event is not WorkflowExecutionStarted');
  }
  return first.workflowExecutionStartedEventAttributes.workflowId ?? undefined;
}
