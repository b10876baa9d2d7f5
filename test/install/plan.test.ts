// The install and uninstall plans as functions of the state they are given:
// a fresh install, an upgrade changing one file, a file edited by hand, and
// an uninstall next to the operator's own files. Each check also runs
// against the compiled plan with its guard taken out, and must fail there.
import { after, test } from 'node:test';
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { planInstall } from '../../src/dom0/install/install-plan.js';
import type { InstallPlan, InstallState, PathState, RenderedInstall } from '../../src/dom0/install/install-plan.js';
import type { Manifest } from '../../src/dom0/install/manifest.js';
import { planUninstall } from '../../src/dom0/install/uninstall-plan.js';
import type { UninstallPlan, UninstallState } from '../../src/dom0/install/uninstall-plan.js';

type PlanInstall = typeof planInstall;
type PlanUninstall = typeof planUninstall;

const POLICY = 'etc/qubes/policy.d/30-qmcp.policy';
const WRAPPER = 'etc/qubes-rpc/qmcp.List';
const SERVICE = 'usr/lib/qmcp/dom0/service-main.js';
const SETTINGS = 'etc/qmcp/settings.json';
const LINK = 'etc/systemd/system/timers.target.wants/qmcp-reaper.timer';
const MANIFEST = 'var/lib/qmcp/manifest.json';

const v1: RenderedInstall = {
  planned: [
    { path: POLICY, content: Buffer.from('qmcp.List * mcp-control @adminvm allow\n'), mode: 0o644 },
    { path: WRAPPER, content: Buffer.from('#!/bin/sh\nexec node service-main.js\n'), mode: 0o755 },
    { path: SERVICE, content: Buffer.from('// the services\n'), mode: 0o644 },
    { path: SETTINGS, content: Buffer.from('{ "principal": "mcp-control" }\n'), mode: 0o644 },
  ],
  options: { qubesdSocket: '/var/run/qubesd.sock', node: '/usr/bin/node', serviceMode: 'per-call' },
};

/** The next version: only the policy changes. */
const v2: RenderedInstall = {
  ...v1,
  planned: v1.planned.map((f) => (f.path === POLICY ? { ...f, content: Buffer.from('qmcp.List * mcp-control @adminvm allow\nqmcp.Info * mcp-control @adminvm allow\n') } : f)),
};

const EMPTY: InstallState = { manifest: null, paths: new Map(), dirs: new Set(), auditLog: false };

const sha = (b: Buffer): string => createHash('sha256').update(b).digest('hex');
const file = (content: string | Buffer, mode = 0o644): PathState => ({ regular: true, link: null, content: Buffer.from(content), mode });

/** The state a plan leaves once carried out, as the apply step would leave it. */
function afterApply(plan: InstallPlan, before: InstallState): InstallState {
  const paths = new Map(before.paths);
  for (const o of plan.originals) paths.set(o.backup, file(o.content, 0o600));
  for (const f of plan.files) {
    if (f.backup) paths.set(f.backup.path, file(f.backup.content, 0o600));
    paths.set(f.path, file(f.content, f.mode));
  }
  paths.set(plan.link.path, { regular: false, link: plan.link.target, content: null, mode: null });
  for (const s of plan.stale) {
    if (s.copy) paths.set(s.copy.path, file(s.copy.content, 0o600));
    paths.delete(s.path);
  }
  paths.set(plan.manifest.path, file(plan.manifest.content, plan.manifest.mode));
  const manifest = JSON.parse(plan.manifest.content.toString('utf8')) as Manifest;
  return { manifest, paths, dirs: new Set([...before.dirs, ...manifest.dirs]), auditLog: true };
}

function manifestOf(plan: InstallPlan): Manifest {
  return JSON.parse(plan.manifest.content.toString('utf8')) as Manifest;
}

function stepFor(plan: InstallPlan, path: string): InstallPlan['files'][number] {
  const step = plan.files.find((f) => f.path === path);
  assert.ok(step, `no step for ${path}`);
  return step;
}

// ---- the checks

function checkFreshInstall(plan: PlanInstall): void {
  const p = plan(v1, EMPTY);
  assert.deepEqual(
    p.files.map((f) => [f.path, f.status, f.backup]),
    v1.planned.map((f) => [f.path, 'new', null]),
  );
  for (const f of p.files) assert.match(f.reason, /not installed yet/, f.path);
  assert.match(stepFor(p, POLICY).diff, /^--- \/dev\/null\n\+\+\+ b\/etc\/qubes\/policy.d\/30-qmcp.policy\n@@ -0,0 \+1,1 @@\n\+qmcp.List/);
  assert.equal(stepFor(p, SERVICE).diff, '', 'no diff outside etc/');
  assert.deepEqual([p.link.status, p.manifest.status], ['new', 'new']);
  assert.deepEqual([p.originals, p.stale], [[], []]);
  const m = manifestOf(p);
  assert.deepEqual(
    m.files,
    [...v1.planned].sort((a, b) => (a.path < b.path ? -1 : 1)).map((f) => ({ path: f.path, sha256: sha(f.content), mode: f.mode.toString(8) })),
  );
  assert.equal(m.auditLogCreated, true);
  // every directory it makes is recorded, so uninstall takes them away again
  for (const d of ['etc', 'etc/qubes/policy.d', 'etc/qubes-rpc', 'etc/qmcp', 'usr/lib/qmcp/dom0', 'var/log/qmcp', 'var/lib/qmcp/slots', 'etc/systemd/system/timers.target.wants']) {
    assert.ok(m.dirs.includes(d), `${d} not recorded as created`);
  }
}

