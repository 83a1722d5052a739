import 'reflect-metadata';
import { runCli } from './cli';

/** Entry point of the `barge` command (bin/barge.js loads this file from dist/). */
const terminal = process.stdout.isTTY && process.env.TERM !== 'dumb';

// Ctrl-C during a watch: end the progress line, so the prompt starts on a line of its own.
process.once('SIGINT', () => {
  if (terminal) process.stdout.write('\n');
  process.exit(130);
});

runCli(
  process.argv.slice(2),
  {
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
