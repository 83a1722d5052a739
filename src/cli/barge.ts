import 'reflect-metadata';
import { runCli } from './cli';

/** Entry point of the `barge` command (bin/barge.js loads this file from dist/). */
const terminal = process.stdout.isTTY && process.env.TERM !== 'dumb';

// Ctrl-C during a watch: end the progress line, so the prompt starts on a line of its own.
process.once('SIGINT', () => {
  if (terminal) process.stdout.write('\n');
  process.exit(130);
});

/** More than any key; stdin beyond it is refused rather than held. */
const MAX_STDIN_BYTES = 64 * 1024;

/** A piped stdin whole; at a terminal, one line typed without echo (raw mode), after a prompt. */
function readStdin(prompt: string): Promise<string> {
  const stdin = process.stdin;
  return new Promise((resolve, reject) => {
    let text = '';
    const done = (error?: Error) => {
      stdin.removeListener('data', onData).removeListener('end', onEnd).removeListener('error', done);
      if (stdin.isTTY) {
        stdin.setRawMode(false);
        process.stderr.write('\n');
      }
      stdin.pause();
      if (error) reject(error);
      else resolve(text);
    };
    const onData = (chunk: Buffer) => {
      if (!stdin.isTTY) {
        text += chunk.toString('utf8');
        if (text.length > MAX_STDIN_BYTES) done(new Error(`stdin holds more than ${MAX_STDIN_BYTES} bytes`));
        return;
      }
      for (const ch of chunk.toString('utf8')) {
        if (ch === '\r' || ch === '\n' || ch === '\u0004') return done();
        if (ch === '\u0003') return done(new Error('interrupted'));
        if (ch === '\u007f' || ch === '\b') text = text.slice(0, -1);
        else text += ch;
      }
    };
    const onEnd = () => done();
    if (stdin.isTTY) {
      process.stderr.write(prompt);
      stdin.setRawMode(true);
    }
    stdin.on('data', onData).once('end', onEnd).once('error', done);
    stdin.resume();
  });
}

runCli(
  process.argv.slice(2),
  {
    readStdin,
    out: (text) => process.stdout.write(`${text}\n`),
    err: (text) => process.stderr.write(`${text}\n`),
    write: (text) => process.stdout.write(text),
    tty: terminal
      ? {
          get columns() {
            return process.stdout.columns || 80;
          },
        }
      : undefined,
  },
  process.env,
).then(
  (code) => {
    process.exitCode = code;
  },
  (err: Error) => {
    process.stderr.write(`barge: ${err.stack ?? err.message}\n`);
    process.exitCode = 1;
  },
);
