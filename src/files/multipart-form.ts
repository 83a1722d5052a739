import busboy from 'busboy';
import type { IncomingMessage } from 'node:http';
import type { Readable } from 'node:stream';
import { invalidRequest, OpenAIError } from '../common/openai-error';
import { echo } from '../common/text';

export interface MultipartHandlers {
  /** A text field. Throwing rejects the whole form at once. */
  onField(name: string, value: string): void;
  /**
   * A file part. The handler should consume `stream` (that is what moves the form along) and
   * settle once it has; whatever it leaves unread is drained. A rejection fails the form.
   */
  onFile(name: string, stream: Readable, filename: string): Promise<void>;
}

export interface MultipartOptions {
  /** An upload that sends nothing for this long is given up. */
  idleTimeoutMs: number;
}

/** Bytes of an abandoned body read and thrown away so the client still sees our answer. */
const DRAIN_LIMIT = 64 * 1024 * 1024;
/** One file per form (OpenAI's rule); fields are few and short. */
const FORM_LIMITS = { files: 1, fields: 16, fieldSize: 4096 };

const malformed = (err: Error) =>
  invalidRequest(`The multipart body is malformed: ${echo(err.message)}.`, null, 'invalid_multipart');

const notMultipart = () =>
  invalidRequest(
    "Expected a multipart/form-data body with a 'file' part and a 'purpose' field.",
    null,
    'invalid_content_type',
  );

/**
 * Reads a multipart/form-data request with busboy, in the order the client sent its parts,
 * without holding more than busboy's small buffers: file parts are streams the handler
 * consumes, and back-pressure pauses the socket meanwhile.
 *
 * Resolves once the whole form is read and every handler has settled. On any failure (a
 * handler error, a malformed body, the client going away) the file stream in flight is
 * destroyed with the error, so whatever is reading it fails too, and the promise rejects only
 * after every handler has settled, so the caller knows nothing is still being written.
 */
export function readMultipartForm(
  req: IncomingMessage,
  handlers: MultipartHandlers,
  options: MultipartOptions,
): Promise<void> {
  return new Promise((resolve, reject) => {
    let parser: busboy.Busboy;
    try {
      parser = busboy({
        headers: req.headers,
        // Names are UTF-8 in practice; busboy's default (latin1) would mangle them.
        defParamCharset: 'utf8',
        // Directory parts are stripped by our own sanitiser, so every rule lives in one place.
        preservePath: true,
        limits: FORM_LIMITS,
      });
    } catch {
      discardBody(req);
      reject(notMultipart());
      return;
    }

    const inFlight: Promise<void>[] = [];
    let failed = false;
    const fail = (err: unknown) => {
      if (failed) return;
      failed = true;
      req.unpipe(parser);
      // The idle timeout stays: it also bounds the drain below.
      parser.destroy(err instanceof Error ? err : new Error(String(err)));
      discardBody(req);
      void Promise.allSettled(inFlight).then(() => reject(err));
    };

    parser.on('field', (name, value, info) => {
      if (failed) return;
      if (info.valueTruncated) {
        fail(invalidRequest(`The value of '${echo(name)}' is too long.`, name, 'invalid_value'));
        return;
      }
      try {
        handlers.onField(name, value);
      } catch (err) {
        fail(err);
      }
    });
    parser.on('file', (name, stream, info) => {
      // Busboy destroys the part's stream with the form's error (ours, when we refuse the form
      // midway, or its own for a truncated body). Errors reach the handler through its reads;
      // one emitted when nothing reads any more must not become an uncaught 'error' event,
      // which would end the process.
      let streamError: Error | undefined;
      stream.on('error', (err: Error) => (streamError = err));
      if (failed) {
        stream.resume();
        return;
      }
      const handled = (async () => handlers.onFile(name, stream, info.filename ?? ''))()
        // A handler that settled without reading all of its part (it refused it) must not stall the form.
        .finally(() => stream.resume())
        .catch((err: unknown) => {
          // Busboy's own complaint about the part (e.g. the body ended inside it) is the client's fault.
          fail(err === streamError && !(err instanceof OpenAIError) ? malformed(err as Error) : err);
        });
      inFlight.push(handled);
    });
    parser.on('filesLimit', () =>
      fail(invalidRequest('Only one file can be uploaded per request.', 'file', 'invalid_value')),
    );
    parser.on('fieldsLimit', () =>
      fail(invalidRequest('The form has too many fields.', null, 'invalid_value')),
    );
    parser.on('error', (err: Error) => fail(err instanceof OpenAIError ? err : malformed(err)));
    parser.on('close', () => {
      if (failed) return;
      req.setTimeout(0);
      void Promise.all(inFlight).then(() => {
        if (!failed) resolve();
      });
    });

    // The client went away before the body ended: stop everything this request started.
    req.on('close', () => {
      if (!req.complete) fail(uploadInterrupted());
    });
    req.setTimeout(options.idleTimeoutMs, () => {
      fail(uploadInterrupted());
      req.destroy();
    });
    req.pipe(parser);
  });
}

/** Not a server fault, and nobody is left to read it: a quiet 400. */
const uploadInterrupted = () => invalidRequest('The upload was interrupted before it completed.');

/**
 * Reads and drops the rest of a body we will not use, so the client can finish sending and
 * read the error instead of meeting a reset connection. Past DRAIN_LIMIT the connection is cut.
 */
export function discardBody(req: IncomingMessage): void {
  if (req.complete || req.destroyed) return;
  let drained = 0;
  req.on('data', (chunk: Buffer) => {
    drained += chunk.length;
    if (drained > DRAIN_LIMIT) req.destroy();
  });
  req.resume();
}
