// The operator's side of two principals on one simulated host: a command about one world needs
// --principal and stays in that world; doctor checks each principal and fails on a qube tagged into
// two worlds; the reaper prunes and expires each principal's world with its own settings, on a clock
// the test sets; a plan runs with its submitter's settings. Each guard has a weakened variant caught.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { openAudit, readTail } from '../../src/dom0/audit/index.js';
import { AnswerRefused, answerApproval, listApprovals, showApproval, type ApprovalOps } from '../../src/dom0/operator/approvals.js';
import { runDoctor } from '../../src/dom0/operator/doctor.js';
import { orphanKept, restoreTombstone } from '../../src/dom0/tombstones/operator.js';
import { readWriteSettings } from '../../src/dom0/create/settings.js';
import { ASK_SERVICES, pendingRequest } from '../gate/helpers.js';
import { explain } from '../../src/dom0/operator/explain.js';
import { approvePlan } from '../../src/dom0/plans/operator.js';
import { Qubesd } from '../../src/dom0/qubesd.js';
import { loadDom0Config, type Dom0Config } from '../../src/dom0/service/config.js';
import { Snapshot } from '../../src/dom0/service/snapshot.js';
import { LEASE_FEATURE } from '../../src/shared/model/lease.js';
import { POLICY_FILE, parsePrincipals, renderPolicies, settingsPath } from '../../src/shared/model/index.js';
import { planRequestJson } from '../../src/shared/plan-protocol.js';
import type { Fleet } from '../../src/sim/fleet.js';
import { B, B_QUBES, B_SETTINGS } from './second-principal.js';
import { compiled, weakenedFile } from '../../verify/weakened-module.js';
import type { World } from '../services-read/helpers.js';
import { GiB, PRINCIPAL, json, startWorld, worldFleet } from '../services-read/helpers.js';
import { acquireBudgetLock } from '../../src/dom0/create/lock.js';

const LAPSED = '2026-01-01T01:00:00Z';
const fleet: Fleet = {
  ...worldFleet,
  qubes: [
    ...worldFleet.qubes,
    ...B_QUBES,
    { name: 'b-box', klass: 'AppVM', template: 'tpl', label: 'green', tags: ['b-managed', 'b-full'] },
    // removed at 2026-01-01, one by each principal
    { name: 'ai-old', klass: 'AppVM', template: 'tpl', label: 'red', tags: [`qmcp-owner-${PRINCIPAL}`, 'qmcp-tombstone-20260101T000000Z'] },
    { name: 'b-gone', klass: 'AppVM', template: 'tpl', label: 'red', tags: [`qmcp-owner-${B}`, 'qmcp-tombstone-20260101T000000Z'] },
    { name: 'ai-leased', klass: 'AppVM', template: 'tpl', label: 'red', tags: ['ai-managed', `qmcp-owner-${PRINCIPAL}`], features: { [LEASE_FEATURE]: LAPSED } },
    { name: 'b-leased', klass: 'AppVM', template: 'tpl', label: 'red', tags: ['b-managed', `qmcp-owner-${B}`], features: { [LEASE_FEATURE]: LAPSED } },
    // tagged by hand into both worlds: in neither
    { name: 'x-both', klass: 'AppVM', template: 'tpl', label: 'red', tags: ['ai-managed', 'b-managed'] },
  ],
};
// retention longer than the first principal's (the default, 7 days)
const other = { ...B_SETTINGS, tombstoneRetentionDays: 30 };

async function withWorld(fn: (w: World, root: string) => Promise<void>, second: Record<string, unknown> = other): Promise<void> {
  const w = await startWorld({ mode: 'least-privilege', fleet, others: [second] });
  try {
    const root = join(w.dir, 'dom0');
    // the first principal's retention, explicit (the default, 7 days), and the policy rendered again
    const file = JSON.parse(readFileSync(settingsPath(root), 'utf8')) as { principals: Record<string, unknown>[] };
    file.principals[0] = { ...file.principals[0], tombstoneRetentionDays: 7, privateCapBytes: 8 * GiB };
    file.principals[1] = { ...file.principals[1], privateCapBytes: 8 * GiB };
    writeFileSync(settingsPath(root), JSON.stringify(file));
    writeFileSync(join(root, 'etc', 'qubes', 'policy.d', POLICY_FILE), renderPolicies(parsePrincipals(file).principals));
    await fn(w, root);
  } finally {
    await w.close();
  }
}

