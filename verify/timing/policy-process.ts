/**
 * A fresh process that measures the timing check's policy paths once: it
 * reads a PolicyJob as JSON on stdin, loads the policy with the job's
 * engine module, and writes one PathReading per path as JSON on stdout.
 * The check starts several (verify/timing/across.ts): what the JIT made of
 * its feedback and where the heap put each object belong to one process.
 */
import { text } from 'node:stream/consumers';
import { loadPolicy, measurePaths } from './policy-paths.js';
import type { PolicyJob } from './policy-paths.js';

const job = JSON.parse(await text(process.stdin)) as PolicyJob;
process.stdout.write(JSON.stringify(measurePaths(await loadPolicy(job.engine, job.root), job)));
