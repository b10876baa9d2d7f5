import { spawn } from 'node:child_process';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { PassThrough } from 'node:stream';
import { fileURLToPath } from 'node:url';
import { initAuditLog, openAudit, verifyAudit } from '../../src/dom0/audit/index.js';
import type { WriteDeps } from '../../src/dom0/create/deps.js';
import { readWriteSettings } from '../../src/dom0/create/settings.js';
import { POLICY_FILE, renderPolicy, stampSettings } from '../../src/dom0/install/policy.js';
import { Qubesd } from '../../src/dom0/qubesd.js';
import { loadDom0Config } from '../../src/dom0/service/config.js';
import { runService } from '../../src/dom0/service/run.js';
import type { GateSeams } from '../../src/dom0/service/gate-step.js';
import { serviceTable } from '../../src/dom0/services/index.js';
import { processReadDeps } from '../../src/dom0/services/read-services.js';
import type { Fleet } from '../../src/sim/fleet.js';
import { fleetState } from '../../src/sim/fleet.js';
import type { Qubesd as SimQubesd } from '../../src/sim/qubesd/index.js';
import { startQubesd } from '../../src/sim/qubesd/index.js';
import type { VmState } from '../../src/sim/qubesd/state.js';
import { OPEN_GATE } from '../../src/sim/open-gate.js';
import { serviceProcess } from '../../verify/malformed/host.js';
import { childOutput } from '../child-output.js';

export const GiB = 1024 ** 3;
export const PRINCIPAL = 'mcp-control';

/** The fleet every test starts from: tiers, an outside world, an egress qube, a disposable template. */
export function testFleet(): Fleet {
  return {
    properties: { default_netvm: 'sys-firewall', default_dispvm: 'ops-dvm', default_template: 'debian' },
    qubes: [
      { name: 'mcp-control', klass: 'AppVM', template: 'debian', label: 'red' },
      { name: 'debian', klass: 'TemplateVM', label: 'black' },
      { name: 'sys-firewall', klass: 'AppVM', template: 'debian', label: 'green', properties: { provides_network: true, netvm: null } },
      { name: 'vault', klass: 'AppVM', template: 'debian', label: 'black', properties: { netvm: null } },
      { name: 'ops-dvm', klass: 'AppVM', template: 'debian', label: 'red', properties: { template_for_dispvms: true } },
      { name: 'ai-outside', klass: 'AppVM', template: 'debian', label: 'red', tags: ['ai-full'] },
      { name: 'ai-tpl', klass: 'TemplateVM', label: 'black', tags: ['ai-managed', 'ai-full'] },
      { name: 'ai-tpl-ro', klass: 'TemplateVM', label: 'black', tags: ['ai-managed'] },
      {
        name: 'ai-egress',
        klass: 'AppVM',
        template: 'ai-tpl',
        label: 'orange',
        tags: ['ai-managed'],
        properties: { provides_network: true, netvm: 'sys-firewall' },
      },
      {
        name: 'ai-dvm',
        klass: 'AppVM',
        template: 'ai-tpl',
        label: 'red',
        tags: ['ai-managed', 'ai-full', 'op-grant'],
        properties: { template_for_dispvms: true, netvm: 'ai-egress', default_dispvm: 'ai-dvm' },
      },
      {
        name: 'ai-box',
        klass: 'AppVM',
        template: 'ai-tpl',
        label: 'blue',
        tags: ['ai-managed', 'ai-full', 'op-grant', 'op-keep'],
        properties: { netvm: 'ai-egress', default_dispvm: 'ai-dvm', memory: 800, vcpus: 3 },
        features: { gui: '1', internal: '1', 'service.evil': '1' },
      },
      { name: 'ai-locked', klass: 'AppVM', template: 'ai-tpl', label: 'blue', tags: ['ai-managed', 'ai-full', 'ai-lock'], properties: { netvm: null } },
      { name: 'ai-read', klass: 'AppVM', template: 'ai-tpl', label: 'blue', tags: ['ai-managed'], properties: { netvm: null } },
      { name: 'ai-execbox', klass: 'AppVM', template: 'ai-tpl', label: 'blue', tags: ['ai-managed', 'ai-exec'], properties: { netvm: null } },
    ],
  };
}

export interface SettingsFile {
  mode?: string;
  poolCapBytes?: unknown;
  privateCapBytes?: unknown;
  egressQube?: unknown;
  birthCeiling?: unknown;
  restrictionTags?: unknown;
  propagatingTags?: unknown;
  tombstoneRetentionDays?: unknown;
  featureAllowlist?: unknown;
  gate?: unknown;
  approvalDeadlineSeconds?: unknown;
  approvalPendingCap?: unknown;
  qubeLimits?: unknown;
  lease?: unknown;
}

export const BASE_SETTINGS: SettingsFile = {
  mode: 'least-privilege',
  poolCapBytes: 1000 * GiB,
  privateCapBytes: 4 * GiB,
  egressQube: 'ai-egress',
  birthCeiling: 'exec',
  tombstoneRetentionDays: 7,
  restrictionTags: ['ai-lock'],
  propagatingTags: ['op-keep'],
  gate: OPEN_GATE,
};

export interface Host {
  readonly root: string;
  readonly sim: SimQubesd;
  readonly qubesd: Qubesd;
  vm(name: string): VmState | undefined;
  writeSettings(s: SettingsFile): void;
  done(): Promise<void>;
}

