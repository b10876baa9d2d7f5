#!/usr/bin/env node
// Entry point of the qmcp command; the compiled CLI lives under dist/.
import { main } from '../dist/src/cli/main.js';

process.exitCode = await main(process.argv.slice(2));
