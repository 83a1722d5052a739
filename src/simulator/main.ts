/**
 * CLI entry: node dist/src/simulator/main.js [--port 8100] [--latency lognormal:100,0.5] ...
 * Exit codes: 0 after SIGTERM/SIGINT, 1 if the server cannot start, 2 for bad options.
 */
import { OptionError, parseCli, USAGE, type CliResult } from './options';
import { startSimulator } from './server';

async function main(): Promise<void> {
  let cli: CliResult;
  try {
    cli = parseCli(process.argv.slice(2), process.env);
  } catch (error) {
    if (!(error instanceof OptionError)) throw error;
    process.stderr.write(`simulator: ${error.message}\n\n${USAGE}`);
    process.exit(2);
  }
  if (cli.kind === 'help') {
    process.stdout.write(USAGE);
    return;
  }

  const simulator = await startSimulator(cli.options);
  // Scripts wait for this exact line (and parse the port from it when started with --port 0).
  process.stdout.write(`simulator listening on ${simulator.url}\n`);

  let stopping = false;
  const stop = (): void => {
    if (stopping) return;
    stopping = true;
    simulator.close().then(
      () => process.exit(0),
      (error: unknown) => {
        console.error('simulator: error while closing', error);
        process.exit(1);
      },
    );
  };
  process.on('SIGTERM', stop);
  process.on('SIGINT', stop);
}

main().catch((error: unknown) => {
  console.error('simulator: failed to start:', error instanceof Error ? error.message : error);
  process.exit(1);
});
