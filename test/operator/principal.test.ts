// qmcp dom0 principal add | remove | list on a simulated host: each refusal writes nothing, and remove after add gives back the file byte for byte.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { openAudit } from '../../src/dom0/audit/index.js';
import { installDom0 } from '../../src/dom0/install/index.js';
import { OperatorRefusal } from '../../src/dom0/operator/index.js';
import * as real from '../../src/dom0/operator/principals.js';
import type { Disposal, PrincipalOps, PrincipalSpec } from '../../src/dom0/operator/principals.js';
import { POLICY_FILE, parsePrincipals, renderPolicies, settingsPath } from '../../src/shared/model/index.js';
import type { SimHost } from '../../src/sim/host.js';
import { compiled, weakenedFile } from '../../verify/weakened-module.js';
import { startSmallHost } from '../install/small-host.js';
import { walk } from '../install/tree.js';
import { qmcp } from './qmcp.js';
import { acquireBudgetLock } from '../../src/dom0/create/lock.js';
import { Qubesd } from '../../src/dom0/qubesd.js';
import { OPEN_GATE } from '../../src/sim/open-gate.js';
import { call } from '../services-write/helpers.js';
import type { CallOptions, CallResult, Host } from '../services-write/helpers.js';

type Module = typeof real;

const tmp = mkdtempSync(join(tmpdir(), 'qmcp-principal-'));
let host: SimHost;
const TOMB = ['qmcp-tombstone', 'qmcp-tombstone-20261101T000000Z'];
const SEED: Record<string, string[]> = {
  'ai-work': ['ai-managed', 'qmcp-owner-mcp-control'],
  'ctl-b-work': ['ctl-b-managed', 'ctl-b-exec', 'qmcp-owner-ctl-b'],
  'ctl-b-old': [...TOMB, 'qmcp-owner-ctl-b'],
  lent: ['ctl-b-managed'],
  'ctl-b-tpl': ['ctl-b-managed'],
};

before(async () => {
  host = await startSmallHost(join(tmp, 'host'), SEED, ['ctl-b'], [{ name: 'sys-b', klass: 'AppVM', template: 'tpl', label: 'red', properties: { provides_network: true } }]);
});

after(async () => {
  await host.close();
  rmSync(tmp, { recursive: true, force: true });
});

let n = 0;
/** A fresh single-principal install, as `qmcp dom0 install` writes it, on the host's qubes as they were seeded. */
async function installed(): Promise<PrincipalOps> {
  for (const [name, seeded] of Object.entries(SEED)) {
    const vm = host.qubesd.app.vms.get(name);
    vm?.tags.splice(0, vm.tags.length, ...vm.tags.filter((t) => /^(guivm|audiovm)-/.test(t)), ...seeded);
  }
  const root = mkdtempSync(join(tmp, `root${n++}-`));
  await installDom0({ root, qubesdSocket: host.qubesd.socketPath, durable: false });
  return { root, socket: host.qubesd.socketPath, audit: openAudit({ root }) };
}

/** The installed tree but the audit log and its witness, which every command advances. */
function tree(root: string): Map<string, string> {
  const t = walk(root);
  t.delete('var/log/qmcp/audit.log');
  t.delete('var/lib/qmcp/audit-witness');
  // the budget lock's directory, which remove takes the lock in
  t.delete('var/lib/qmcp/locks');
  return t;
}

function tags(q: string): string[] {
  return [...(host.qubesd.app.vms.get(q)?.tags ?? [])].filter((t) => !/^(guivm|audiovm)-/.test(t)).sort();
}

async function refusal(p: Promise<unknown>): Promise<string> {
  try {
    await p;
  } catch (err) {
    if (err instanceof OperatorRefusal) return err.message;
    throw err;
  }
  return '(not refused)';
}

const ADD_B: PrincipalSpec = { name: 'ctl-b' };

