// `qmcp selftest`: all PASS against a clean simulated demo host through the
// CLI, and each deliberately broken rule in a fake host makes its scenario FAIL.
import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { simClientOptions, simTransport } from '../../src/cli/sim-principal.js';
import { Agent, isRefusal, jsonOf, sameReply } from '../../src/principal/selftest/agent.js';
import { spawnCaller, transportCaller } from '../../src/principal/selftest/caller.js';
import type { Reply } from '../../src/principal/selftest/caller.js';
import { DEFAULT_TIER_TAGS } from '../../src/principal/selftest/context.js';
import type { SelftestOptions } from '../../src/principal/selftest/context.js';
import { exitStatusOf, formatReport, runSelftest } from '../../src/principal/selftest/run.js';
import type { SelftestReport } from '../../src/principal/selftest/run.js';
import { demoFleet } from '../../src/sim/demo-fleet.js';
import { DEMO_SETTINGS } from '../../src/sim/demo-settings.js';
import { dom0Root, envServiceMode, startSimHost, type SimHost } from '../../src/sim/host.js';
import { OPEN_GATE } from '../../src/sim/open-gate.js';
import { FakeHost } from './fake-host.js';
import type { Breakage } from './fake-host.js';

const QMCP = fileURLToPath(new URL('../../../bin/qmcp.js', import.meta.url));

function qmcp(args: string[], onStderrLine?: (line: string) => void): Promise<{ status: number | null; stdout: string; stderr: string }> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [QMCP, ...args], { stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    let partial = '';
    child.stdout.on('data', (c: Buffer) => (stdout += c.toString()));
    child.stderr.on('data', (c: Buffer) => {
      stderr += c.toString();
      partial += c.toString();
      const lines = partial.split('\n');
      partial = lines.pop() ?? '';
      for (const line of lines) onStderrLine?.(line);
    });
    child.on('error', reject);
    child.on('close', (status) => resolve({ status, stdout, stderr }));
  });
}

/** The operator in dom0: for each line the self-test prints, the matching request answered with `qmcp dom0 approvals`. */
function operatorFor(dir: string, socket: string): { onLine: (line: string) => void; answered: string[]; settled: () => Promise<unknown> } {
  const args = ['--root', dom0Root(dir), '--qubesd-socket', socket];
  const answered: string[] = [];
  const jobs: Promise<unknown>[] = [];
  const onLine = (line: string): void => {
    const m = /self-test's (\S+) of "([^"]+)" waits for you.*`qmcp dom0 approvals (allow|deny) ID`/.exec(line);
    if (!m) return;
    const [, operation, qube, want] = m as unknown as [string, string, string, 'allow' | 'deny'];
    jobs.push(
      (async () => {
        const list = await qmcp(['dom0', 'approvals', 'list', '--json', ...args]);
        const rows = JSON.parse(list.stdout) as { id: string; operation: string; qubes: string[]; state: string }[];
        const row = rows.find((r) => r.operation === operation && r.qubes.includes(qube) && r.state === 'pending');
        assert.ok(row, `no pending ${operation} of ${qube} in ${list.stdout}`);
        const answer = await qmcp(['dom0', 'approvals', want, row.id, ...args]);
        assert.equal(answer.status, 0, answer.stderr);
        answered.push(`${want} ${operation} ${qube}`);
      })(),
    );
  };
  return { onLine, answered, settled: () => Promise.all(jobs) };
}

const verdicts = (r: SelftestReport): Record<string, string> => Object.fromEntries(r.results.map((x) => [x.id, x.verdict]));

