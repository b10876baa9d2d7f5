#!/usr/bin/env node
// Entry point of the qmcp command; the compiled CLI lives under dist/.
import { setFlagsFromString } from 'node:v8';

// The MCP server runs for hours and builds a server instance per HTTP
// request. A young generation that stays small and an old one sized for
// memory rather than speed halve its resident memory, for about a fifth
// more CPU (docs/benchmarks.md). Both are heuristics V8 reads at each
// collection; they are set before anything is loaded.
if (process.argv[2] === 'serve') {
  setFlagsFromString('--optimize-for-size');
  setFlagsFromString('--semi-space-growth-factor=1');
}

const { main } = await import('../dist/src/cli/main.js');
process.exitCode = await main(process.argv.slice(2));