test('add writes the list form and installs every principal; remove after add gives back the file byte for byte', async () => {
  const ops = await installed();
  const original = readFileSync(settingsPath(ops.root));
  const first = tree(ops.root);
  await real.addPrincipal(ops, ADD_B);
  const raw = JSON.parse(readFileSync(settingsPath(ops.root), 'utf8')) as Record<string, unknown>;
  const { principals, problems } = parsePrincipals(raw);
  assert.deepEqual(problems.filter((p) => p.fatal), []);
  assert.deepEqual(principals.list.map((s) => [s.principal, s.namePrefix, s.tags.umbrella, s.tags.sink, s.mode]), [
    ['mcp-control', 'ai-', 'ai-managed', 'ai-dump', 'least-privilege'],
    ['ctl-b', 'ctl-b-', 'ctl-b-managed', 'ctl-b-dump', 'least-privilege'],
  ]);
  assert.equal(readFileSync(join(ops.root, 'etc/qubes/policy.d', POLICY_FILE), 'utf8'), renderPolicies(principals));
  const { rows } = await real.listPrincipals(ops);
  // lent and ctl-b-tpl are in ctl-b's world by hand, not its owner's: counted under the umbrella, not as owned
  assert.deepEqual(rows.map((r) => [r.principal, r.prefix, r.umbrella, r.mode, r.world, r.sinks, r.owned, r.tombstones]), [
    ['mcp-control', 'ai-', 'ai-managed', 'least-privilege', 1, 0, 1, 0],
    ['ctl-b', 'ctl-b-', 'ctl-b-managed', 'least-privilege', 3, 0, 2, 1],
  ]);
  await real.removePrincipal(ops, 'ctl-b', 'release');
  assert.deepEqual(readFileSync(settingsPath(ops.root)), original, 'the single-principal file, byte for byte');
  assert.deepEqual(tree(ops.root), first, 'and the install as it was');
  assert.deepEqual(tags('ctl-b-work'), [], 'released: the operator’s own');
  assert.deepEqual(tags('ctl-b-old'), TOMB, 'a released tombstone stays a tombstone');
  assert.deepEqual(tags('lent'), []);
});

/** Fails unless MOD's remove drops the shares that name the principal it removes, and its egress qube no other shares. */
async function dropsShares(mod: Module): Promise<void> {
  const ops = await installed();
  const b = { principal: 'ctl-b', namePrefix: 'ctl-b-', egressQube: 'sys-ab', tags: { umbrella: 'ctl-b-managed', exec: 'ctl-b-exec', net: 'ctl-b-net', full: 'ctl-b-full', sink: 'ctl-b-dump' }, mode: 'compat' };
  const shared = { egressQubes: ['sys-ab'], sinks: [{ from: 'ctl-b', into: 'mcp-control', tag: 'share-b-a' }] };
  await installDom0({ root: ops.root, qubesdSocket: ops.socket, durable: false, settings: { principals: [{ principal: 'mcp-control', mode: 'compat', egressQube: 'sys-ab' }, b], shared } });
  await mod.removePrincipal(ops, 'ctl-b', 'release');
  const left = JSON.parse(readFileSync(settingsPath(ops.root), 'utf8')) as Record<string, unknown>;
  assert.deepEqual([left['principal'], left['egressQube'], 'principals' in left, 'shared' in left], ['mcp-control', 'sys-ab', false, false]);
}

test('remove drops the shares that name the principal', async () => {
  await dropsShares(real);
});

/** Fails unless MOD's add shares an egress qube only when told, and its remove unshares it. */
async function sharesEgress(mod: Module): Promise<void> {
  const ops = await installed();
  await real.addPrincipal(ops, { name: 'ctl-b', egress: 'sys-x' });
  const twoLists = readFileSync(settingsPath(ops.root));
  assert.match(await refusal(real.addPrincipal(ops, { name: 'ctl-c', egress: 'sys-x' })), /ctl-b and ctl-c both name sys-x; list it in shared\.egressQubes to share it/);
  await real.addPrincipal(ops, { name: 'ctl-c', egress: 'sys-x', shareEgress: true });
  const raw = JSON.parse(readFileSync(settingsPath(ops.root), 'utf8')) as Record<string, unknown>;
  assert.deepEqual(raw['shared'], { egressQubes: ['sys-x'] });
  await mod.removePrincipal(ops, 'ctl-c', 'refuse');
  assert.deepEqual(readFileSync(settingsPath(ops.root)), twoLists);
}

test('add shares an egress qube only when told, and remove unshares it', async () => {
  await sharesEgress(real);
});

