import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import type { AuditEntry } from '../../src/dom0/audit/index.js';
import { fileWitness, verifyAudit } from '../../src/dom0/audit/index.js';
import { parseLine } from '../../src/dom0/audit/entry.js';
import { chainFiles } from '../../src/dom0/audit/files.js';
import { hangBoundMs } from '../../verify/hang-bound.js';
import { readLines, tempRoot } from './helpers.js';

const CHILDREN = 4;
const PAIRS = 20;
/** A child may wait for every other child's appends (fsynced each); a hang bound, not a window. */
const LOCK_WAIT_MS = hangBoundMs(120_000);

const CHILD = `
const [moduleUrl, root, principal, pairs, lockWaitMs] = process.argv.slice(2);
const { openAudit } = await import(moduleUrl);
const log = openAudit({ root, maxFileBytes: 4096, lockTimeoutMs: Number(lockWaitMs) });
for (let i = 0; i < Number(pairs); i++) {
  const id = await log.intent({ principal, operation: 'qmcp.Start', qubes: ['ai-' + i] });
  await log.outcome(id, { result: 'ok' });
}
`;

function runChild(script: string, args: string[]): Promise<number | null> {
  return new Promise((done, fail) => {
    const child = spawn(process.execPath, [script, ...args], { stdio: ['ignore', 'ignore', 'inherit'] });
    child.on('error', fail);
    child.on('exit', (code) => done(code));
  });
}

test('appends from several processes at once form one chain with nothing lost', async () => {
  const t = await tempRoot();
  try {
    const script = join(t.root, 'child.mjs');
    await writeFile(script, CHILD);
    const moduleUrl = pathToFileURL(join(import.meta.dirname, '..', '..', 'src', 'dom0', 'audit', 'index.js')).href;
    const codes = await Promise.all(
      Array.from({ length: CHILDREN }, (_, i) => runChild(script, [moduleUrl, t.root, `principal-${i}`, String(PAIRS), String(LOCK_WAIT_MS)])),
    );
    assert.deepEqual(codes, Array(CHILDREN).fill(0));

    const report = await verifyAudit({ root: t.root });
    assert.equal(report.valid, true, JSON.stringify(report.problems));
    assert.equal(report.entries, CHILDREN * PAIRS * 2);
    assert.ok(report.files.length > 2, 'rotation happened under concurrency');

    const entries: AuditEntry[] = [];
    for (const f of await chainFiles(t.log)) {
      for (const line of await readLines(f.path)) {
        const parsed = parseLine(line);
        assert.ok('entry' in parsed);
        entries.push(parsed.entry);
      }
    }
    assert.deepEqual(entries.map((e) => e.seq), Array.from({ length: entries.length }, (_, i) => i + 1));
    for (let i = 0; i < CHILDREN; i++) {
      const mine = entries.filter((e) => e.principal === `principal-${i}`);
      const intents = mine.filter((e) => e.kind === 'intent');
      assert.deepEqual(intents.map((e) => e.qubes[0]), Array.from({ length: PAIRS }, (_, j) => `ai-${j}`));
      for (const intent of intents) {
        const outcomes = mine.filter((e) => e.kind === 'outcome' && e.correlation === intent.correlation);
        assert.equal(outcomes.length, 1);
        assert.ok((outcomes[0] as AuditEntry).seq > intent.seq);
      }
    }
    const heads = await fileWitness(join(t.root, 'var', 'lib', 'qmcp', 'audit-witness')).heads();
    assert.equal(heads?.length, CHILDREN * PAIRS * 2);
  } finally {
    await t.done();
  }
});
