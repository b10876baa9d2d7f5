/** A simulated host with the dom0 side installed, called from the principal's seat through the router. */
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { PassThrough } from 'node:stream';
import { installDom0 } from '../../src/dom0/install/index.js';
import type { Fleet } from '../../src/sim/fleet.js';
import { fleetState } from '../../src/sim/fleet.js';
import type { Qubesd } from '../../src/sim/qubesd/index.js';
import { startQubesd } from '../../src/sim/qubesd/index.js';
import { asExecutableReply, isDom0Service, qrexecCall, startRouter } from '../../src/sim/qrexec/index.js';
import type { Router } from '../../src/sim/qrexec/index.js';
import type { ServiceMode } from '../../src/dom0/install/manifest.js';
import { superviseResident } from '../../src/sim/resident.js';
import { OPEN_GATE } from '../../src/sim/open-gate.js';
import { hasFatal, modelHash, parsePrincipals, POLICY_FILE, renderPolicies, settingsPath } from '../../src/shared/model/index.js';

export const PRINCIPAL = 'mcp-control';
export const GiB = 1024 ** 3;

/** Umbrella qubes at each tier, outside qubes they point at, and dom0-only state. */
export const worldFleet: Fleet = {
  properties: { default_netvm: 'sys-firewall', default_template: 'tpl', default_guivm: 'dom0', default_audiovm: 'dom0' },
  qubes: [
    { name: 'tpl', klass: 'TemplateVM', label: 'black' },
    { name: 'sys-net', klass: 'AppVM', template: 'tpl', label: 'red', properties: { provides_network: true, netvm: null } },
    { name: 'sys-firewall', klass: 'AppVM', template: 'tpl', label: 'green', properties: { provides_network: true, netvm: 'sys-net' } },
    { name: PRINCIPAL, klass: 'AppVM', template: 'tpl', label: 'purple', properties: { netvm: null } },
    { name: 'vault', klass: 'AppVM', template: 'tpl', label: 'black', properties: { netvm: null } },
    { name: 'ai-tpl', klass: 'TemplateVM', label: 'gray', tags: ['ai-managed', 'ai-full'] },
    { name: 'ai-gw', klass: 'AppVM', template: 'ai-tpl', label: 'orange', tags: ['ai-managed', 'ai-full'], properties: { provides_network: true, netvm: 'sys-firewall' } },
    { name: 'ai-viewer', klass: 'AppVM', template: 'tpl', label: 'blue', tags: ['ai-managed'], properties: { netvm: 'ai-gw', default_dispvm: 'ai-dvm' } },
    { name: 'ai-runner', klass: 'AppVM', template: 'ai-tpl', label: 'yellow', tags: ['ai-managed', 'ai-exec'], properties: { default_dispvm: 'vault', management_dispvm: 'vault' } },
    { name: 'ai-netq', klass: 'AppVM', template: 'ai-tpl', label: 'green', tags: ['ai-managed', 'ai-net'], properties: { netvm: 'ai-gw' } },
    { name: 'ai-dvm', klass: 'AppVM', template: 'ai-tpl', label: 'red', tags: ['ai-managed', 'ai-full'], properties: { template_for_dispvms: true, guivm: 'ai-gw', audiovm: 'ai-gw' } },
    { name: 'ai-half', klass: 'AppVM', template: 'ai-tpl', label: 'red', tags: ['ai-managed', 'ai-full', 'qmcp-incomplete'] },
    { name: 'ai-gone', klass: 'AppVM', template: 'ai-tpl', label: 'red', tags: ['qmcp-owner-mcp-control', 'qmcp-tombstone', 'qmcp-tombstone-at-20260101T000000Z'] },
    { name: 'other-gone', klass: 'AppVM', template: 'tpl', label: 'red', tags: ['qmcp-owner-someone', 'qmcp-tombstone', 'qmcp-tombstone-at-20260101T000000Z'] },
    { name: 'ai-hybrid', klass: 'AppVM', template: 'ai-tpl', label: 'red', tags: ['ai-managed', 'ai-dump', 'ai-full'] },
    { name: 'drop', klass: 'AppVM', template: 'tpl', label: 'red', tags: ['ai-dump'] },
  ],
  devices: {
    block: {
      'ai-gw': [{ port: 'xvdi', devid: 'disk1', description: 'scratch disk', interfaces: 'b******' }],
      'sys-net': [{ port: 'sda', devid: 'stick', description: 'Operator USB stick', interfaces: 'b******' }],
    },
  },
};