/** Each refusal of MOD, with whether it left the install as it was. */
async function refusals(mod: Module): Promise<Record<string, { message: string; unchanged: boolean }>> {
  const ops = await installed();
  const out: Record<string, { message: string; unchanged: boolean }> = {};
  const check = async (what: string, act: () => Promise<unknown>): Promise<void> => {
    const before = tree(ops.root);
    const settings = readFileSync(settingsPath(ops.root));
    const message = await refusal(act());
    out[what] = { message, unchanged: readFileSync(settingsPath(ops.root)).equals(settings) && JSON.stringify([...tree(ops.root)]) === JSON.stringify([...before]) };
  };
  await check('last', () => mod.removePrincipal(ops, 'mcp-control', 'entomb'));
  await mod.addPrincipal(ops, { name: 'ctl-b', tagBase: 'b' });
  await check('overlap', () => mod.addPrincipal(ops, { name: 'ai' }));
  await check('twice', () => mod.addPrincipal(ops, { name: 'ctl-b', prefix: 'z-', tagBase: 'z' }));
  await check('unknown', () => mod.removePrincipal(ops, 'nobody', 'entomb'));
  await check('owned', () => mod.removePrincipal(ops, 'ctl-b', 'refuse'));
  return out;
}

test('every refusal has its precise reason and writes nothing', async () => {
  const r = await refusals(real);
  assert.match(r['last']?.message ?? '', /mcp-control is the only principal/);
  assert.match(r['overlap']?.message ?? '', /principals\[0\]\.namePrefix: mcp-control and ai have overlapping name prefixes ai- and ai-/);
  assert.match(r['overlap']?.message ?? '', /share ai-managed/);
  assert.match(r['twice']?.message ?? '', /ctl-b is a principal already/);
  assert.match(r['unknown']?.message ?? '', /nobody is not a principal \(the principals: mcp-control, ctl-b\)/);
  assert.match(r['owned']?.message ?? '', /ctl-b still owns 2 qube\(s\), tombstones included: ctl-b-old, ctl-b-work/);
  for (const [what, x] of Object.entries(r)) assert.ok(x.unchanged, `${what}: nothing written`);
});

test('remove --entomb makes the live qubes tombstones, never destroys, and keeps the owner tag', async () => {
  const ops = await installed();
  await real.addPrincipal(ops, ADD_B);
  const { qubes } = await real.removePrincipal(ops, 'ctl-b', 'entomb' satisfies Disposal);
  assert.deepEqual(qubes, ['ctl-b-work']);
  const t = tags('ctl-b-work');
  assert.ok(t.includes('qmcp-tombstone') && t.includes('qmcp-owner-ctl-b') && !t.includes('ctl-b-managed') && !t.includes('ctl-b-exec'), t.join(' '));
  assert.ok(host.qubesd.app.vms.has('ctl-b-old'));
  assert.equal(parsePrincipals(JSON.parse(readFileSync(settingsPath(ops.root), 'utf8'))).principals.list.length, 1);
});

test('weakened variants are caught: no owned check, a write before validating, no check of a name twice or unknown, no last-principal check, a share kept, an egress qube kept shared, a list of one kept as a list', async () => {
  const weak = async (guard: string, to: string): Promise<Module> => (await import(pathToFileURL(weakenedFile('dom0/operator/principals', guard, to)).href)) as Module;
  const noOwned = await refusals(await weak("if (owned.length > 0 && disposal === 'refuse')", 'if (false)'));
  assert.doesNotMatch(noOwned['owned']?.message ?? '', /still owns/);
  const add = 'await installEdit(ops.root, joined(top, [...entries, entry]), false);';
  const writeFirst = await refusals(await weak(add, `(await import('node:fs')).writeFileSync(settingsPath(ops.root), JSON.stringify(joined(top, [...entries, entry]))); ${add}`));
  assert.equal(writeFirst['overlap']?.unchanged, false);
  const noLast = await refusals(await weak('if (list.length === 1)', 'if (false)'));
  assert.doesNotMatch(noLast['last']?.message ?? '', /only principal/);

  const noTwice = await refusals(await weak('if (list.some((s) => s.principal === spec.name))', 'if (false)'));
  assert.doesNotMatch(noTwice['twice']?.message ?? '', /a principal already/);
  await assert.rejects(refusals(await weak('if (s === undefined)\n', 'if (false)\n')), TypeError);
  await assert.rejects(dropsShares(await weak('return from !== name && into !== name;', 'return true;')), OperatorRefusal);

  await assert.rejects(sharesEgress(await weak('(q) => q !== egress ||', '(q) => true ||')), OperatorRefusal);

  const keepsList = await weak('if (only !== undefined && entries.length === 1 && shared === undefined)', 'if (false)');
  const ops = await installed();
  const original = readFileSync(settingsPath(ops.root));
  await keepsList.addPrincipal(ops, ADD_B);
  await keepsList.removePrincipal(ops, 'ctl-b', 'release');
  assert.notDeepEqual(readFileSync(settingsPath(ops.root)), original);
});

