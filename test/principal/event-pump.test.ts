/**
 * The background pump against a scripted qrexec-client-vm: windows back to
 * back with the configured length, failed and truncated windows reported as
 * missed, and the hanging window's child killed on close.
 */
import assert from 'node:assert/strict';
import { chmod, mkdir, mkdtemp, readdir, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import { EventStreams } from '../../src/principal/events/streams.js';
import { QrexecRunner } from '../../src/principal/qrexec.js';
import { until } from './fake-qrexec.js';

const row = (subject: string): object => ({ event: 'domain-start', subject, class: 'AppVM', time: '2026-01-01T00:00:00.000Z' });

// window 1: three rows; 2: fails; 3: two rows, truncated; then it hangs like an open window
const SCRIPT = `#!/usr/bin/env node
const fs = require('node:fs');
const path = require('node:path');
const dir = process.env.PUMP_DIR;
const n = fs.readdirSync(dir).filter((f) => f.startsWith('call-')).length + 1;
fs.writeFileSync(path.join(dir, 'call-' + n), process.argv.slice(2).join(' '));
const replies = {
  1: { events: ${JSON.stringify([row('ai-a'), row('ai-b'), row('ai-c')])}, truncated: false },
  3: { events: ${JSON.stringify([row('ai-d'), row('ai-e')])}, truncated: true },
};
process.stdin.resume();
process.stdin.on('end', () => {
  if (n === 2) process.exit(1);
  if (replies[n]) { process.stdout.write(JSON.stringify(replies[n]) + '\\n'); return; }
  setInterval(() => {}, 1000);
});
`;

async function scripted(): Promise<{ dir: string; runner: QrexecRunner }> {
  const dir = await mkdtemp(join(tmpdir(), 'qmcp-pump-'));
  const client = join(dir, 'client');
  await writeFile(client, SCRIPT);
  await chmod(client, 0o755);
  const calls = join(dir, 'calls');
  await mkdir(calls);
  return { dir: calls, runner: new QrexecRunner({ client, env: { ...process.env, PUMP_DIR: calls } }) };
}

const never = new AbortController().signal;

for (const [bufferSize, expected] of [
  [10, { subjects: ['ai-a', 'ai-b', 'ai-c', 'ai-d', 'ai-e'], missed: true }],
  [4, { subjects: ['ai-d', 'ai-e'], missed: true }],
] as const) {
  test(`failed and truncated windows, and a ring of ${bufferSize}, are reported as missed`, async () => {
    const { dir, runner } = await scripted();
    const streams = new EventStreams(runner, { windowSeconds: 7, bufferSize, retryMs: 10 });
    try {
      const opened = await streams.poll(undefined, 1, never);
      // the fourth window stays open: everything before it is buffered
      await until(async () => (await readdir(dir)).includes('call-4') && runner.active === 1, 'the fourth window');
      assert.equal(await readFile(join(dir, 'call-1'), 'utf8'), '-- @adminvm qmcp.Events+7');
      const got = await streams.poll(opened.cursor, 1, never);
      assert.deepEqual({ subjects: got.events.map((e) => e.qube), missed: got.missed }, expected);
      const next = await streams.poll(got.cursor, 1, never);
      assert.deepEqual([next.events, next.missed, next.cursor], [[], undefined, got.cursor]);
    } finally {
      await streams.close();
      assert.equal(runner.active, 0);
      runner.close();
      await rm(join(dir, '..'), { recursive: true, force: true });
    }
  });
}
