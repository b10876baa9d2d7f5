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
import { weakenedFile } from '../../verify/weakened-module.js';
import { startSmallHost } from '../install/small-host.js';
import { walk } from '../install/tree.js';
import { qmcp } from './qmcp.js';

type Module = typeof real;

const tmp = mkdtempSync(join(tmpdir(), 'qmcp-principal-'));
let host: SimHost;
const TOMB = ['qmcp-tombstone', 'qmcp-tombstone-20261101T000000Z'];
const SEED: Record<string, string[]> = {
  'ai-work': ['ai-managed', 'qmcp-owner-mcp-control'],
  'ctl-b-work': ['ctl-b-managed', 'ctl-b-exec', 'qmcp-owner-ctl-b'],
  'ctl-b-old': [...TOMB, 'qmcp-owner-ctl-b'],
  lent: ['ctl-b-managed'],
};

before(async () => {
  host = await startSmallHost(join(tmp, 'host'), SEED, ['ctl-b']);
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
  assert.deepEqual(rows.map((r) => [r.principal, r.prefix, r.umbrella, r.mode, r.owned, r.tombstones]), [
    ['mcp-control', 'ai-', 'ai-managed', 'least-privilege', 1, 0],
    ['ctl-b', 'ctl-b-', 'ctl-b-managed', 'least-privilege', 2, 1],
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
  assert.match(list.stdout, /^ctl-b {2}prefix ctl-b- {2}umbrella ctl-b-managed {2}least-privilege {2}owns \d+ qube\(s\)/m);
  const json = JSON.parse((await qmcp(['dom0', 'principal', 'list', '--json', ...at])).stdout) as { principals: { principal: string }[] };
  assert.deepEqual(json.principals.map((p) => p.principal), ['mcp-control', 'ctl-b']);
  const owned = await qmcp(['dom0', 'principal', 'remove', 'ctl-b', ...at]);
  assert.equal(owned.status, 1);
  assert.match(owned.stderr, /refused: ctl-b still owns/);
  assert.equal((await qmcp(['dom0', 'principal', 'remove', 'ctl-b', '--entomb', '--release', ...at])).status, 2);
  assert.equal((await qmcp(['dom0', 'principal', 'add', 'x', '--mode', 'wide', ...at])).status, 2);
  assert.equal((await qmcp(['dom0', 'principal', 'list', '--entomb', ...at])).status, 2);
});