describe('qmcp selftest --sim against the demo host', () => {
  let dir: string;
  let host: SimHost;
  before(async () => {
    dir = await mkdtemp(join(tmpdir(), 'qmcp-selftest-'));
    // the gate asks for the fixture changes the self-test makes through dom0 services; the test answers as the operator.
    // Served by the resident process unless QMCP_DOM0_SERVICE_MODE says otherwise: this is about the scenarios, not
    // the per-call executable (test/boundary/invariants.test.ts), and a per-call run starts a Node process per call.
    host = await startSimHost({
      dir,
      fleet: demoFleet(),
      install: true,
      serviceMode: envServiceMode() ?? 'resident',
      initialSettings: { ...DEMO_SETTINGS, gate: { ...OPEN_GATE, remove: 'ask', 'property.set': 'ask' } },
    });
  });
  after(async () => {
    await host?.close();
    await rm(dir, { recursive: true, force: true });
  });

  it('passes every scenario, the gate answered from dom0, and leaves only tombstones behind', async () => {
    const before = new Set(host.qubesd.app.vms.keys());
    const operator = operatorFor(dir, host.qubesd.socketPath);
    const run = await qmcp(['selftest', '--sim', dir, '--json'], operator.onLine);
    await operator.settled();
    const report = JSON.parse(run.stdout) as SelftestReport;
    for (const r of report.results) assert.equal(r.verdict, 'PASS', `${r.id}: ${r.reason}`);
    assert.deepEqual(report.results.map((r) => r.id), ['visibility', 'uniform-refusals', 'redaction', 'create-rules', 'tiers', 'gate', 'tombstones']);
    assert.equal(run.status, 0, run.stderr);
    // the label change was denied, each removal allowed: exactly the self-test's own asks
    const fixture = report.fixtures.removed.find((n) => /^ai-selftest-[0-9a-f]{6}$/.test(n)) ?? '';
    assert.deepEqual(operator.answered.filter((a) => a.startsWith('deny')), [`deny property.set ${fixture}`]);
    assert.equal(operator.answered.filter((a) => a.startsWith('allow remove')).length, 3);
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

  it("spawning the client, a real machine's path, gets the same bytes as the in-process transport `--sim` uses", async () => {
    const spawned = new Agent(spawnCaller(simClientOptions(dir)));
    const direct = new Agent(transportCaller(simTransport(dir)));
    const calls: [string, (a: Agent) => Promise<Reply>][] = [
      ['list', (a) => a.list()],
      ['info of an outside qube', (a) => a.info('sys-net')],
      ['Admin API state', (a) => a.admin('ai-exec-box', 'state')],
      // the payload is read: an invalid name is answered as such, where no payload is the refusal
      ['create with a payload', (a) => a.create('Bad Name!', 'ai-debian-tpl')],
    ];
    for (const [what, call] of calls) {
      const [s, d] = [await call(spawned), await call(direct)];
      assert.ok(sameReply(s, d), `${what}: ${JSON.stringify(s)} vs ${JSON.stringify(d)}`);
    }
    assert.ok(jsonOf(await spawned.list())?.['qubes'], 'the list is JSON with qubes');
    assert.ok(isRefusal(await spawned.info('sys-net')));
    assert.match((await spawned.create('Bad Name!', 'ai-debian-tpl')).stdout.toString(), /"name_invalid"/);
    // an aborted call ends without a status on either path
    for (const caller of [spawnCaller(simClientOptions(dir)), transportCaller(simTransport(dir))]) {
      const r = await caller.call('@adminvm', 'qmcp.List', '', undefined, { signal: AbortSignal.abort() });
      assert.equal(r.status, null);
    }
  });

  it('refuses bad command lines with exit 2', async () => {
    assert.equal((await qmcp(['selftest', '--bogus'])).status, 2);
    assert.equal((await qmcp(['selftest', '--sim', dir, '--qrexec-client', 'x'])).status, 2);
    assert.equal((await qmcp(['selftest', '--template', 'no spaces'])).status, 2);
    assert.equal((await qmcp(['selftest', '--gate-answers', 'maybe'])).status, 2);
  });
});

describe('the scenarios over a fake host', () => {
  const options: SelftestOptions = { prefix: 'ai-', keep: false, probeExec: false, tierTags: DEFAULT_TIER_TAGS, token: 'abc123' };
  /** The fake host with an operator who answers each ask as the self-test asks. */
  const hostAndOptions = (broken: Breakage = {}, more: Partial<SelftestOptions> = {}, gated?: readonly string[]): { host: FakeHost; options: SelftestOptions } => {
    const host = new FakeHost(broken, gated);
    return { host, options: { ...options, onAsk: (a) => void host.answers.push(a.want), ...more } };
  };
  const run = (broken: Breakage = {}, more: Partial<SelftestOptions> = {}, gated?: readonly string[]): Promise<SelftestReport> => {
    const { host, options: o } = hostAndOptions(broken, more, gated);
    return runSelftest(host, o);
  };
  const all = (v: string) => ({ visibility: v, 'uniform-refusals': v, redaction: v, 'create-rules': v, tiers: v, gate: v, tombstones: v });
  const reasonOf = (r: SelftestReport, id: string): string => r.results.find((x) => x.id === id)?.reason ?? '';

  it('all pass on a faithful host, and the fixtures are removed', async () => {
    const report = await run();
    assert.deepEqual(verdicts(report), all('PASS'), formatReport(report));
    assert.equal(report.exitStatus, 0);
    assert.deepEqual([...report.fixtures.removed].sort(), ['ai-selftest-abc123', 'ai-selftest-abc123-c']);
  });

  it('--keep keeps the fixtures no scenario removed', async () => {
    const { host, options: o } = hostAndOptions({}, { keep: true });
    const report = await runSelftest(host, o);
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

  it('the gate: a denied label change is the refusal with nothing changed; outside names never wait', async () => {
    const report = await run();
    assert.match(reasonOf(report, 'gate'), /waited, and refused .* with nothing changed/);
    assert.match(reasonOf(report, 'gate'), /28 gated calls outside the world refused at once/);
  });

  it('the gate with --gate-answers allow: the allowed change acts', async () => {
    const { host, options: o } = hostAndOptions({}, { gateAnswers: 'allow' });
    const report = await runSelftest(host, o);
    assert.equal(verdicts(report)['gate'], 'PASS', formatReport(report));
    assert.match(reasonOf(report, 'gate'), /was allowed, and acted/);
  });

  it('a gated call on a hidden name that waits fails the gate', async () => {
    const report = await run({ askOutside: true });
    assert.equal(verdicts(report)['gate'], 'FAIL');
    assert.match(reasonOf(report, 'gate'), /outside the agent's world, waited for the operator/);
  });

  it('a denied call that acts, or answers as allowed, fails the gate', async () => {
    const acts = await run({ deniedActs: true });
    assert.equal(verdicts(acts)['gate'], 'FAIL');
    assert.match(reasonOf(acts, 'gate'), /changed although its property.set was refused/);
    const ok = await run({ deniedAnswersOk: true });
    assert.equal(verdicts(ok)['gate'], 'FAIL');
    assert.match(reasonOf(ok, 'gate'), /not the uniform refusal/);
  });

  it('an operator who never answers leaves the fixtures, and says how to remove them', async () => {
    const report = await run({}, { onAsk: () => undefined });
    // the label change lapses into the refusal, as a denial; the removals lapse too
    assert.equal(verdicts(report)['gate'], 'PASS');
    assert.equal(verdicts(report)['tombstones'], 'NOT-RUN');
    assert.deepEqual([...report.fixtures.left].sort(), ['ai-selftest-abc123', 'ai-selftest-abc123-c']);
    assert.match(formatReport(report), /fixtures left in place: .*qvm-remove NAME/);
    assert.equal(report.exitStatus, 3);
  });

  it('--gate-answers skip withdraws every call that waits: the gate is not run, never a pass', async () => {
    const report = await run({}, { gateAnswers: 'skip' });
    assert.equal(verdicts(report)['gate'], 'NOT-RUN');
    assert.equal(report.fixtures.left.length, 2);
    assert.equal(report.exitStatus, 3);
  });

  it('a gate that does not ask leaves the gate scenario not run', async () => {
    const report = await run({}, {}, []);
    assert.equal(verdicts(report)['gate'], 'NOT-RUN');
    assert.match(reasonOf(report, 'gate'), /without asking/);
    assert.equal(report.exitStatus, 3);
  });

  it('exit status: any FAIL is 1, else any NOT-RUN is 3, else 0', () => {
    const r = (verdict: 'PASS' | 'FAIL' | 'NOT-RUN') => ({ verdict, reason: '' });
    assert.equal(exitStatusOf([r('PASS'), r('NOT-RUN'), r('FAIL')]), 1);
    assert.equal(exitStatusOf([r('PASS'), r('NOT-RUN')]), 3);
    assert.equal(exitStatusOf([r('PASS')]), 0);
  });
});