interface Run {
  status: number | null;
  stdout: string;
  stderr: string;
}

/** The qmcp command line against the world (async: the simulated qubesd answers from this process). */
function qmcp(w: World, ...args: string[]): Promise<Run> {
  const bin = join(import.meta.dirname, '..', '..', '..', 'bin', 'qmcp.js');
  const all = [bin, 'dom0', ...args, '--root', join(w.dir, 'dom0')];
  if (args[0] !== 'audit') all.push('--qubesd-socket', w.qubesd.socketPath);
  return new Promise((resolve) => {
    execFile(process.execPath, all, (err, stdout, stderr) => resolve({ status: err ? (typeof err.code === 'number' ? err.code : null) : 0, stdout, stderr }));
  });
}

const tagsOf = (w: World, q: string): string[] => [...(w.qubesd.app.vms.get(q)?.tags ?? [])].filter((t) => !/^(guivm|audiovm)-/.test(t)).sort();

test('operator commands: one world needs --principal, names the principals when it is missing, and stays in that world', async () => {
  await withWorld(async (w, root) => {
    // missing or unknown: a usage error naming the principals
    for (const args of [['tier', 'b-runner', 'net'], ['explain'], ['mode', 'compat'], ['tombstones', 'restore', 'b-gone'], ['tier', 'b-runner', 'net', '--principal', 'nobody']]) {
      const r = await qmcp(w, ...args);
      assert.equal(r.status, 2, `${args.join(' ')}: ${r.stderr}`);
      assert.match(r.stderr, new RegExp(`${PRINCIPAL}, ${B}`), args.join(' '));
    }
    // tier: another world's qube is refused, precisely; in its own world it is tiered
    const cross = await qmcp(w, 'tier', 'b-runner', 'net', '--principal', PRINCIPAL);
    assert.equal(cross.status, 1, cross.stderr);
    assert.match(cross.stderr, /b-runner is in ctl-b's world \(it carries b-managed, b-exec\): tier it with --principal ctl-b/);
    assert.deepEqual(tagsOf(w, 'b-runner'), ['b-exec', 'b-managed']);
    const own = await qmcp(w, 'tier', 'b-runner', 'net', '--principal', B);
    assert.equal(own.status, 0, own.stderr);
    assert.deepEqual(tagsOf(w, 'b-runner'), ['b-managed', 'b-net']);

    // tombstones: each principal's own, another's not restorable into this world
    const list = await qmcp(w, 'tombstones', 'list', '--json');
    const rows = JSON.parse(list.stdout) as { principal?: string; orphan?: string; name: string }[];
    assert.deepEqual(rows.map((t) => `${t.principal ?? `orphan, ${t.orphan ?? ''}`}/${t.name}`), [`${PRINCIPAL}/ai-gone`, `${PRINCIPAL}/ai-old`, `${B}/b-gone`, 'orphan, its principal someone was removed/other-gone']);
    const onlyB = await qmcp(w, 'tombstones', 'list', '--principal', B);
    assert.equal(onlyB.stdout, `"${B}": "b-gone"  AppVM  Halted  since 2026-01-01T00:00:00.000Z\n`);
    const wrong = await qmcp(w, 'tombstones', 'restore', 'b-gone', '--principal', PRINCIPAL);
    assert.equal(wrong.status, 1, wrong.stderr);
    assert.match(wrong.stderr, /b-gone is not a tombstone of this principal \(it does not carry qmcp-owner-mcp-control\)/);
    assert.ok(!tagsOf(w, 'b-gone').includes('ai-managed'));
    const right = await qmcp(w, 'tombstones', 'restore', 'b-gone', '--principal', B);
    assert.equal(right.status, 0, right.stderr);
    assert.ok(tagsOf(w, 'b-gone').includes('b-managed'));

    // mode: the one entry changes, and the policy of both is rendered again (the services serve both)
    const mode = await qmcp(w, 'mode', 'compat', '--principal', B);
    assert.equal(mode.status, 0, mode.stderr);
    const file = JSON.parse(readFileSync(settingsPath(root), 'utf8')) as { principals: { principal: string; mode: string }[] };
    assert.deepEqual(file.principals.map((p) => `${p.principal} ${p.mode}`), [`${PRINCIPAL} least-privilege`, `${B} compat`]);
    assert.deepEqual([PRINCIPAL, B].map((p) => loadDom0Config(root, () => undefined, undefined, p)?.settings.mode), ['least-privilege', 'compat']);

    // explain: the principal asked for, whose world alone is visible
    const report = await explain({ root, qubesdSocket: w.qubesd.socketPath, principal: B });
    const row = (q: string) => report.rows.find((r) => r.qube === q);
    assert.equal(report.principal, B);
    assert.deepEqual([row('b-runner')?.standing, row('b-runner')?.groups.see, row('ai-runner')?.standing, row('x-both')?.standing], ['visible', 'allowed', 'not visible', 'not visible']);

    // audit tail: the entries naming one principal
    assert.equal((await w.call('qmcp.Start+b-runner', '', B)).status, 0);
    const tail = await readTail(root, 50, B);
    assert.ok(tail.length > 0 && tail.every((t) => t.entry?.principal === B), JSON.stringify(tail.map((t) => t.entry?.principal)));
  });
});

test('weakened: tier without the check for other worlds puts a qube in two worlds', async () => {
  await withWorld(async (w, root) => {
    const url = pathToFileURL(weakenedFile('dom0/operator/tier', 'if (theirs.length > 0)', 'if (false)')).href;
    const { setTier } = (await import(url)) as typeof import('../../src/dom0/operator/tier.js');
    await setTier({ root, qubesd: new Qubesd(w.qubesd.socketPath), audit: openAudit({ root }), principal: PRINCIPAL }, 'b-runner', 'net');
    assert.ok(tagsOf(w, 'b-runner').includes('ai-managed') && tagsOf(w, 'b-runner').includes('b-managed'));
  });
});

test("doctor checks each principal and fails on a qube tagged into two worlds, naming its tags; weakened, it does not", async () => {
  await withWorld(async (w, root) => {
    const lines = async (run: typeof runDoctor = runDoctor): Promise<string[]> => (await run({ root, qubesdSocket: w.qubesd.socketPath })).checks.map((c) => `${c.status} ${c.check}: ${c.message}`);
    const before = await lines();
    assert.ok(before.includes(`FAIL hybrids: tagged into two principals' worlds, so in neither (no principal reaches them; remove the tags of the world each does not belong to): x-both (ai-managed of ${PRINCIPAL}; b-managed of ${B})`), before.join('\n'));
    // each principal's own checks, each line naming it
    for (const p of [PRINCIPAL, B]) assert.ok(before.includes(`ok principal: ${p}: principal qube ${p} exists`), before.join('\n'));
    assert.ok(before.includes(`ok model: policy and settings carry this version's model hash ${before.find((l) => l.startsWith('ok model'))?.split(' hash ')[1] ?? ''}`));
    const weak = pathToFileURL(weakenedFile('dom0/operator/doctor', 'checks.push(hybridCheck(qubes, principals));', ';')).href;
    const { runDoctor: weakDoctor } = (await import(weak)) as typeof import('../../src/dom0/operator/doctor.js');
    assert.ok(!(await lines(weakDoctor)).some((l) => l.includes('x-both')), 'weakened: the hybrid goes unreported');
    // a remove of the second principal's that did not finish: the restore hint names that principal, under each principal's lines
    await new Qubesd(w.qubesd.socketPath).call('admin.vm.tag.Set', 'b-gone', 'qmcp-incomplete');
    const half = (await lines()).filter((l) => l.startsWith('FAIL half-created:') && l.includes(' b-gone: '));
    assert.equal(half.length, 2, half.join('\n'));
    for (const l of half) assert.ok(l.endsWith('(a tombstone marker on it too: qmcp dom0 tombstones restore b-gone --principal ctl-b)'), l);
    await new Qubesd(w.qubesd.socketPath).call('admin.vm.tag.Remove', 'b-gone', 'qmcp-incomplete');
    await new Qubesd(w.qubesd.socketPath).call('admin.vm.tag.Remove', 'x-both', 'b-managed');
    assert.ok((await lines()).includes(`ok hybrids: no qube is tagged into two principals' worlds`));
  });
});

type Reap = typeof import('../../src/dom0/reaper.js').reap;

/** One reaper run at NOW, on the world; its lines. */
async function reapAt(w: World, now: string, reap: Reap): Promise<string[]> {
  const lines: string[] = [];
  await reap({ QMCP_ROOT: join(w.dir, 'dom0'), QMCP_QUBESD_SOCKET: w.qubesd.socketPath }, new Date(now), (l) => lines.push(l));
  return lines;
}

const isTombstone = (w: World, q: string): boolean => tagsOf(w, q).includes('qmcp-tombstone') || tagsOf(w, q).some((t) => t.startsWith('qmcp-tombstone-at-'));

for (const variant of ['real', 'first principal only', 'every tombstone under each retention'] as const) {
  test(`the reaper: each principal's tombstones under its own retention, each one's leases, on the test's clock (${variant})`, async () => {
    const { reap } = (await import('../../src/dom0/reaper.js')) as { reap: Reap };
    let run = reap;
    if (variant === 'first principal only') run = ((await import(pathToFileURL(weakenedFile('dom0/reaper', 'for (const w of worlds) {', 'for (const w of worlds.slice(0, 1)) {')).href)) as { reap: Reap }).reap;
    if (variant === 'every tombstone under each retention') {
      const tombs = weakenedFile('dom0/tombstones/operator', '(owner !== undefined && !tags.includes(owner))', 'false');
      run = ((await import(pathToFileURL(weakenedFile('dom0/reaper', 'export async function reap(', 'export async function reap(', { [compiled('dom0/tombstones/operator')]: tombs })).href)) as { reap: Reap }).reap;
    }
    await withWorld(async (w) => {
      const has = (q: string): boolean => w.qubesd.app.vms.has(q);
      // day 19: past the first principal's 7 days, within the other's 30; both leases over
      const early = await reapAt(w, '2026-01-20T00:00:00Z', run);
      const first = { aiOld: has('ai-old'), bGone: has('b-gone'), aiLeased: isTombstone(w, 'ai-leased'), bLeased: isTombstone(w, 'b-leased') };
      // day 35: b-gone past 30 days; the lapsed qubes, tombstones for 16 days, past the first's retention only
      const late = await reapAt(w, '2026-02-05T00:00:00Z', run);
      const then = { bGone: has('b-gone'), aiLeased: has('ai-leased'), bLeased: has('b-leased') };
      const state = { first, then };
      const expected = { first: { aiOld: false, bGone: true, aiLeased: true, bLeased: true }, then: { bGone: false, aiLeased: false, bLeased: true } };
      if (variant !== 'real') {
        assert.notDeepEqual(state, expected, `weakened (${variant}) passes`);
        if (variant === 'every tombstone under each retention') assert.ok(early.includes(`${PRINCIPAL}: reaped b-gone`), early.join('\n'));
        return;
      }
      assert.deepEqual(state, expected, [...early, ...late].join('\n'));
      assert.ok(early.includes(`${PRINCIPAL}: reaped ai-old`) && early.includes(`${B}: kept b-gone: within retention`), early.join('\n'));
      assert.ok(early.includes(`${PRINCIPAL}: lease over: ai-leased kept as a tombstone`) && early.includes(`${B}: lease over: b-leased kept as a tombstone`), early.join('\n'));
      assert.ok(late.includes(`${B}: reaped b-gone`), late.join('\n'));
      // a tombstone of no installed principal is no world's to reap: kept, and each run says why
      assert.ok(w.qubesd.app.vms.has('other-gone') && late.includes(orphanKept('other-gone', 'its principal someone was removed')), late.join('\n'));
      // each lapsed qube became its own principal's tombstone, kept past the other's retention
      assert.ok(tagsOf(w, 'b-leased').includes(`qmcp-owner-${B}`) && !tagsOf(w, 'b-leased').includes(`qmcp-owner-${PRINCIPAL}`));
    });
  });
}

for (const variant of ['real', 'first principal'] as const) {
  test(`a plan of the second principal is approved and runs with its settings (${variant})`, async () => {
    await withWorld(async (w, root) => {
      const submitted = await w.call('qmcp.PlanSubmit', JSON.stringify(planRequestJson({ purpose: 'start b-runner', steps: [{ operation: 'start', argument: 'b-runner', payload: Buffer.alloc(0) }] })), B);
      assert.equal(submitted.status, 0, submitted.stderr.toString());
      const id = String((json(submitted) as { plan: unknown }).plan);
      const deps = { root, qubesd: new Qubesd(w.qubesd.socketPath), audit: openAudit({ root }), log: () => undefined, now: () => new Date(), operator: 'tester' };
      let approve = approvePlan;
      if (variant === 'first principal') {
        const run = weakenedFile('dom0/plans/execute', 'loadDom0Config(d.root, d.log, undefined, plan.principal)', `loadDom0Config(d.root, d.log, undefined, '${PRINCIPAL}')`);
        const url = pathToFileURL(weakenedFile('dom0/plans/operator', 'export async function approvePlan', 'export async function approvePlan', { [compiled('dom0/plans/execute')]: run })).href;
        approve = ((await import(url)) as { approvePlan: typeof approvePlan }).approvePlan;
      }
      const ended = await approve(deps, `${B}/${id}`);
      const started = w.qubesd.app.vms.get('b-runner')?.power === 'Running';
      if (variant === 'real') assert.deepEqual([ended.state, started], ['done', true]);
      else assert.deepEqual([ended.state, started], ['failed', false], 'weakened: the plan ran with the first principal\'s settings');
    });
  });
}

for (const variant of ['real', 'other worlds not hidden'] as const) {
  test(`a qube tagged into two worlds is in neither for the services: listed by none, refused as absent (${variant})`, async () => {
    const hidden = "hiding: [...scope.hiding, ...others]";
    const weak = variant === 'real' ? null : weakenedFile('dom0/service/config', hidden, 'hiding: scope.hiding');
    await withWorld(async (w, root) => {
      const config = weak === null ? loadDom0Config : ((await import(pathToFileURL(weak).href)) as { loadDom0Config: typeof loadDom0Config }).loadDom0Config;
      const facts = await Snapshot.take(new Qubesd(w.qubesd.socketPath), (config(root, () => undefined, undefined, B) as Dom0Config).service.scope);
      if (weak !== null) {
        assert.ok(facts.visible('x-both'), 'weakened: the hybrid is in the second world');
        return;
      }
      assert.equal(facts.visible('x-both'), undefined);
      for (const caller of [PRINCIPAL, B]) {
        const listed = await w.call('qmcp.List', '', caller);
        assert.ok(!listed.stdout.toString().includes('x-both'), `${caller} lists x-both`);
        const about = await w.call('qmcp.Info+x-both', '', caller);
        const none = await w.call('qmcp.Info+no-such-qube', '', caller);
        assert.deepEqual([about.status, about.stderr.toString()], [none.status, none.stderr.toString()]);
      }
    });
  });
}

test("approvals: a request is checked with its principal's settings, and --principal keeps to that principal's; weakened, the first principal's settings refuse it", async () => {
  await withWorld(async (w, root) => {
    const waiting = w.call('qmcp.SetFeature+b-box', JSON.stringify({ name: 'gui', value: '0' }), B);
    const r = await pendingRequest(root);
    const ops = (principal?: string): ApprovalOps => ({ root, qubesd: new Qubesd(w.qubesd.socketPath), now: () => new Date(), ...(principal ? { principal } : {}) });
    assert.deepEqual([(await listApprovals(ops(PRINCIPAL))).length, (await listApprovals(ops(B))).map((x) => x.id)], [0, [r.id]]);
    assert.equal(await showApproval(ops(PRINCIPAL), r.id), null);
    assert.ok((await showApproval(ops(), r.id))?.includes(`asked by: "${B}"`));
    await assert.rejects(answerApproval(ops(PRINCIPAL), r.id, 'allow', 'tester', 'cli'), (e: unknown) => e instanceof AnswerRefused && e.reason === 'unknown');
    const weak = weakenedFile('dom0/operator/approvals', 'loadDom0Config(root, () => undefined, undefined, r.principal)', 'loadDom0Config(root, () => undefined)');
    const { answerApproval: weakAnswer } = (await import(pathToFileURL(weak).href)) as { answerApproval: typeof answerApproval };
    await assert.rejects(weakAnswer(ops(B), r.id, 'allow', 'tester', 'cli'), (e: unknown) => e instanceof Error && /unusable/.test(e.message));
    await answerApproval(ops(B), r.id, 'allow', 'tester', 'cli');
    const done = await waiting;
    assert.equal(done.status, 0, done.stderr.toString());
  }, { ...other, gate: ASK_SERVICES });
});

for (const [variant, guard, weak] of [
  ['real', null, null],
  ['first principal', 'loadDom0Config(root, (m) => warnings.push(m), reading, opts.principal)', 'loadDom0Config(root, (m) => warnings.push(m), reading)'],
  ['other worlds not hidden', '!others.some((t) => q.tags.has(t))', 'true'],
] as const) {
  test(`explain: the principal asked for, a qube of two worlds in neither (${variant})`, async () => {
    const run = guard === null ? explain : ((await import(pathToFileURL(weakenedFile('dom0/operator/explain', guard, weak)).href)) as { explain: typeof explain }).explain;
    await withWorld(async (w, root) => {
      const report = await run({ root, qubesdSocket: w.qubesd.socketPath, principal: B });
      const row = (q: string) => report.rows.find((r) => r.qube === q);
      const seen = [row('b-runner')?.groups.see, row('x-both')?.standing];
      if (guard === null) assert.deepEqual(seen, ['allowed', 'not visible']);
      else assert.notDeepEqual(seen, ['allowed', 'not visible'], `weakened (${variant})`);
    });
  });
}

/** The settings without the second principal, as `qmcp dom0 principal remove` leaves them: its tombstones orphans now. */
function withoutB(root: string): void {
  const file = JSON.parse(readFileSync(settingsPath(root), 'utf8')) as { principals: Record<string, unknown>[] };
  file.principals = file.principals.slice(0, 1);
  writeFileSync(settingsPath(root), JSON.stringify(file));
  writeFileSync(join(root, 'etc', 'qubes', 'policy.d', POLICY_FILE), renderPolicies(parsePrincipals(file).principals));
}

test("an orphan (its principal removed) is listed marked, kept by the reaper with why, restored into a named principal's world re-owned, reaped by name, and no agent's", async () => {
  await withWorld(async (w) => {
    const text = await qmcp(w, 'tombstones', 'list');
    assert.ok(text.stdout.includes('orphan (its principal someone was removed): "other-gone"  AppVM  Halted'), text.stdout);
    // with --principal, that world's alone
    assert.ok(!(await qmcp(w, 'tombstones', 'list', '--principal', B)).stdout.includes('other-gone'));
    // each agent: absent, as a name that does not exist
    for (const caller of [PRINCIPAL, B]) {
      assert.ok(!(await w.call('qmcp.TombstoneList+', '', caller)).stdout.toString().includes('other-gone'), caller);
      const restore = await w.call('qmcp.TombstoneRestore+other-gone', '', caller);
      const none = await w.call('qmcp.TombstoneRestore+no-such-qube', '', caller);
      assert.deepEqual([restore.status, restore.stderr.toString()], [none.status, none.stderr.toString()], caller);
    }
    // reap by name: a tombstone with a principal is refused (its retention governs it), an orphan destroyed
    const owned = await qmcp(w, 'tombstones', 'reap', 'b-gone');
    assert.equal(owned.status, 1, owned.stdout);
    assert.match(owned.stdout, /kept "b-gone": not an orphan: its principal's retention governs it/);
    // restore: without a principal (several) a usage error; with one, back in its world, re-owned, untiered
    assert.equal((await qmcp(w, 'tombstones', 'restore', 'other-gone')).status, 2);
    const back = await qmcp(w, 'tombstones', 'restore', 'other-gone', '--principal', B);
    assert.equal(back.status, 0, back.stderr);
    assert.deepEqual(tagsOf(w, 'other-gone'), ['b-managed', `qmcp-owner-${B}`]);
    // another orphan, reaped by name
    await new Qubesd(w.qubesd.socketPath).call('admin.vm.tag.Remove', 'b-gone', `qmcp-owner-${B}`);
    const reaped = await qmcp(w, 'tombstones', 'reap', 'b-gone');
    assert.equal(reaped.status, 0, reaped.stdout + reaped.stderr);
    assert.ok(!w.qubesd.app.vms.has('b-gone'));
  });
});

test('weakened: a restore of an orphan that does not re-own it brings it back with the removed principal\'s owner tag', async () => {
  await withWorld(async (w, root) => {
    const weak = weakenedFile('dom0/tombstones/operator', 'await reown(ops.qubesd, name, tags, ops.principal);', ';');
    const { restoreTombstone: weakRestore } = (await import(pathToFileURL(weak).href)) as { restoreTombstone: typeof restoreTombstone };
    const ops = { qubesd: new Qubesd(w.qubesd.socketPath), settings: readWriteSettings(root, () => undefined, B), audit: openAudit({ root }), owner: `qmcp-owner-${B}`, principals: [PRINCIPAL, B], principal: B, lock: () => acquireBudgetLock(root, 30_000) };
    await weakRestore(ops, 'other-gone');
    assert.ok(tagsOf(w, 'other-gone').includes('qmcp-owner-someone'), 'weakened: the gone owner kept');
  });
});

for (const variant of ['real', 'orphans under the retention of the one left'] as const) {
  test(`once the second principal is removed, the one left neither reaps its tombstones nor counts them as due; doctor tells what to do (${variant})`, async () => {
    const { reap } = (await import('../../src/dom0/reaper.js')) as { reap: Reap };
    let run = reap;
    let doctor = runDoctor;
    if (variant !== 'real') {
      const tombs = weakenedFile('dom0/tombstones/operator', 'orphanReason(t.tags, ops.principals) === null)', 'true)');
      run = ((await import(pathToFileURL(weakenedFile('dom0/reaper', 'export async function reap(', 'export async function reap(', { [compiled('dom0/tombstones/operator')]: tombs })).href)) as { reap: Reap }).reap;
      doctor = ((await import(pathToFileURL(weakenedFile('dom0/operator/doctor', '&& orphanReason([...q.tags], names) === null)', ')')).href)) as typeof import('../../src/dom0/operator/doctor.js')).runDoctor;
    }
    await withWorld(async (w, root) => {
      withoutB(root);
      const now = new Date('2026-03-01T00:00:00Z');
      const checks = (await doctor({ root, qubesdSocket: w.qubesd.socketPath, now })).checks.map((c) => `${c.status} ${c.check}: ${c.message}`);
      const lines = await reapAt(w, now.toISOString(), run);
      if (variant !== 'real') {
        assert.ok(!w.qubesd.app.vms.has('b-gone') && lines.includes('reaped b-gone'), `weakened: ${lines.join('\n')}`);
        assert.ok(checks.some((c) => c.startsWith('note tombstones:') && c.includes('b-gone')), `weakened: ${checks.join('\n')}`);
        return;
      }
      assert.ok(w.qubesd.app.vms.has('b-gone') && w.qubesd.app.vms.has('other-gone'), lines.join('\n'));
      assert.ok(lines.includes(orphanKept('b-gone', `its principal ${B} was removed`)) && lines.includes('reaped ai-old'), lines.join('\n'));
      assert.ok(!checks.some((c) => c.startsWith('note tombstones:') && c.includes('b-gone')), checks.join('\n'));
      const note = `note orphans: tombstones in no principal's world, which the reaper keeps (no retention governs them): b-gone (its principal ${B} was removed), other-gone (its principal someone was removed); bring one back into a principal's world with qmcp dom0 tombstones restore b-gone, or destroy it with qmcp dom0 tombstones reap b-gone`;
      assert.ok(checks.includes(note), checks.join('\n'));
    });
  });
}

test('weakened: doctor without its orphan check is silent about them', async () => {
  await withWorld(async (w, root) => {
    const weak = weakenedFile('dom0/operator/doctor', 'checks.push(orphanCheck(qubes, principals));', ';');
    const { runDoctor: silent } = (await import(pathToFileURL(weak).href)) as typeof import('../../src/dom0/operator/doctor.js');
    const said = (await silent({ root, qubesdSocket: w.qubesd.socketPath })).checks.some((c) => c.message.includes('other-gone'));
    assert.equal(said, false, 'weakened: no line names the orphan');
    assert.ok((await runDoctor({ root, qubesdSocket: w.qubesd.socketPath })).checks.some((c) => c.check === 'orphans' && c.status === 'note' && c.message.includes('other-gone (its principal someone was removed)')));
  });
});