test('qmcp dom0 principal: what to create after add, the list, a refusal exits 1, usage 2', async () => {
  const ops = await installed();
  const at = ['--root', ops.root, '--qubesd-socket', ops.socket];
  const add = await qmcp(['dom0', 'principal', 'add', 'ctl-b', '--egress', 'sys-b', ...at]);
  assert.equal(add.status, 0, add.stderr);
  assert.match(add.stdout, /next: create the qube ctl-b .*egress qube sys-b/);
  const list = await qmcp(['dom0', 'principal', 'list', ...at]);
  assert.match(list.stdout, /^ctl-b {2}prefix ctl-b- {2}umbrella ctl-b-managed {2}least-privilege {2}3 qube\(s\) under its umbrella, 0 sink\(s\); 2 with its owner tag \(created or removed by its agent\), 1 of them tombstones$/m);
  const json = JSON.parse((await qmcp(['dom0', 'principal', 'list', '--json', ...at])).stdout) as { principals: { principal: string }[] };
  assert.deepEqual(json.principals.map((p) => p.principal), ['mcp-control', 'ctl-b']);
  const owned = await qmcp(['dom0', 'principal', 'remove', 'ctl-b', ...at]);
  assert.equal(owned.status, 1);
  assert.match(owned.stderr, /refused: ctl-b still owns/);
  assert.equal((await qmcp(['dom0', 'principal', 'remove', 'ctl-b', '--entomb', '--release', ...at])).status, 2);
  assert.equal((await qmcp(['dom0', 'principal', 'add', 'x', '--mode', 'wide', ...at])).status, 2);
  assert.equal((await qmcp(['dom0', 'principal', 'list', '--entomb', ...at])).status, 2);
});

const CREATE = { name: 'ctl-b-new', template: 'ctl-b-tpl' };

const B_CAPPED = {
  principal: 'ctl-b', namePrefix: 'ctl-b-', egressQube: 'sys-b', mode: 'compat', gate: OPEN_GATE, poolCapBytes: 2 ** 40, privateCapBytes: 2 ** 36,
  tags: { umbrella: 'ctl-b-managed', exec: 'ctl-b-exec', net: 'ctl-b-net', full: 'ctl-b-full', sink: 'ctl-b-dump' },
};

/** Both principals installed, ctl-b with a budget and owning no qube yet; the host as a service call sees it. */
async function withB(): Promise<{ ops: PrincipalOps; h: Host }> {
  const ops = await installed();
  await installDom0({ root: ops.root, qubesdSocket: ops.socket, durable: false, settings: { principals: [{ principal: 'mcp-control' }, B_CAPPED] } });
  for (const vm of host.qubesd.app.vms.values()) vm.tags = vm.tags.filter((t) => t !== 'qmcp-owner-ctl-b');
  // its egress qube in its world, as a create from a template needs (the tests before these count the world without it)
  const egress = host.qubesd.app.vms.get('sys-b');
  if (egress && !egress.tags.includes('ctl-b-managed')) egress.tags.push('ctl-b-managed');
  // an earlier run's
  if (host.qubesd.app.vms.has(CREATE.name)) await new Qubesd(ops.socket).call('admin.vm.Remove', CREATE.name);
  const h: Host = { root: ops.root, sim: host.qubesd, qubesd: new Qubesd(ops.socket), vm: (q) => host.qubesd.app.vms.get(q), writeSettings: () => assert.fail('not here'), done: () => Promise.resolve() };
  return { ops, h };
}


/** Qubes carrying ctl-b's owner tag while ctl-b is no principal: what the lock prevents. */
function orphans(root: string): string[] {
  const left = parsePrincipals(JSON.parse(readFileSync(settingsPath(root), 'utf8'))).principals.list.map((s) => s.principal);
  if (left.includes('ctl-b')) return [];
  return [...host.qubesd.app.vms.values()].filter((vm) => vm.tags.includes('qmcp-owner-ctl-b')).map((vm) => vm.name);
}

