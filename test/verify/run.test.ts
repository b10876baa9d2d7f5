/** `npm run verify` says when each check ends, with its failures and seconds, before the next one starts. */
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { join } from 'node:path';
import { test } from 'node:test';

const RUN = join(import.meta.dirname, '..', '..', 'verify', 'run.js');

test('verify/run prints a line per check as it ends: name, failures, seconds', async () => {
  const child = spawn(process.execPath, [RUN, '--only', 'tamper', '--scale', '1', '--seed', '5'], { stdio: ['ignore', 'pipe', 'pipe'] });
  let stdout = '';
  let stderr = '';
  child.stdout.on('data', (c: Buffer) => (stdout += c.toString()));
  child.stderr.on('data', (c: Buffer) => (stderr += c.toString()));
  const status = await new Promise<number | null>((r) => child.once('close', r));
  assert.equal(status, 0, stdout + stderr);
  const lines = stderr.split('\n');
  const start = lines.findIndex((l) => l.startsWith('  tamper: ') && l.endsWith(' ...'));
  const end = lines.findIndex((l) => /^ {2}tamper: 0 failure\(s\) in \d+\.\d s$/.test(l));
  assert.ok(start >= 0 && end > start, stderr);
  assert.match(stdout, /\| tamper +\| seconds +\| \d+\.\d +\|/);
  // the model's coverage is checked whichever checks run
  assert.match(stdout, /\| coverage +\| gaps +\| 0 +\|/);
});
