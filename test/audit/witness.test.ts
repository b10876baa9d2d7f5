import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFile, rm, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import type { AuditWitness } from '../../src/dom0/audit/index.js';
import { verifyAudit } from '../../src/dom0/audit/index.js';
import { fill, open, tempRoot } from './helpers.js';

function witnessPath(root: string): string {
  return join(root, 'var', 'lib', 'qmcp', 'audit-witness');
}

test('each append records the new head with the witness', async () => {
  const t = await tempRoot();
  try {
    await fill(open(t.root), 2);
    const lines = (await readFile(witnessPath(t.root), 'utf8')).trim().split('\n');
    assert.equal(lines.length, 4);
    assert.match(lines[3] as string, /^head seq=4 hash=[0-9a-f]{64}$/);
  } finally {
    await t.done();
  }
});

test('a missing witness fails verification of a non-empty log', async () => {
  const t = await tempRoot();
  try {
    await fill(open(t.root), 2);
    await rm(witnessPath(t.root));
    const report = await verifyAudit({ root: t.root });
    assert.equal(report.valid, false);
    assert.match(report.problems[0]?.what ?? '', /witness holds no head but the log has 4 entries/);
  } finally {
    await t.done();
  }
});

test('an empty log with no witness is valid', async () => {
  const t = await tempRoot();
  try {
    assert.equal((await verifyAudit({ root: t.root })).valid, true);
  } finally {
    await t.done();
  }
});

test('a witnessed head that disagrees with the log fails verification there', async () => {
  const t = await tempRoot();
  try {
    await fill(open(t.root), 2);
    const text = await readFile(witnessPath(t.root), 'utf8');
    await writeFile(witnessPath(t.root), text.replace(/seq=4 hash=[0-9a-f]{64}/, `seq=4 hash=${'e'.repeat(64)}`));
    const report = await verifyAudit({ root: t.root });
    assert.equal(report.valid, false);
    assert.deepEqual(report.problems.map((p) => [p.file, p.line, p.seq]), [[t.log, 4, 4]]);
  } finally {
    await t.done();
  }
});

test('an unreadable witness fails verification', async () => {
  const t = await tempRoot();
  try {
    await fill(open(t.root), 1);
    const broken: AuditWitness = { name: 'broken', record: async () => undefined, heads: async () => null };
    const report = await verifyAudit({ root: t.root, witness: broken });
    assert.equal(report.valid, false);
    assert.match(report.problems[0]?.what ?? '', /cannot be read/);
  } finally {
    await t.done();
  }
});

test('a witness that failed to record is reported, the append stands, and verify notes the lag', async () => {
  const t = await tempRoot();
  try {
    await fill(open(t.root), 1);
    const errors: unknown[] = [];
    const failing: AuditWitness = { name: 'failing', record: async () => { throw new Error('journal down'); }, heads: async () => null };
    const log = open(t.root, { witness: failing, onWitnessError: (err) => errors.push(err) });
    await log.refusal({ principal: 'mcp-control', operation: 'qmcp.Start' });
    assert.equal(errors.length, 1);
    const report = await verifyAudit({ root: t.root });
    assert.equal(report.valid, true, JSON.stringify(report.problems));
    assert.equal(report.entries, 3);
    assert.deepEqual(report.notes, ['1 entry after the last witnessed head (seq 2)']);
  } finally {
    await t.done();
  }
});

test('verify without a witness says the tail is unchecked', async () => {
  const t = await tempRoot();
  try {
    await fill(open(t.root), 1);
    const report = await verifyAudit({ root: t.root, witness: null });
    assert.equal(report.valid, true);
    assert.match(report.notes.join('\n'), /truncated tail would go unnoticed/);
  } finally {
    await t.done();
  }
});
