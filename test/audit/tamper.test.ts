import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFile, rm, writeFile } from 'node:fs/promises';
import type { AuditEntry, AuditProblem, AuditReport } from '../../src/dom0/audit/index.js';
import { verifyAudit } from '../../src/dom0/audit/index.js';
import { hashOf, lineOf, parseLine } from '../../src/dom0/audit/entry.js';
import { fill, open, readLines, tempRoot, writeLines } from './helpers.js';

function entryOf(line: string): AuditEntry {
  const parsed = parseLine(line);
  assert.ok('entry' in parsed, line);
  return parsed.entry;
}

/** An entry with some members changed and its hash recomputed, as a forger would. */
function forge(base: AuditEntry, change: Partial<AuditEntry>): string {
  const e = { ...base, ...change };
  return lineOf({ ...e, hash: hashOf(e) });
}

function find(report: AuditReport, where: { file: string; line?: number | null; seq?: number | null }, what: RegExp): AuditProblem {
  const hit = report.problems.find((p) =>
    p.file === where.file &&
    (where.line === undefined || p.line === where.line) &&
    (where.seq === undefined || p.seq === where.seq) &&
    what.test(p.what));
  assert.ok(hit, `no problem at ${JSON.stringify(where)} matching ${what}; got ${JSON.stringify(report.problems, null, 1)}`);
  assert.equal(report.valid, false);
  return hit;
}

/** A ten-entry log in one file; runs `tamper` on its lines, then verifies. */
async function tampered(tamper: (lines: string[], path: string) => string[] | Promise<string[]>): Promise<{ report: AuditReport; log: string }> {
  const t = await tempRoot();
  try {
    await fill(open(t.root), 5);
    const clean = await verifyAudit({ root: t.root });
    assert.equal(clean.valid, true, JSON.stringify(clean.problems));
    const lines = await readLines(t.log);
    assert.equal(lines.length, 10);
    await writeLines(t.log, await tamper(lines, t.log));
    return { report: await verifyAudit({ root: t.root }), log: t.log };
  } finally {
    await t.done();
  }
}

test('an edited field is found at its line', async () => {
  const { report, log } = await tampered((lines) => {
    lines[3] = (lines[3] as string).replace('"result":"ok"', '"result":"error"');
    return lines;
  });
  find(report, { file: log, line: 4, seq: 4 }, /hash does not match/);
});

test('an edited qube name is found at its line', async () => {
  const { report, log } = await tampered((lines) => {
    lines[6] = (lines[6] as string).replace('"ai-3"', '"ai-9"');
    return lines;
  });
  find(report, { file: log, line: 7, seq: 7 }, /hash does not match/);
});

test('an edited hash is found at its line', async () => {
  const { report, log } = await tampered((lines) => {
    const e = entryOf(lines[4] as string);
    lines[4] = lineOf({ ...e, hash: 'f'.repeat(64) });
    return lines;
  });
  find(report, { file: log, line: 5, seq: 5 }, /hash does not match/);
});

test('an edit with a recomputed hash breaks the next link', async () => {
  const { report, log } = await tampered((lines) => {
    lines[4] = forge(entryOf(lines[4] as string), { result: 'failed' });
    return lines;
  });
  find(report, { file: log, line: 6, seq: 6 }, /prev does not match the hash of line 5/);
});

test('a deleted line is found where the seq jumps', async () => {
  const { report, log } = await tampered((lines) => lines.filter((_, i) => i !== 4));
  find(report, { file: log, line: 5, seq: 6 }, /expected seq 5, found 6: 1 entry missing/);
});

test('an inserted forged line, hash recomputed and linked, is found', async () => {
  const { report, log } = await tampered((lines) => {
    const before = entryOf(lines[2] as string);
    const forged = forge(before, { seq: before.seq + 1, prev: before.hash, kind: 'refusal', result: 'refused', qubes: ['vault'] });
    lines.splice(3, 0, forged);
    return lines;
  });
  find(report, { file: log, line: 5, seq: 4 }, /expected seq 5, found 4: entries inserted or reordered/);
});

