import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readdir } from 'node:fs/promises';
import { dirname } from 'node:path';
import { MAX_LIST, MAX_NAME, fileWitness, verifyAudit } from '../../src/dom0/audit/index.js';
import { parseLine } from '../../src/dom0/audit/entry.js';
import { fill, open, readLines, tempRoot } from './helpers.js';

test('intent, outcome and refusal append a chain that verifies', async () => {
  const t = await tempRoot();
  try {
    const log = open(t.root);
    const id = await log.intent({ principal: 'mcp-control', operation: 'qmcp.Create', qubes: ['ai-a', 'ai-tpl'], keys: ['netvm', 'label'] });
    await log.outcome(id, { result: 'ok', qubes: ['ai-a'] });
    await log.refusal({ principal: 'mcp-control', operation: 'qmcp.Start', qubes: ['vault'], detail: 'scope' });
    await log.operator({ principal: 'dom0', operation: 'tier', qubes: ['ai-a'], result: 'ok' });

    const entries = (await readLines(t.log)).map((l) => {
      const parsed = parseLine(l);
      assert.ok('entry' in parsed, l);
      return parsed.entry;
    });
    assert.deepEqual(entries.map((e) => [e.seq, e.kind, e.result]), [
      [1, 'intent', null], [2, 'outcome', 'ok'], [3, 'refusal', 'refused'], [4, 'operator', 'ok'],
    ]);
    assert.equal(entries[0]?.correlation, id);
    assert.equal(entries[1]?.correlation, id);
    assert.deepEqual(entries[1]?.qubes, ['ai-a']);
    assert.deepEqual(entries[1]?.keys, ['netvm', 'label']);
    assert.notEqual(entries[2]?.correlation, id);
    assert.equal(entries[1]?.prev, entries[0]?.hash);

    const report = await verifyAudit({ root: t.root });
    assert.equal(report.valid, true, JSON.stringify(report.problems));
    assert.equal(report.entries, 4);
    assert.deepEqual(report.head, { seq: 4, hash: entries[3]?.hash });
    assert.deepEqual(report.witnessed, report.head);
  } finally {
    await t.done();
  }
});

test('only whitelisted members reach the log, whatever the caller passes', async () => {
  const t = await tempRoot();
  try {
    const log = open(t.root);
    const sneaky = { principal: 'p', operation: 'o', qubes: ['q'], keys: ['k'], value: 'SECRET-VALUE', netvm: 'SECRET-NETVM' };
    const id = await log.intent(sneaky);
    await log.outcome(id, { result: 'ok', ...{ value: 'SECRET-OUTCOME' } });
    const text = (await readLines(t.log)).join('\n');
    assert.doesNotMatch(text, /SECRET/);
    assert.deepEqual(Object.keys(JSON.parse((await readLines(t.log))[0] as string)), [
      'seq', 'time', 'kind', 'principal', 'operation', 'correlation', 'qubes', 'keys', 'result', 'detail', 'truncated', 'prev', 'hash',
    ]);
  } finally {
    await t.done();
  }
});

test('agent strings are kept as given up to their bound, and cutting is marked', async () => {
  const t = await tempRoot();
  try {
    const log = open(t.root);
    const odd = 'ai-\u001b[2J\u202e\u{1f600}"\\';
    await log.refusal({ principal: 'mcp-control', operation: 'qmcp.Start', qubes: [odd] });
    const long = 'x'.repeat(MAX_NAME + 10);
    const many = Array.from({ length: MAX_LIST + 5 }, (_, i) => `q${i}`);
    await log.refusal({ principal: 'mcp-control', operation: long, qubes: many });
    const [first, second] = await readLines(t.log);
    assert.match(first as string, /^[\x20-\x7e]+$/, 'the file itself is printable ASCII');
    const a = JSON.parse(first as string) as { qubes: string[]; truncated: boolean };
    assert.deepEqual(a.qubes, [odd]);
    assert.equal(a.truncated, false);
    const b = JSON.parse(second as string) as { operation: string; qubes: string[]; truncated: boolean };
    assert.equal(b.operation, 'x'.repeat(MAX_NAME));
    assert.equal(b.qubes.length, MAX_LIST);
    assert.equal(b.truncated, true);
    assert.equal((await verifyAudit({ root: t.root })).valid, true);
  } finally {
    await t.done();
  }
});

test('the API rejects anything but typed fields', async () => {
  const t = await tempRoot();
  try {
    const log = open(t.root);
    await assert.rejects(log.intent({ principal: { toString: () => 'x' } as unknown as string, operation: 'o' }), TypeError);
    await assert.rejects(log.intent({ principal: 'p', operation: 'o', keys: [{ netvm: 'sys-net' } as unknown as string] }), TypeError);
    await assert.rejects(log.outcome('0'.repeat(32), { result: 'ok' }), /did not log/);
    await assert.rejects(log.operator({ principal: 'p', operation: 'o', result: 'maybe' as 'ok' }), TypeError);
    assert.deepEqual(await readLines(t.log), []);
  } finally {
    await t.done();
  }
});

test('rotation keeps one chain across files, and verify walks them all', async () => {
  const t = await tempRoot();
  try {
    const log = open(t.root, { maxFileBytes: 1500 });
    await fill(log, 15);
    const names = (await readdir(dirname(t.log))).filter((n) => /^audit\.log\.\d+$/.test(n));
    assert.ok(names.length >= 3, `rotated files: ${names.join(' ')}`);
    const report = await verifyAudit({ root: t.root });
    assert.equal(report.valid, true, JSON.stringify(report.problems));
    assert.equal(report.entries, 30);
    assert.equal(report.files.length, names.length + 1);
    const firstOfLive = parseLine((await readLines(t.log))[0] as string);
    const lastOfRotated = parseLine((await readLines(`${t.log}.${names.length}`)).at(-1) as string);
    assert.ok('entry' in firstOfLive && 'entry' in lastOfRotated);
    assert.equal(firstOfLive.entry.prev, lastOfRotated.entry.hash);
    assert.equal(firstOfLive.entry.seq, lastOfRotated.entry.seq + 1);
  } finally {
    await t.done();
  }
});

test('a witness file elsewhere can be named explicitly', async () => {
  const t = await tempRoot();
  try {
    const witness = fileWitness(`${t.root}/elsewhere-witness`);
    await fill(open(t.root, { witness }), 2);
    assert.equal((await witness.heads())?.length, 4);
    assert.equal((await verifyAudit({ root: t.root, witness })).valid, true);
    // The default witness under the root was never written.
    assert.equal((await verifyAudit({ root: t.root })).valid, false);
  } finally {
    await t.done();
  }
});
