/**
 * The reaper, run by the qmcp-reaper timer only (never by an agent's call):
 * one run of reaper.ts at the time it starts.
 */
import { reap } from './reaper.js';

reap(process.env, new Date(), (line) => {
  process.stdout.write(`${JSON.stringify(line).slice(1, -1)}\n`);
}).then(
  (status) => {
    process.exitCode = status;
  },
  (err: unknown) => {
    process.stderr.write(`qmcp-reaper: ${(err as Error).message}\n`);
    process.exitCode = 1;
  },
);