test('two swapped lines are found', async () => {
  const { report, log } = await tampered((lines) => {
    [lines[5], lines[6]] = [lines[6] as string, lines[5] as string];
    return lines;
  });
  find(report, { file: log, line: 6, seq: 7 }, /expected seq 6, found 7/);
  find(report, { file: log, line: 7, seq: 6 }, /inserted or reordered/);
});

test('a truncated tail is found through the witness', async () => {
  const { report, log } = await tampered((lines) => lines.slice(0, 8));
  find(report, { file: log, line: null, seq: 8 }, /log ends at seq 8 but the witness saw seq 10: tail truncated/);
});

test('a log emptied entirely is found through the witness', async () => {
  const { report, log } = await tampered(() => []);
  find(report, { file: log, seq: 0 }, /witness saw seq 10/);
});

test('a tail truncated inside a line is found', async () => {
  const t = await tempRoot();
  try {
    await fill(open(t.root), 5);
    const text = await readFile(t.log, 'utf8');
    await writeFile(t.log, text.slice(0, text.length - 40));
    const report = await verifyAudit({ root: t.root });
    find(report, { file: t.log, line: 10 }, /cut short/);
    find(report, { file: t.log, line: null }, /tail truncated/);
  } finally {
    await t.done();
  }
});

test('a rewrite of the whole chain from some point on is caught by the witnessed heads', async () => {
  const { report, log } = await tampered((lines) => {
    let prev = entryOf(lines[2] as string).hash;
    for (let i = 3; i < lines.length; i++) {
      const e = entryOf(lines[i] as string);
      const changed = i === 3 ? { result: 'failed' as const } : {};
      const unhashed = { ...e, ...changed, prev };
      const line = lineOf({ ...unhashed, hash: hashOf(unhashed) });
      lines[i] = line;
      prev = entryOf(line).hash;
    }
    return lines;
  });
  find(report, { file: log, line: 4, seq: 4 }, /differs from the head the witness recorded/);
  find(report, { file: log, line: 10, seq: 10 }, /differs from the head the witness recorded/);
});

async function rotatedLog(): Promise<Awaited<ReturnType<typeof tempRoot>>> {
  const t = await tempRoot();
  await fill(open(t.root, { maxFileBytes: 1500 }), 10);
  assert.equal((await verifyAudit({ root: t.root })).valid, true);
  return t;
}

test('an edit with a recomputed hash at the end of a rotated file is found in the next file', async () => {
  const t = await rotatedLog();
  try {
    const lines = await readLines(`${t.log}.1`);
    lines[lines.length - 1] = forge(entryOf(lines.at(-1) as string), { qubes: ['vault'] });
    await writeLines(`${t.log}.1`, lines);
    const report = await verifyAudit({ root: t.root });
    find(report, { file: `${t.log}.2`, line: 1 }, /prev does not match the hash of the last entry of the previous file/);
  } finally {
    await t.done();
  }
});

test('a deleted rotated file is found', async () => {
  const t = await rotatedLog();
  try {
    await rm(`${t.log}.2`);
    const report = await verifyAudit({ root: t.root });
    find(report, { file: `${t.log}.2`, line: null }, /rotated file is missing/);
    find(report, { file: `${t.log}.3`, line: 1 }, /missing before this line/);
  } finally {
    await t.done();
  }
});

test('a line moved between rotated files is found', async () => {
  const t = await rotatedLog();
  try {
    const first = await readLines(`${t.log}.1`);
    const second = await readLines(`${t.log}.2`);
    await writeLines(`${t.log}.1`, first.slice(0, -1));
    await writeLines(`${t.log}.2`, [...second, first.at(-1) as string]);
    const report = await verifyAudit({ root: t.root });
    find(report, { file: `${t.log}.2`, line: 1 }, /1 entry missing/);
    find(report, { file: `${t.log}.2`, line: second.length + 1 }, /inserted or reordered/);
  } finally {
    await t.done();
  }
});

test('the oldest rotated file deleted is found as a chain not starting at seq 1', async () => {
  const t = await rotatedLog();
  try {
    await rm(`${t.log}.1`);
    const report = await verifyAudit({ root: t.root });
    // retention prunes from the front too, but only after a checkpoint: without one it is a deletion
    find(report, { file: `${t.log}.2`, line: 1 }, /no checkpoint records a prune through seq \d+: entries deleted/);
  } finally {
    await t.done();
  }
});
