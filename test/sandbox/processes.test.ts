/**
 * A running qube is a machine: what one call leaves behind (a process in
 * the background, a file in /tmp) is there for the next call, as on a real
 * qube, until the qube stops. Each check runs again against a weakened
 * qmcp.Exec that cleans up after its command, which it must catch.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { cp, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { decodeExecReply, decodeReadFileReply, encodeExecRequest, encodeReadFileRequest } from '../../src/shared/inqube-protocol.js';
import { defaultServicesDir } from '../../src/sim/sandbox/index.js';
import type { QubeSandboxes } from '../../src/sim/sandbox/index.js';
import { callService, hostProcessesWith, skipWithoutBwrap, withSandboxes } from './helpers.js';

const skip = skipWithoutBwrap;
const from = { source: 'mcp-control', argument: '' };

async function exec(s: QubeSandboxes, qube: string, shell: string): Promise<string> {
  const run = await callService(s, { ...from, qube, service: 'qmcp.Exec' }, encodeExecRequest({ shell, timeoutSeconds: 600 }));
  const r = decodeExecReply(run.stdout);
  assert.equal(r.exitStatus, 0, Buffer.concat([r.stderr.head, r.stderr.tail]).toString());
  return Buffer.concat([r.stdout.head, r.stdout.tail]).toString();
}

/** A copy of src/qube whose qmcp.Exec has GUARD replaced by WEAKENED. */
async function weakenedServices(guard: string, weakened: string): Promise<string> {
  const dir = await mkdtemp(join(tmpdir(), 'qmcp-weak-services-'));
  await cp(defaultServicesDir(), dir, { recursive: true });
  const exec = join(dir, 'qmcp.Exec');
  const text = await readFile(exec, 'utf8');
  assert.equal(text.split(guard).length, 2, `the guard ${guard} is in qmcp.Exec once`);
  await writeFile(exec, text.replace(guard, weakened));
  return dir;
}

async function backgroundSurvives(servicesDir?: string): Promise<void> {
  await withSandboxes(async (s) => {
    await s.beforeStart('app');
    const token = `qmcp-sleeper-${process.pid}-${Math.random().toString(36).slice(2)}`;
    // `[q]` keeps the grep itself from matching
    const count = `grep -ls '[q]${token.slice(1)}' /proc/[0-9]*/cmdline | wc -l`;
    assert.equal(await exec(s, 'app', `nohup /bin/sh -c 'sleep 1000; :' ${token} >/dev/null 2>&1 & echo started`), 'started\n');
    assert.equal((await exec(s, 'app', count)).trim(), '1', 'the process started by the first call runs on in the next');
    await s.afterStop('app');
    assert.equal(hostProcessesWith(token), 0, 'stopping the qube ends it');
    await s.beforeStart('app');
    assert.equal((await exec(s, 'app', count)).trim(), '0');
  }, servicesDir);
}

async function tmpLasts(servicesDir?: string): Promise<void> {
  await withSandboxes(async (s) => {
    for (const qube of ['app', 'tpl']) {
      await s.beforeStart(qube);
      assert.equal(await exec(s, qube, 'echo draft > /tmp/note.txt && echo ok'), 'ok\n');
      const read = await callService(s, { ...from, qube, service: 'qmcp.ReadFile' }, encodeReadFileRequest({ path: '/tmp/note.txt' }));
      assert.equal(decodeReadFileReply(read.stdout).content.toString(), 'draft\n', `${qube}: a later call reads it`);
      assert.equal(await exec(s, qube, 'cp /tmp/note.txt /home/user/note.txt && cat /home/user/note.txt'), 'draft\n');
      await s.afterStop(qube);
      await s.beforeStart(qube);
      // /tmp is the qube's memory: gone at shutdown, even where the root volume is kept
      assert.equal(await exec(s, qube, '[ -e /tmp/note.txt ] || echo gone; cat /home/user/note.txt'), 'gone\ndraft\n');
    }
  }, servicesDir);
}

test('a process one call leaves in the background runs on in the next, until the qube stops', { skip }, async () => {
  await backgroundSurvives();
});

test('a file written to /tmp by one call is read and copied by the next; it is gone after a restart', { skip }, async () => {
  await tmpLasts();
});

test('a weakened qmcp.Exec that kills what its command left behind is caught', { skip }, async () => {
  const dir = await weakenedServices('wait "$command"\n', 'wait "$command"\nkill -KILL "-$command" 2>/dev/null\n');
  try {
    await assert.rejects(backgroundSurvives(dir), /runs on in the next/);
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
});

test('a weakened qmcp.Exec that gives each command a fresh /tmp is caught', { skip }, async () => {
  // (the service runs with globbing off, so no /tmp/* here)
  const dir = await weakenedServices(`trap 'rm -rf "$work"' EXIT`, `trap 'find /tmp -mindepth 1 -maxdepth 1 -exec rm -rf {} +' EXIT`);
  try {
    await assert.rejects(tmpLasts(dir));
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
});