export async function startHost(settings: SettingsFile = BASE_SETTINGS, fleet: Fleet = testFleet()): Promise<Host> {
  const root = mkdtempSync(join(tmpdir(), 'qmcp-write-'));
  await initAuditLog(root);
  const sim = await startQubesd({ dir: join(root, 'host'), seed: () => fleetState(fleet) });
  // As an install writes them: settings stamped with the model hash, the policy rendered from them.
  const writeSettings = (s: SettingsFile): void => {
    mkdirSync(join(root, 'etc', 'qmcp'), { recursive: true });
    mkdirSync(join(root, 'etc', 'qubes', 'policy.d'), { recursive: true });
    const tags = { umbrella: 'ai-managed', sink: 'ai-dump', exec: 'ai-exec', net: 'ai-net', full: 'ai-full' };
    const stamped = stampSettings({ principal: PRINCIPAL, tags, ...s });
    writeFileSync(join(root, 'etc', 'qmcp', 'settings.json'), stamped.text);
    writeFileSync(join(root, 'etc', 'qubes', 'policy.d', POLICY_FILE), renderPolicy(stamped.settings));
  };
  writeSettings(settings);
  return {
    root,
    sim,
    qubesd: new Qubesd(sim.socketPath),
    vm: (name) => sim.app.vms.get(name),
    writeSettings,
    done: async () => {
      await sim.close();
      rmSync(root, { recursive: true, force: true });
    },
  };
}

export interface CallResult {
  status: number;
  stdout: string;
  stderr: string;
}

export const REFUSED: CallResult = { status: 126, stdout: '', stderr: 'Request refused\n' };

export interface CallOptions {
  fault?: (step: string) => void | Promise<void>;
  now?: Date;
  caller?: string;
  /** The Admin API client the services use (a proxy in front of the host, say); default the host's. */
  qubesd?: Qubesd;
  /** Receives the operator's journal lines of the call. */
  journal?: string[];
  /** Takes the budget lock in place of the lock file (a watched or a removed lock). */
  budgetLock?: WriteDeps['budgetLock'];
  /** The action gate's seams over the defaults (settings reloaded from the root, the real clock). */
  gate?: Partial<GateSeams>;
  /** Sees the call's stdout as it is made (a caller that goes away destroys it). */
  stdout?: (stdout: PassThrough) => void;
  /** The runner to call through (a weakened one); default the real one. */
  runService?: typeof runService;
  /** The service table to call through (one with a weakened service); default the real one. */
  serviceTable?: typeof serviceTable;
}

/** One service call in this process, through the real runner, as qrexec would make it. */
export async function call(h: Host, full: string, payload: unknown = '', opts: CallOptions = {}): Promise<CallResult> {
  const journal: string[] = opts.journal ?? [];
  const log = (m: string): void => {
    journal.push(m);
    if (process.env['QMCP_TEST_JOURNAL']) process.stderr.write(`journal: ${m}\n`);
  };
  const write: WriteDeps = {
    root: h.root,
    settings: () => readWriteSettings(h.root, log, opts.caller),
    log,
    now: () => opts.now ?? new Date(),
    ...(opts.fault ? { fault: opts.fault } : {}),
    ...(opts.budgetLock ? { budgetLock: opts.budgetLock } : {}),
  };
  const config = loadDom0Config(h.root, log, undefined, opts.caller);
  const stdin = new PassThrough();
  stdin.end(typeof payload === 'string' ? payload : JSON.stringify(payload));
  const stdout = new PassThrough();
  const stderr = new PassThrough();
  const out: Buffer[] = [];
  const err: Buffer[] = [];
  stdout.on('data', (c: Buffer) => out.push(c));
  stderr.on('data', (c: Buffer) => err.push(c));
  opts.stdout?.(stdout);
  const plus = full.indexOf('+');
  const status = await (opts.runService ?? runService)((opts.serviceTable ?? serviceTable)({ write, read: processReadDeps({ QMCP_ROOT: h.root }) }), {
    env: {
      QREXEC_SERVICE_FULL_NAME: full,
      QREXEC_REMOTE_DOMAIN: opts.caller ?? PRINCIPAL,
      QREXEC_SERVICE_ARGUMENT: plus < 0 ? '' : full.slice(plus + 1),
    },
    stdin,
    io: { stdout, stderr },
    qubesd: opts.qubesd ?? h.qubesd,
    audit: openAudit({ root: h.root }),
    config: config ? config.service : null,
    log,
    gate: { reload: () => loadDom0Config(h.root, log, undefined, opts.caller)?.service ?? null, ...opts.gate },
  });
  return { status, stdout: Buffer.concat(out).toString(), stderr: Buffer.concat(err).toString() };
}

const SERVICE_MAIN = join(dirname(fileURLToPath(import.meta.url)), '..', '..', 'src', 'dom0', 'service-main.js');

/** One service call as its own process, the way qrexec starts a dom0 service; `env` overrides its environment. */
export function spawnCall(h: Host, full: string, payload: unknown, env: Record<string, string> = {}): Promise<CallResult> {
  const call = serviceProcess(h, full);
  const child = spawn(process.execPath, [SERVICE_MAIN, ...call.argv], { env: { ...call.env, ...env }, stdio: ['pipe', 'pipe', 'pipe'] });
  return childOutput(child, typeof payload === 'string' ? payload : JSON.stringify(payload));
}

export async function auditValid(h: Host): Promise<boolean> {
  return (await verifyAudit({ root: h.root })).valid;
}

/** The JSON a successful call printed. */
export function json(r: CallResult): Record<string, unknown> {
  return JSON.parse(r.stdout) as Record<string, unknown>;
}

export function names(h: Host): string[] {
  return [...h.sim.app.vms.keys()].sort();
}
