// Aggregation: identical refusals within the window become one entry with a
// count, written when a different entry comes, when the window ends, and at
// stop; the chain stays whole and every refusal is counted. An aggregator
// that loses counts is caught.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { setTimeout as sleep } from 'node:timers/promises';
import { pathToFileURL } from 'node:url';
import { auditAggregator, openAudit, verifyAudit } from '../../src/dom0/audit/index.js';
import type { AuditEntry, AuditOptions } from '../../src/dom0/audit/index.js';
import { parseLine } from '../../src/dom0/audit/entry.js';
import { hangBoundMs } from '../../verify/hang-bound.js';
import { compiled, weakenedFile } from '../../verify/weakened-module.js';
import { readLines, tempRoot } from './helpers.js';

type MakeAggregator = typeof auditAggregator;

async function entries(log: string): Promise<AuditEntry[]> {
  return (await readLines(log)).map((l) => {
    const p = parseLine(l);
    assert.ok('entry' in p, l);
    return p.entry;
  });
}

const refusal = (qube: string) => ({ principal: 'mcp-control', operation: 'qmcp.Info', qubes: [qube], detail: 'not visible' });

/** 25 refusals of A, 5 of B interleaved, an intent, 3 more of A; stopped. The entries written. */
async function scenario(make: MakeAggregator, windowMs = 60_000): Promise<{ entries: AuditEntry[]; valid: boolean }> {
  const t = await tempRoot();
  try {
    const options: AuditOptions = { root: t.root };
    const aggregator = make(options, windowMs, (err) => assert.fail(String(err)));
    const log = openAudit({ ...options, aggregator });
    for (let i = 0; i < 25; i++) {
      await log.refusal(refusal('vault'));
      if (i % 5 === 0) await log.refusal(refusal('work'));
    }
    await log.intent({ principal: 'mcp-control', operation: 'qmcp.Start', qubes: ['ai-a'] });
    for (let i = 0; i < 3; i++) await log.refusal(refusal('vault'));
    await aggregator.stop();
    return { entries: await entries(t.log), valid: (await verifyAudit({ root: t.root })).valid };
  } finally {
    await t.done();
  }
}

const counted = (e: AuditEntry): number => e.count ?? 1;

test('identical refusals are one entry with their count; another kind of entry writes them first; stop writes the rest', async () => {
  const { entries: written, valid } = await scenario(auditAggregator);
  assert.equal(valid, true);
  assert.deepEqual(
    written.map((e) => [e.kind, e.qubes[0], counted(e)]),
    [['refusal', 'vault', 25], ['refusal', 'work', 5], ['intent', 'ai-a', 1], ['refusal', 'vault', 3]],
  );
});

test('a pending count is written when its window ends, without another entry', async () => {
  const t = await tempRoot();
  try {
    // the clock stands still while the four come, however slow the machine, then passes the window
    let clock = 1_000;
    const aggregator = auditAggregator({ root: t.root }, 50, (err) => assert.fail(String(err)), () => clock);
    const log = openAudit({ root: t.root, aggregator });
    for (let i = 0; i < 4; i++) await log.refusal(refusal('vault'));
    assert.equal(aggregator.pending(), 4);
    clock += 50;
    const deadline = Date.now() + hangBoundMs(10_000);
    while ((await readLines(t.log)).length === 0 && Date.now() < deadline) await sleep(20);
    assert.deepEqual((await entries(t.log)).map(counted), [4]);
    assert.equal(aggregator.pending(), 0);
    await aggregator.stop();
  } finally {
    await t.done();
  }
});

test('weakened: an aggregator that loses counts, or never writes its pending ones at stop, is caught by the count', async () => {
  const weak: [string, string, string][] = [
    ['loses counts', 'p.count += 1;', ''],
    ['stop without flush', 'await flush();\n        },', '},'],
  ];
  for (const [name, guard, weakened] of weak) {
    const aggregate = weakenedFile('dom0/audit/aggregate', guard, weakened);
    const log = weakenedFile('dom0/audit/log', 'export function auditAggregator', 'export function auditAggregator', { [compiled('dom0/audit/aggregate')]: aggregate });
    const { auditAggregator: make } = (await import(pathToFileURL(log).href)) as { auditAggregator: MakeAggregator };
    const { entries: written } = await scenario(make);
    const total = written.filter((e) => e.kind === 'refusal').reduce((n, e) => n + counted(e), 0);
    assert.notEqual(total, 33, `${name}: every refusal still counted`);
  }
});