/** A create of ctl-b's held after its first steps (before its owner tag) while MOD removes ctl-b; released once the remove waits for the lock or is done. */
async function removeDuringCreate(mod: Module): Promise<{ removal: string; created: CallResult; orphans: string[] }> {
  const { ops, h } = await withB();
  let reached!: () => void;
  let release!: () => void;
  const atHidden = new Promise<void>((r) => (reached = r));
  const hold = new Promise<void>((r) => (release = r));
  const fault = async (step: string): Promise<void> => {
    if (step !== 'hidden') return;
    reached();
    await hold;
  };
  const create = call(h, 'qmcp.Create+', CREATE, { caller: 'ctl-b', fault });
  // a create refused before the barrier ends the wait, and fails the assertions
  const early = await Promise.race([atHidden.then(() => null), create]);
  if (early !== null) return { removal: 'not run', created: early, orphans: [] };
  let waits!: () => void;
  const atLock = new Promise<void>((r) => (waits = r));
  const removal = refusal(mod.removePrincipal({ ...ops, lock: (root) => (waits(), acquireBudgetLock(root, 60_000)) }, 'ctl-b', 'refuse'));
  await Promise.race([atLock, removal]);
  release();
  const created = await create;
  return { removal: await removal, created, orphans: orphans(ops.root) };
}

test('remove waits for a create under way, then counts its qube; weakened, a remove without the budget lock leaves the qube with a gone principal\'s owner tag', async () => {
  const r = await removeDuringCreate(real);
  assert.equal(r.created.status, 0, r.created.stdout + r.created.stderr);
  assert.match(r.removal, /^ctl-b still owns 1 qube\(s\), tombstones included: ctl-b-new;/);
  assert.deepEqual(r.orphans, []);
  const weak = (await import(pathToFileURL(weakenedFile('dom0/operator/principals', 'const lock = await (ops.lock ?? ((root) => acquireBudgetLock(root, REMOVE_LOCK_WAIT_MS)))(ops.root);', 'const lock = { release: async () => undefined };')).href)) as Module;
  const w = await removeDuringCreate(weak);
  assert.equal(w.removal, '(not refused)');
  assert.deepEqual(w.orphans, ['ctl-b-new'], 'weakened');
});

/** A create of ctl-b's that read its settings and waits for the lock while ctl-b is removed; through TABLE's create. */
async function createAfterRemove(table?: CallOptions['serviceTable']): Promise<{ created: CallResult; orphans: string[] }> {
  const { ops, h } = await withB();
  let waits!: () => void;
  let go!: () => void;
  const atLock = new Promise<void>((r) => (waits = r));
  const removed = new Promise<void>((r) => (go = r));
  const budgetLock = async (root: string, ms: number): ReturnType<typeof acquireBudgetLock> => {
    waits();
    await removed;
    return acquireBudgetLock(root, ms);
  };
  const create = call(h, 'qmcp.Create+', CREATE, { caller: 'ctl-b', budgetLock, ...(table ? { serviceTable: table } : {}) });
  const early = await Promise.race([atLock.then(() => null), create]);
  if (early !== null) return { created: early, orphans: [] };
  await real.removePrincipal(ops, 'ctl-b', 'refuse');
  go();
  return { created: await create, orphans: orphans(ops.root) };
}

test('a create that waited for the lock while its principal was removed is refused; weakened, one that does not re-read its principal under the lock makes an orphan', async () => {
  const r = await createAfterRemove();
  assert.deepEqual(r.created, { status: 126, stdout: '', stderr: 'Request refused\n' });
  assert.equal(host.qubesd.app.vms.get('ctl-b-new'), undefined);
  assert.deepEqual(r.orphans, []);
  const birth = weakenedFile('dom0/create/birth', 'if (!isInstalledPrincipal(deps.root, c.principal))', 'if (false)');
  const create = weakenedFile('dom0/services/create', 'export function createService', 'export function createService', { [compiled('dom0/create/birth')]: birth });
  const index = weakenedFile('dom0/services/index', 'export function serviceTable', 'export function serviceTable', { [compiled('dom0/services/create')]: create });
  const { serviceTable } = (await import(pathToFileURL(index).href)) as typeof import('../../src/dom0/services/index.js');
  const w = await createAfterRemove(serviceTable);
  assert.equal(w.created.status, 0, 'weakened: made');
  assert.deepEqual(w.orphans, ['ctl-b-new'], 'weakened');
});

