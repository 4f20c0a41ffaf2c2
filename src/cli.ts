#!/usr/bin/env -S node --max-semi-space-size=1
// Entry point (package.json bin). Everything lives in cli/program.ts; this file only runs it and sets the exit code.
import { runCli } from './cli/program.js';

// `vxlan-router fdb | head`: the reader went away; stop quietly, as other Unix tools do, instead of a stack trace.
for (const s of [process.stdout, process.stderr]) {
  s.on('error', (err: NodeJS.ErrnoException) => {
    if (err.code !== 'EPIPE') throw err;
    process.exit(process.exitCode ?? 0);
  });
}

process.exitCode = await runCli(process.argv);
// Exit explicitly: a TAP read still pending in the thread pool (js engine) must not keep the process alive. But
// first let stdout and stderr drain: writes to a pipe are asynchronous, and exiting at once cut `status --json`
// of a router with a thousand peers short.
const drained = (s: NodeJS.WriteStream): Promise<void> => new Promise((resolve) => s.write('', () => resolve()));
await Promise.all([drained(process.stdout), drained(process.stderr)]);
process.exit();