function checkUpgrade(plan: PlanInstall): void {
  const installed = afterApply(plan(v1, EMPTY), EMPTY);
  const p = plan(v2, installed);
  assert.deepEqual(
    p.files.filter((f) => f.status !== 'unchanged').map((f) => f.path),
    [POLICY],
  );
  const policy = stepFor(p, POLICY);
  assert.equal(policy.backup, null, 'an earlier install’s own file needs no backup');
  assert.match(policy.reason, /earlier install/);
  assert.match(policy.diff, /^\+qmcp\.Info \* mcp-control @adminvm allow$/m);
  for (const f of p.files.filter((x) => x.path !== POLICY)) assert.match(f.reason, /as this version renders it/, f.path);
  assert.deepEqual([p.link.status, p.manifest.status, p.originals, p.stale], ['unchanged', 'changed', [], []]);
  assert.equal(manifestOf(p).files.find((f) => f.path === POLICY)?.sha256, sha(policy.content));
  // carried out, the next plan has nothing left to do: what doctor calls healthy
  const again = plan(v2, afterApply(p, installed));
  assert.deepEqual(
    [...again.files, again.manifest, again.link].filter((f) => f.status !== 'unchanged').map((f) => f.path),
    [],
  );
}

function checkHandEdit(plan: PlanInstall): void {
  // the operator's own wrapper was there before the first install
  const own = file('#!/bin/sh\necho mine\n', 0o700);
  const before: InstallState = { ...EMPTY, paths: new Map([[WRAPPER, own]]), dirs: new Set(['etc', 'etc/qubes-rpc']) };
  const first = plan(v1, before);
  assert.equal(first.originals.length, 1, 'the operator’s file is kept whole');
  const original = first.originals[0] as InstallPlan['originals'][number];
  assert.deepEqual([original.path, original.content, original.mode], [WRAPPER, own.content, 0o700]);
  assert.match(original.backup, /^var\/lib\/qmcp\/backup\/etc\/qubes-rpc\/qmcp\.List\.[0-9a-f]{16}\.original$/);
  assert.equal(stepFor(first, WRAPPER).backup, null, 'kept as the original, not as an edit');
  assert.match(stepFor(first, WRAPPER).reason, /operator's own file/);
  assert.deepEqual(manifestOf(first).originals, [{ path: WRAPPER, backup: original.backup, mode: '700' }]);

  // then the installed policy is edited by hand
  const installed = afterApply(first, before);
  const edited = Buffer.from('# hand edit\n');
  const paths = new Map(installed.paths).set(POLICY, file(edited));
  const p = plan(v1, { ...installed, paths });
  assert.deepEqual(
    p.files.filter((f) => f.status !== 'unchanged').map((f) => f.path),
    [POLICY],
  );
  const policy = stepFor(p, POLICY);
  assert.deepEqual(policy.backup, { path: `var/lib/qmcp/backup/${POLICY}.${sha(edited).slice(0, 16)}`, content: edited });
  assert.match(policy.reason, /edited since install/);
  assert.match(policy.diff, /^-# hand edit$/m);
  assert.deepEqual(p.originals, [], 'an original is kept once');
  assert.deepEqual(manifestOf(p).originals, manifestOf(first).originals);
}

function checkUninstall(plan: PlanUninstall): void {
  const rendered = planInstall(v1, EMPTY);
  const installed = afterApply(rendered, EMPTY);
  const manifest = installed.manifest as Manifest;
  const edited = Buffer.from('{ "principal": "elsewhere" }\n');
  const paths = new Map(installed.paths);
  paths.set('etc/qubes-rpc/my.Service', file('#!/bin/sh\necho mine\n', 0o700));
  paths.set(SETTINGS, file(edited));
  paths.set(LINK, { regular: false, link: '/etc/systemd/system/other.timer', content: null, mode: null });
  paths.delete(SERVICE);
  const state: UninstallState = { paths, backups: new Map(), logFiles: ['audit.log'], auditLogSize: 512, witness: true };
  const p: UninstallPlan = plan(manifest, state);
  const named = (s: UninstallPlan['steps'][number]): string => ('path' in s ? s.path : s.message);

  assert.ok(!p.steps.some((s) => named(s).includes('my.Service')), 'the operator’s file is never touched');
  assert.deepEqual(p.steps[0], { do: 'remove', path: POLICY, reason: 'as install wrote it', save: null }, 'the policy goes first');
  assert.deepEqual(
    p.steps.find((s) => named(s) === SETTINGS),
    { do: 'remove', path: SETTINGS, reason: `edited since install: a copy is kept at var/lib/qmcp/uninstall-saved/${SETTINGS}`, save: { copy: `var/lib/qmcp/uninstall-saved/${SETTINGS}`, content: edited, mode: 0o644 } },
  );
  assert.deepEqual(p.steps.find((s) => named(s) === SERVICE), { do: 'gone', path: SERVICE });
  assert.deepEqual(p.steps.find((s) => named(s) === LINK), { do: 'leave', path: LINK, reason: 'not the link install made; left in place' });
  assert.deepEqual(p.steps.find((s) => named(s) === 'var/log/qmcp'), { do: 'leave', path: 'var/log/qmcp', reason: 'the audit log is yours to keep or delete' });
  assert.deepEqual(p.steps.at(-1), { do: 'remove', path: MANIFEST, reason: 'the record of the install', save: null });
  // directories go deepest first, each only if empty by then
  assert.ok(p.dirs.indexOf('etc/qubes-rpc') < p.dirs.indexOf('etc'));
  assert.ok(p.dirs.includes('var/lib/qmcp/slots'));
}

// ---- the weakened plans: the compiled module with one guard taken out

const here = dirname(fileURLToPath(import.meta.url));
const scratch = mkdtempSync(join(tmpdir(), 'qmcp-plan-mutant-'));
let mutants = 0;

/** The compiled module `name` with `guard` replaced by `weakened`; it imports the real modules beside it. */
async function weakened<T>(name: string, guard: string, weakenedTo: string): Promise<T> {
  const dir = join(here, '..', '..', 'src', 'dom0', 'install');
  const text = readFileSync(join(dir, `${name}.js`), 'utf8');
  assert.equal(text.split(guard).length, 2, `the guard ${JSON.stringify(guard)} is not in ${name}.js exactly once`);
  const mutated = text.replace(guard, weakenedTo).replace(/from '\.\/([\w-]+\.js)'/g, (_, f: string) => `from '${pathToFileURL(join(dir, f)).href}'`);
  const path = join(scratch, `${name}-${mutants++}.js`);
  writeFileSync(path, mutated);
  return (await import(pathToFileURL(path).href)) as T;
}

after(() => rmSync(scratch, { recursive: true, force: true }));

test('fresh install: every file new, no backups, every directory it makes recorded', async () => {
  checkFreshInstall(planInstall);
  const { planInstall: weak } = await weakened<{ planInstall: PlanInstall }>('install-plan', 'created.add(d)', 'void d');
  assert.throws(() => checkFreshInstall(weak), assert.AssertionError, 'a plan that records no created directory');
});

test('upgrade with one changed file: only it is written, without a backup, and then nothing is left to do', async () => {
  checkUpgrade(planInstall);
  const { planInstall: weak } = await weakened<{ planInstall: PlanInstall }>('install-plan', 'p.sha256 === sha256(current)', 'false');
  assert.throws(() => checkUpgrade(weak), assert.AssertionError, 'a plan that takes its own earlier file for an edit');
});

test('a file edited by hand is backed up before it is replaced; the operator’s own file is kept whole once', async () => {
  checkHandEdit(planInstall);
  const noBackup = await weakened<{ planInstall: PlanInstall }>('install-plan', 'backup: { path: backup, content: current }', 'backup: null');
  assert.throws(() => checkHandEdit(noBackup.planInstall), assert.AssertionError, 'a plan that replaces an edit without a backup');
  const noOriginal = await weakened<{ planInstall: PlanInstall }>('install-plan', 'out.push({ path, backup: originalBackup(path, now.content), content: now.content, mode: now.mode });', '');
  assert.throws(() => checkHandEdit(noOriginal.planInstall), assert.AssertionError, 'a plan that does not keep the operator’s original');
});

test('uninstall removes only what the manifest lists, saves an edit, and leaves the operator’s link and files', async () => {
  checkUninstall(planUninstall);
  const anyLink = await weakened<{ planUninstall: PlanUninstall }>('uninstall-plan', 'now.link === l.target', 'now.link !== null');
  assert.throws(() => checkUninstall(anyLink.planUninstall), assert.AssertionError, 'a plan that removes a link it did not make');
  const noCopy = await weakened<{ planUninstall: PlanUninstall }>('uninstall-plan', 'sha256(now.content) === f.sha256', 'true');
  assert.throws(() => checkUninstall(noCopy.planUninstall), assert.AssertionError, 'a plan that removes an edited file without a copy');
});
