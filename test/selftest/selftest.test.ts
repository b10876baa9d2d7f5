// `qmcp selftest`: all PASS against a clean simulated demo host through the
// CLI, and each deliberately broken rule in a fake host makes its scenario FAIL.
import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { DEFAULT_TIER_TAGS } from '../../src/principal/selftest/context.js';
import type { SelftestOptions } from '../../src/principal/selftest/context.js';
import { exitStatusOf, formatReport, runSelftest } from '../../src/principal/selftest/run.js';
import type { SelftestReport } from '../../src/principal/selftest/run.js';
import { demoFleet } from '../../src/sim/demo-fleet.js';
import { DEMO_SETTINGS } from '../../src/sim/demo-settings.js';
import { startSimHost, type SimHost } from '../../src/sim/host.js';
import { OPEN_GATE } from '../../src/sim/open-gate.js';
import { FakeHost } from './fake-host.js';
import type { Breakage } from './fake-host.js';

const QMCP = fileURLToPath(new URL('../../../bin/qmcp.js', import.meta.url));

function qmcp(args: string[]): Promise<{ status: number | null; stdout: string; stderr: string }> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [QMCP, ...args], { stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (c: Buffer) => (stdout += c.toString()));
    child.stderr.on('data', (c: Buffer) => (stderr += c.toString()));
    child.on('error', reject);
    child.on('close', (status) => resolve({ status, stdout, stderr }));
  });
}

const verdicts = (r: SelftestReport): Record<string, string> => Object.fromEntries(r.results.map((x) => [x.id, x.verdict]));

describe('qmcp selftest --sim against the demo host', () => {
  let dir: string;
  let host: SimHost;
  before(async () => {
    dir = await mkdtemp(join(tmpdir(), 'qmcp-selftest-'));
    // the selftest removes its fixtures, which the demo's gate would hold for an operator
    host = await startSimHost({ dir, fleet: demoFleet(), install: true, initialSettings: { ...DEMO_SETTINGS, gate: OPEN_GATE } });
  });
  after(async () => {
    await host?.close();
    await rm(dir, { recursive: true, force: true });
  });

  it('passes every scenario and leaves only tombstones behind', async () => {
    const before = new Set(host.qubesd.app.vms.keys());
    const run = await qmcp(['selftest', '--sim', dir, '--json']);
    const report = JSON.parse(run.stdout) as SelftestReport;
    for (const r of report.results) assert.equal(r.verdict, 'PASS', `${r.id}: ${r.reason}`);
    assert.deepEqual(report.results.map((r) => r.id), ['visibility', 'uniform-refusals', 'redaction', 'create-rules', 'tiers', 'tombstones']);
    assert.equal(run.status, 0, run.stderr);
    assert.equal(report.fixtures.left.length, 0);
    assert.equal(report.fixtures.removed.length, 3);
    // the fixtures are tombstones: still there, out of the umbrella; nothing else changed
    const added = [...host.qubesd.app.vms.keys()].filter((n) => !before.has(n)).sort();
    assert.deepEqual(added, [...report.fixtures.removed].sort());
    for (const n of added) {
      assert.match(n, /^ai-selftest-[0-9a-f]{6}(-c|-d)?$/);
      assert.ok(!host.qubesd.app.vms.get(n)?.tags.includes('ai-managed'), `${n} still in the umbrella`);
    }
  });

  it('refuses bad command lines with exit 2', async () => {
    assert.equal((await qmcp(['selftest', '--bogus'])).status, 2);
    assert.equal((await qmcp(['selftest', '--sim', dir, '--qrexec-client', 'x'])).status, 2);
    assert.equal((await qmcp(['selftest', '--template', 'no spaces'])).status, 2);
  });
});

describe('the scenarios over a fake host', () => {
  const options: SelftestOptions = { prefix: 'ai-', keep: false, probeExec: false, tierTags: DEFAULT_TIER_TAGS, token: 'abc123' };
  const run = (broken: Breakage = {}): Promise<SelftestReport> => runSelftest(new FakeHost(broken), options);
  const all = (v: string) => ({ visibility: v, 'uniform-refusals': v, redaction: v, 'create-rules': v, tiers: v, tombstones: v });

  it('all pass on a faithful host, and the fixtures are removed', async () => {
    const report = await run();
    assert.deepEqual(verdicts(report), all('PASS'), formatReport(report));
    assert.equal(report.exitStatus, 0);
    assert.deepEqual([...report.fixtures.removed].sort(), ['ai-selftest-abc123', 'ai-selftest-abc123-c']);
  });

  it('--keep keeps the fixtures no scenario removed', async () => {
    const host = new FakeHost();
    const report = await runSelftest(host, { ...options, keep: true });
    assert.deepEqual(report.fixtures, { removed: ['ai-selftest-abc123-c'], left: ['ai-selftest-abc123'] });
    assert.equal(host.qubes.get('ai-selftest-abc123')?.tombstone, false);
  });

  it('a leaked outside name fails redaction', async () => {
    const report = await run({ leakNetvm: true });
    assert.equal(verdicts(report)['redaction'], 'FAIL');
    assert.match(report.results.find((r) => r.id === 'redaction')?.reason ?? '', /sys-firewall/);
    assert.equal(report.exitStatus, 1);
  });

  it('a tier tag in info fails redaction', async () => {
    assert.equal(verdicts(await run({ showTierTag: true }))['redaction'], 'FAIL');
  });

  it('"no such qube" for absent names fails visibility and uniform refusals', async () => {
    const v = verdicts(await run({ noSuchQube: true }));
    assert.equal(v['visibility'], 'FAIL');
    assert.equal(v['uniform-refusals'], 'FAIL');
    assert.equal(v['redaction'], 'PASS');
  });

  it('a listed qube that cannot be read fails visibility', async () => {
    assert.equal(verdicts(await run({ listOutside: true }))['visibility'], 'FAIL');
  });

  it('a qube born offline from a template fails create rules', async () => {
    const v = verdicts(await run({ bornOffline: true }));
    assert.equal(v['create-rules'], 'FAIL');
    assert.equal(v['tombstones'], 'PASS');
  });

  it('a qube visible before it is complete fails create rules', async () => {
    const report = await run({ visibleEarly: true });
    assert.equal(verdicts(report)['create-rules'], 'FAIL');
    assert.match(report.results.find((r) => r.id === 'create-rules')?.reason ?? '', /visible before it was complete/);
  });

  it('a removal that frees the name and the budget fails tombstones', async () => {
    const report = await run({ realDelete: true });
    assert.equal(verdicts(report)['tombstones'], 'FAIL');
    assert.equal(verdicts(report)['create-rules'], 'PASS');
  });

  it('without a create the run is incomplete, never a pass', async () => {
    const report = await run({ noCreate: true });
    const v = verdicts(report);
    assert.deepEqual([v['create-rules'], v['tiers'], v['tombstones']], ['NOT-RUN', 'NOT-RUN', 'NOT-RUN']);
    assert.equal(report.exitStatus, 3);
    assert.match(formatReport(report), /not run is not a pass/);
  });

  it('exit status: any FAIL is 1, else any NOT-RUN is 3, else 0', () => {
    const r = (verdict: 'PASS' | 'FAIL' | 'NOT-RUN') => ({ verdict, reason: '' });
    assert.equal(exitStatusOf([r('PASS'), r('NOT-RUN'), r('FAIL')]), 1);
    assert.equal(exitStatusOf([r('PASS'), r('NOT-RUN')]), 3);
    assert.equal(exitStatusOf([r('PASS')]), 0);
  });
});
