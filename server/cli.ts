#!/usr/bin/env node
import { runCli, type CliIo } from './cli-commands.js';

/** `sekimori-server`: the process side of the CLI (streams, signals, exit code); commands live in cli-commands.ts. */
const io: CliIo = {
  stdout: (line) => {
    process.stdout.write(`${line}\n`);
  },
  stderr: (line) => {
    process.stderr.write(`${line}\n`);
  },
  untilStopSignal: () =>
    new Promise((resolve) => {
      // The handlers stay installed: a second signal (Ctrl+C reaches every process of the
      // terminal, then a launcher sends SIGTERM too) must not kill a clean shutdown half-way.
      const stop = (signal: NodeJS.Signals): void => resolve(signal);
      process.on('SIGTERM', stop);
      process.on('SIGINT', stop);
    }),
};

// Exit by letting the event loop drain (so buffered stdout is flushed), not process.exit().
process.exitCode = await runCli(process.argv.slice(2), io);
