import 'reflect-metadata';
import { runCli } from './cli';

/** Entry point of the `barge` command (bin/barge.js loads this file from dist/). */
runCli(process.argv.slice(2), {
  out: (text) => process.stdout.write(`${text}\n`),
  err: (text) => process.stderr.write(`${text}\n`),
}).then(
  (code) => {
    process.exitCode = code;
  },
  (err: Error) => {
    process.stderr.write(`barge: ${err.stack ?? err.message}\n`);
    process.exitCode = 1;
  },
);
