// Retention: rotated files past the operator's bounds are pruned, each
// after a checkpoint entry recording its last hash, and verify proves the
// chain from the prune point on and says what was pruned. A prune that
// skips the checkpoint, or records the wrong hash, is caught.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readdir } from 'node:fs/promises';
import { dirname } from 'node:path';
import { pathToFileURL } from 'node:url';
import { pruneAuditLog, verifyAudit } from '../../src/dom0/audit/index.js';
import type { AuditLog, AuditOptions, AuditReport, Retention } from '../../src/dom0/audit/index.js';
import { parseLine } from '../../src/dom0/audit/entry.js';
import { compiled, weakenedFile } from '../../verify/weakened-module.js';
import { fill, open, readLines, steppingClock, tempRoot } from './helpers.js';

type Open = (options: AuditOptions) => AuditLog;

async function logFiles(log: string): Promise<string[]> {
  return (await readdir(dirname(log))).filter((n) => /^audit\.log(\.\d+)?$/.test(n)).sort();
}

/** Writes 60 entries into ~1 KiB files with the given retention; the verify report and the files left. */
async function pruned(retention: Retention, openWith: Open = (o) => open(o.root, o)): Promise<{ report: AuditReport; files: string[]; checkpoints: number }> {
  const t = await tempRoot();
  try {
    const log = openWith({ root: t.root, clock: steppingClock(), maxFileBytes: 1024, retention });
    await fill(log, 30);
    const lines = [];
    for (const f of await logFiles(t.log)) lines.push(...(await readLines(`${dirname(t.log)}/${f}`)));
    const checkpoints = lines.filter((l) => {
      const p = parseLine(l);
      return 'entry' in p && p.entry.kind === 'prune';
    }).length;
    return { report: await verifyAudit({ root: t.root }), files: await logFiles(t.log), checkpoints };
  } finally {
    await t.done();
  }
}

test('retention by size prunes the oldest rotated files with a checkpoint each; verify proves the rest and says what was pruned', async () => {
  const kept = await pruned({ maxBytes: null, maxAgeMs: null });
  assert.equal(kept.report.valid, true, JSON.stringify(kept.report.problems));
  assert.equal(kept.report.pruned, null);
  assert.equal(kept.checkpoints, 0);

  const r = await pruned({ maxBytes: 2048, maxAgeMs: null });
  assert.equal(r.report.valid, true, JSON.stringify(r.report.problems));
  assert.ok(r.files.length < kept.files.length, `${r.files.length} files kept of ${kept.files.length}`);
  assert.ok(!r.files.includes('audit.log.1'), 'the oldest file was pruned');
  assert.ok(r.checkpoints > 0);
  assert.ok(r.report.pruned !== null && r.report.pruned.through.seq > 0);
  assert.ok(r.report.notes.some((n) => /were pruned at .* checkpoint at seq/.test(n)), JSON.stringify(r.report.notes));
});

test('retention by age prunes rotated files whose newest entry is older than the bound', async () => {
  // the stepping clock ticks one second per entry: ten seconds keeps only the newest entries' files
  const r = await pruned({ maxBytes: null, maxAgeMs: 10_000 });
  assert.equal(r.report.valid, true, JSON.stringify(r.report.problems));
  assert.ok(r.report.pruned !== null);
  assert.ok(!r.files.includes('audit.log.1') && r.files.length <= 5, r.files.join(' '));
});

test('a prune at start (no rotation) checkpoints too; nothing due appends nothing', async () => {
  const t = await tempRoot();
  try {
    const clock = steppingClock();
    await fill(open(t.root, { clock, maxFileBytes: 1024 }), 20);
    const before = await logFiles(t.log);
    assert.equal(await pruneAuditLog({ root: t.root, clock, maxFileBytes: 1024, retention: { maxBytes: null, maxAgeMs: null } }), false);
    assert.equal(await pruneAuditLog({ root: t.root, clock, maxFileBytes: 1024, retention: { maxBytes: 1, maxAgeMs: null } }), true);
    const after = await logFiles(t.log);
    assert.deepEqual(after, ['audit.log']);
    assert.ok(before.length > 1);
    const report = await verifyAudit({ root: t.root });
    assert.equal(report.valid, true, JSON.stringify(report.problems));
    assert.ok(report.pruned !== null);
  } finally {
    await t.done();
  }
});

test('weakened: a prune that deletes without its checkpoint, or records another hash, fails verify', async () => {
  const variants: [string, string, string][] = [
    ['no checkpoint', 'await writeEntry(options.logPath, entry);\n        head = { seq: entry.seq, hash: entry.hash };', ''],
    ['wrong hash', 'checkpointDetail(last, file.path)', 'checkpointDetail({ seq: last.seq, hash: last.prev }, file.path)'],
  ];
  for (const [name, guard, weakened] of variants) {
    const append = weakenedFile('dom0/audit/append', guard, weakened);
    const log = weakenedFile('dom0/audit/log', 'export function openAudit', 'export function openAudit', { [compiled('dom0/audit/append')]: append });
    const { openAudit } = (await import(pathToFileURL(log).href)) as { openAudit: Open };
    const r = await pruned({ maxBytes: 2048, maxAgeMs: null }, openAudit);
    assert.equal(r.report.valid, false, `${name}: a prune the verifier accepted`);
  }
});