export interface Reply {
  readonly status: number;
  readonly stdout: Buffer;
  readonly stderr: Buffer;
}

export interface World {
  readonly dir: string;
  readonly qubesd: Qubesd;
  /** One call from the principal qube to dom0, as qrexec-client-vm makes it. */
  call(service: string, payload?: string | Buffer, from?: string): Promise<Reply>;
  close(): Promise<void>;
}

export interface WorldOptions {
  readonly mode: 'compat' | 'least-privilege';
  readonly fleet?: Fleet;
  readonly poolCap?: number;
  /** How the dom0 services are served (default per call); a resident service's replies are read as the executable's. */
  readonly serviceMode?: ServiceMode;
  /** Further principals' entries: the settings are then rewritten in the list form after install, with their policy. */
  readonly others?: readonly Record<string, unknown>[];
}

/** Rewrites the installed settings of ROOT as a list of BASE and OTHERS, and the policy rendered from it. */
async function installPrincipals(root: string, base: Record<string, unknown>, others: readonly Record<string, unknown>[]): Promise<void> {
  const file = { model: modelHash(), principals: [base, ...others] };
  const { principals, problems } = parsePrincipals(file);
  if (hasFatal(problems)) throw new Error(`principals: ${JSON.stringify(problems)}`);
  await writeFile(settingsPath(root), JSON.stringify(file));
  await writeFile(join(root, 'etc', 'qubes', 'policy.d', POLICY_FILE), renderPolicies(principals));
}

export async function startWorld(opts: WorldOptions): Promise<World> {
  const dir = await mkdtemp(join(tmpdir(), 'qmcp-services-'));
  const fleet = opts.fleet ?? worldFleet;
  const qubesd = await startQubesd({ dir, seed: () => fleetState(fleet) });
  const dom0 = join(dir, 'dom0');
  const settingsFile = join(dir, 'settings.json');
  const base = {
    principal: PRINCIPAL,
    mode: opts.mode,
    tags: { umbrella: 'ai-managed', sink: 'ai-dump', exec: 'ai-exec', net: 'ai-net', full: 'ai-full' },
    poolCapBytes: opts.poolCap ?? 40 * GiB,
    gate: OPEN_GATE,
  };
  await writeFile(settingsFile, JSON.stringify(base));
  await installDom0({ root: dom0, settingsFile, qubesdSocket: qubesd.socketPath, ...(opts.serviceMode ? { serviceMode: opts.serviceMode } : {}) });
  if (opts.others) await installPrincipals(dom0, base, opts.others);
  let router: Router;
  const resident = await superviseResident(dom0, () => undefined).catch(async (e: unknown) => {
    await qubesd.close();
    throw e;
  });
  try {
    router = await startRouter({ dir, qubesdSocket: qubesd.socketPath, internalSocket: qubesd.internalSocketPath, policyRoot: dom0 });
  } catch (e) {
    await resident?.close();
    await qubesd.close();
    throw e;
  }
  return {
    dir,
    qubesd,
    async call(service, payload = '', from = PRINCIPAL) {
      const stdin = new PassThrough();
      stdin.end(payload);
      const out: Buffer[] = [];
      const err: Buffer[] = [];
      const stdout = new PassThrough();
      const stderr = new PassThrough();
      stdout.on('data', (c: Buffer) => out.push(c));
      stderr.on('data', (c: Buffer) => err.push(c));
      const status = await qrexecCall(router.socketFor(from), 'dom0', service, { stdin, stdout, stderr });
      const reply = { status, stdout: Buffer.concat(out), stderr: Buffer.concat(err) };
      return resident && isDom0Service('dom0', service) ? asExecutableReply(reply) : reply;
    },
    async close() {
      await router.close();
      await resident?.close();
      await qubesd.close();
      await rm(dir, { recursive: true, force: true });
    },
  };
}

export function json(r: Reply): unknown {
  return JSON.parse(r.stdout.toString('utf8'));
}