/** Sets qube Q's tags (the platform's kept). */
function setTags(q: string, to: string[]): void {
  const vm = host.qubesd.app.vms.get(q);
  if (vm) vm.tags = [...vm.tags.filter((t) => /^(guivm|audiovm)-/.test(t)), ...to];
}

/** An agent call of ctl-b's and the ctl-b remove it races: what each answered and the target's tags after. */
interface Race {
  readonly agent: CallResult;
  readonly removal: string;
  readonly tags: string[];
}

/** ctl-b-work in ctl-b's world at full tier (a remove's target), or ctl-b-old its tombstone (a restore's). */
const AGENT = {
  remove: { service: 'qmcp.Remove+ctl-b-work', target: 'ctl-b-work', tags: ['ctl-b-managed', 'ctl-b-full'], step: 'remove-locked' },
  restore: { service: 'qmcp.TombstoneRestore+ctl-b-old', target: 'ctl-b-old', tags: [...TOMB, 'qmcp-owner-ctl-b'], step: 'restore-locked' },
} as const;

/** A service table whose SERVICE's module (services/remove or services/tombstones) has GUARD replaced by WEAK. */
async function weakTable(service: 'remove' | 'tombstones', guard: string, weak: string): Promise<CallOptions['serviceTable']> {
  const mod = weakenedFile(`dom0/services/${service}`, guard, weak);
  const index = weakenedFile('dom0/services/index', 'export function serviceTable', 'export function serviceTable', { [compiled(`dom0/services/${service}`)]: mod });
  return ((await import(pathToFileURL(index).href)) as typeof import('../../src/dom0/services/index.js')).serviceTable;
}

/** A promise and what resolves it. */
function barrier(): { at: Promise<void>; open: () => void } {
  let open!: () => void;
  const at = new Promise<void>((r) => (open = r));
  return { at, open };
}

/** Both principals, KIND's target tagged for it, and KIND's call under way with OPTS; null when it ended before reaching AT. */
async function agentCall(kind: keyof typeof AGENT, at: Promise<void>, opts: CallOptions): Promise<{ ops: PrincipalOps; agent: Promise<CallResult>; early: Race | null }> {
  const { ops, h } = await withB();
  const a = AGENT[kind];
  setTags(a.target, [...a.tags]);
  const agent = call(h, a.service, '', { caller: 'ctl-b', ...opts });
  const early = await Promise.race([at.then(() => null), agent]);
  return { ops, agent, early: early === null ? null : { agent: early, removal: 'not run', tags: tags(a.target) } };
}

/** KIND's call waits for the budget lock while ctl-b is removed with DISPOSAL, then goes on. */
async function agentAfterRemove(kind: keyof typeof AGENT, disposal: Disposal, table?: CallOptions['serviceTable']): Promise<Race> {
  const atLock = barrier();
  const removed = barrier();
  const budgetLock = async (root: string, ms: number): ReturnType<typeof acquireBudgetLock> => {
    atLock.open();
    await removed.at;
    return acquireBudgetLock(root, ms);
  };
  const { ops, agent, early } = await agentCall(kind, atLock.at, { budgetLock, ...(table ? { serviceTable: table } : {}) });
  if (early !== null) return early;
  const removal = await refusal(real.removePrincipal(ops, 'ctl-b', disposal));
  removed.open();
  return { agent: await agent, removal, tags: tags(AGENT[kind].target) };
}

/**
 * KIND's call holds the budget lock (stopped at its step) while ctl-b is
 * removed with DISPOSAL; it goes on once the remove waits for the lock, or
 * once the remove is done if the lock was free (a call that took none).
 */
