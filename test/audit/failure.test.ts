import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { appendFile, chmod, mkdir, mkdtemp, rm, stat, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { BrokenHeadError, LockBusyError, TornTailError, auditLogPath, openAudit, verifyAudit } from '../../src/dom0/audit/index.js';
import { fill, open, readLines, tempRoot } from './helpers.js';

const intent = { principal: 'mcp-control', operation: 'qmcp.Start', qubes: ['ai-a'] };

test('a missing log directory makes the intent fail, and nothing is created', async () => {
  const root = await mkdtemp(join(tmpdir(), 'qmcp-audit-'));
  try {
    await assert.rejects(openAudit({ root }).intent(intent), { code: 'ENOENT' });
    await assert.rejects(stat(dirname(auditLogPath(root))), { code: 'ENOENT' });
  } finally {
    await rm(root, { recursive: true, force: true });
  }
});

test('a log directory that is not a directory makes the intent fail', async () => {
  const root = await mkdtemp(join(tmpdir(), 'qmcp-audit-'));
  try {
    await mkdir(join(root, 'var', 'log'), { recursive: true });
    await writeFile(join(root, 'var', 'log', 'qmcp'), 'not a directory');
    await assert.rejects(openAudit({ root }).intent(intent), { code: 'ENOTDIR' });
  } finally {
    await rm(root, { recursive: true, force: true });
  }
});

test('a read-only log directory and file make the intent fail', { skip: process.getuid?.() === 0 ? 'root ignores file modes' : false }, async () => {
  const t = await tempRoot();
  try {
    await chmod(t.log, 0o440);
    await chmod(dirname(t.log), 0o550);
    await assert.rejects(open(t.root).intent(intent), { code: 'EACCES' });
  } finally {
    await chmod(dirname(t.log), 0o750);
    await t.done();
  }
});

test('a log whose last line is torn refuses further appends', async () => {
  const t = await tempRoot();
  try {
    const log = open(t.root);
    await fill(log, 1);
    await appendFile(t.log, '{"seq":3,"ti');
    await assert.rejects(log.intent(intent), TornTailError);
    assert.equal((await readLines(t.log)).length, 2);
  } finally {
    await t.done();
  }
});

test('a log whose last entry is not valid refuses further appends', async () => {
  const t = await tempRoot();
  try {
    await fill(open(t.root), 1);
    await appendFile(t.log, '{"forged":true}\n');
    await assert.rejects(open(t.root).intent(intent), BrokenHeadError);
  } finally {
    await t.done();
  }
});

test('a lock held by a live process makes the intent fail after the bounded wait', async () => {
  const t = await tempRoot();
  try {
    await writeFile(`${t.log}.lock`, `${process.pid} ${'a'.repeat(32)}\n`);
    await assert.rejects(open(t.root, { lockTimeoutMs: 100 }).intent(intent), LockBusyError);
    assert.deepEqual(await readLines(t.log), []);
  } finally {
    await t.done();
  }
});

test('a lock left by a dead process is broken and the append goes through', async () => {
  const t = await tempRoot();
  try {
    const dead = spawnSync(process.execPath, ['-e', 'process.stdout.write(String(process.pid))'], { encoding: 'utf8' });
    const pid = Number(dead.stdout);
    assert.ok(pid > 0);
    await writeFile(`${t.log}.lock`, `${pid} ${'b'.repeat(32)}\n`);
    await fill(open(t.root, { lockTimeoutMs: 2000 }), 1);
    assert.equal((await verifyAudit({ root: t.root })).entries, 2);
  } finally {
    await t.done();
  }
});

test('an outcome that cannot be written rejects', async () => {
  const t = await tempRoot();
  try {
    const log = open(t.root, { lockTimeoutMs: 100 });
    const id = await log.intent(intent);
    await writeFile(`${t.log}.lock`, `${process.pid} ${'c'.repeat(32)}\n`);
    await assert.rejects(log.outcome(id, { result: 'ok' }), LockBusyError);
  } finally {
    await t.done();
  }
});
