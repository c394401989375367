#!/usr/bin/env node
// The `infergate` bin. All logic is in render-command.ts so tests can call it without a process.
import { main } from './render-command.js';

process.exitCode = main(process.argv.slice(2));