async function removeDuringAgent(kind: keyof typeof AGENT, disposal: Disposal, table?: CallOptions['serviceTable']): Promise<Race> {
  const atStep = barrier();
  const hold = barrier();
  const fault = async (step: string): Promise<void> => {
    if (step !== AGENT[kind].step) return;
    atStep.open();
    await hold.at;
  };
  const { ops, agent, early } = await agentCall(kind, atStep.at, { fault, ...(table ? { serviceTable: table } : {}) });
  if (early !== null) return early;
  const atLock = barrier();
  // a free lock is taken at once, so the remove runs through before the call goes on
  const lock = async (root: string): ReturnType<typeof acquireBudgetLock> => (await acquireBudgetLock(root, 0)) ?? (atLock.open(), acquireBudgetLock(root, 60_000));
  const removal = refusal(real.removePrincipal({ ...ops, lock }, 'ctl-b', disposal));
  await Promise.race([atLock.at, removal]);
  hold.open();
  return { agent: await agent, removal: await removal, tags: tags(AGENT[kind].target) };
}

const REMOVED = ['qmcp-owner-ctl-b', 'qmcp-tombstone'];

test("an agent's remove that waited for the lock while its principal was released is refused, the qube the operator's; weakened, one that does not re-read its principal entombs it with the gone principal's owner tag", async () => {
  const r = await agentAfterRemove('remove', 'release');
  assert.deepEqual(r.agent, { status: 126, stdout: '', stderr: 'Request refused\n' });
  assert.deepEqual([r.removal, r.tags], ['(not refused)', []]);
  const w = await agentAfterRemove('remove', 'release', await weakTable('remove', 'if (!isInstalledPrincipal(deps.root, ctx.principal))', 'if (false)'));
  assert.equal(w.agent.status, 0, 'weakened: removed');
  assert.ok(REMOVED.every((t) => w.tags.includes(t)), `weakened: ${w.tags.join(' ')}`);
});

test("principal remove waits for an agent's remove under way, then releases its tombstone; weakened, a remove without the budget lock leaves a tombstone with the gone principal's owner tag", async () => {
  const r = await removeDuringAgent('remove', 'release');
  assert.equal(r.agent.status, 0, r.agent.stdout + r.agent.stderr);
  assert.equal(r.removal, '(not refused)');
  assert.ok(r.tags.includes('qmcp-tombstone') && !r.tags.some((t) => t.startsWith('qmcp-owner-') || t.startsWith('ctl-b-')), r.tags.join(' '));
  const w = await removeDuringAgent('remove', 'release', await weakTable('remove', 'const lock = await takeBudgetLock(deps);', 'const lock = { release: async () => undefined };'));
  assert.equal(w.agent.status, 0, 'weakened: removed');
  assert.ok(REMOVED.every((t) => w.tags.includes(t)), `weakened: ${w.tags.join(' ')}`);
});

test("an agent's restore that waited for the lock while its principal was removed is refused, the tombstone kept; weakened, one that does not re-read its principal brings the gone principal's umbrella back", async () => {
  const r = await agentAfterRemove('restore', 'entomb');
  assert.deepEqual(r.agent, { status: 126, stdout: '', stderr: 'Request refused\n' });
  assert.deepEqual([r.removal, r.tags], ['(not refused)', [...TOMB, 'qmcp-owner-ctl-b'].sort()]);
  const w = await agentAfterRemove('restore', 'entomb', await weakTable('tombstones', 'if (!isInstalledPrincipal(deps.root, principal))', 'if (false)'));
  assert.equal(w.agent.status, 0, 'weakened: restored');
  assert.ok(w.tags.includes('ctl-b-managed') && !w.tags.includes('qmcp-tombstone'), `weakened: ${w.tags.join(' ')}`);
});

test("principal remove --entomb waits for an agent's restore under way, then entombs the qube again; weakened, a restore without the budget lock leaves a live qube in the gone principal's umbrella", async () => {
  const r = await removeDuringAgent('restore', 'entomb');
  assert.equal(r.agent.status, 0, r.agent.stdout + r.agent.stderr);
  assert.equal(r.removal, '(not refused)');
  assert.ok(r.tags.includes('qmcp-tombstone') && !r.tags.includes('ctl-b-managed'), r.tags.join(' '));
  const w = await removeDuringAgent('restore', 'entomb', await weakTable('tombstones', 'const lock = await takeBudgetLock(deps);', 'const lock = { release: async () => undefined };'));
  assert.equal(w.agent.status, 0, 'weakened: restored');
  assert.ok(w.tags.includes('ctl-b-managed') && !w.tags.includes('qmcp-tombstone'), `weakened: ${w.tags.join(' ')}`);
});
