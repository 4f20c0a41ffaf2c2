#!/usr/bin/env node
// Entry point (package.json bin). Everything lives in cli/program.ts; this file only runs it and sets the exit code.
import { runCli } from './cli/program.js';

process.exitCode = await runCli(process.argv);
// Exit explicitly: a TAP read still pending in the thread pool (js engine) must not keep the process alive.
process.exit();
