// install upgrades a single-principal install to the list form and back in place: each result is what a fresh install of that file makes.
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { pathToFileURL } from 'node:url';
import { installDom0 } from '../../src/dom0/install/index.js';
import { uninstallDom0 } from '../../src/dom0/install/uninstall.js';
import { POLICY_FILE, parsePrincipals, renderPolicies } from '../../src/shared/model/index.js';
import { loadPolicyFromRoot } from '../../src/shared/policy/index.js';
import type { SystemInfo } from '../../src/shared/policy/index.js';
import { compiled, weakenedCopy, weakenedFile } from '../../verify/weakened-module.js';
import { walk } from './tree.js';
import { sources } from '../architecture/sources.js';

const tmp = mkdtempSync(join(tmpdir(), 'qmcp-install-principals-'));
after(() => rmSync(tmp, { recursive: true, force: true }));
const NO_QUBESD = join(tmp, 'no-qubesd.sock');

const B = { principal: 'ctl-b', namePrefix: 'b-', tags: { umbrella: 'b-managed', exec: 'b-exec', net: 'b-net', full: 'b-full', sink: 'b-dump' }, mode: 'compat' };
const SINGLE = { principal: 'mcp-control', mode: 'least-privilege', rate: { perSecond: 20, burst: 200 } };
const LIST = { rate: { perSecond: 20, burst: 200 }, principals: [{ principal: 'mcp-control', mode: 'least-privilege' }, B] };

function file(name: string, json: unknown): string {
  const path = join(tmp, name);
  writeFileSync(path, JSON.stringify(json));
  return path;
}

const DOMAIN = { type: 'AppVM', template_for_dispvms: false, default_dispvm: null, power_state: 'Running' } as const;
const SYSTEM: SystemInfo = {
  domains: {
    dom0: { ...DOMAIN, tags: [], type: 'AdminVM', uuid: '00000000-0000-0000-0000-000000000000' },
    'mcp-control': { ...DOMAIN, tags: [], uuid: '11111111-1111-1111-1111-111111111111' },
    'ctl-b': { ...DOMAIN, tags: [], uuid: '22222222-2222-2222-2222-222222222222' },
  },
};

type Install = typeof installDom0;

/** Fails unless INSTALL moves one root between the two forms as fresh installs of each would leave it, and uninstall restores it. */
async function upgradesInPlace(install: Install): Promise<void> {
  const root = mkdtempSync(join(tmp, 'root-'));
  const single = file('single.json', SINGLE);
  const list = file('list.json', LIST);
  const at = (settingsFile: string): Promise<unknown> => install({ root, settingsFile, qubesdSocket: NO_QUBESD, durable: false });
  const before = walk(root);
  await at(list);
  const freshList = walk(root);
  await uninstallDom0({ root });
  await at(single);
  const freshSingle = walk(root);

  await at(list);
  assert.deepEqual(walk(root), freshList, 'upgraded in place: as a fresh install of the list');
  const installed = readFileSync(join(root, 'etc/qubes/policy.d', POLICY_FILE), 'utf8');
  const settings = JSON.parse(readFileSync(join(root, 'etc/qmcp/settings.json'), 'utf8')) as unknown;
  assert.equal(installed, renderPolicies(parsePrincipals(settings).principals), 'every principal rendered');
  const policy = loadPolicyFromRoot(root);
  for (const source of ['mcp-control', 'ctl-b']) assert.equal(policy.evaluate({ service: 'qmcp.List', argument: '', source, target: '@adminvm' }, SYSTEM).action, 'allow', source);

  await at(single);
  assert.deepEqual(walk(root), freshSingle, 'back in place: as a fresh install of the single file');
  assert.equal(loadPolicyFromRoot(root).evaluate({ service: 'qmcp.List', argument: '', source: 'ctl-b', target: '@adminvm' }, SYSTEM).action, 'deny');
  await uninstallDom0({ root });
  assert.deepEqual(walk(root), before, 'uninstall leaves the tree as before the first install');
}

test('install upgrades a single-principal install to the list form and back in place', async () => {
  await upgradesInPlace(installDom0);
});

test('an install that renders only the first principal is caught', async () => {
  const writer = weakenedFile('dom0/install/policy', 'const policy = renderPolicies(principals);', 'const policy = renderPolicies({ ...principals, list: principals.list.slice(0, 1) });');
  const first = weakenedFile('dom0/install/index', 'export async function installDom0', 'export async function installDom0', { [compiled('dom0/install/policy')]: writer });
  // the copy bundles the compiled dom0 and shared code as the real module does
  const weak = weakenedCopy(first, "resolve(dirname(fileURLToPath(import.meta.url)), '..', '..')", JSON.stringify(resolve(dirname(compiled('dom0/install/index')), '..', '..')));
  const { installDom0: weakInstall } = (await import(pathToFileURL(weak).href)) as { installDom0: Install };
  await assert.rejects(upgradesInPlace(weakInstall), assert.AssertionError);
});

test('one writer of the settings file: only the installer stamps its text, so mode and principal write what install writes', () => {
  // a second writer stamps JSON.stringify(..., model: modelHash()) itself, and can drift from install's bytes
  const stampers = sources(resolve(import.meta.dirname, '..', '..', '..', 'src'))
    .filter((f) => readFileSync(f, 'utf8').split('\n').some((l) => l.includes('JSON.stringify(') && l.includes('model: modelHash()')))
    .map((f) => f.split(/[\\/]src[\\/]/).pop());
  assert.deepEqual(stampers, ['dom0/install/policy.ts']);
});
