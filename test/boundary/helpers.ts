/** A simulated host with the real install, and calls from any qube's seat through the qrexec router. */
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { openAudit } from '../../src/dom0/audit/index.js';
import { setMode } from '../../src/dom0/operator/index.js';
import { Qubesd } from '../../src/dom0/qubesd.js';
import type { Mode, Settings, Tier } from '../../src/shared/model/index.js';
import { TIERS } from '../../src/shared/model/index.js';
import type { Fleet } from '../../src/sim/fleet.js';
import { dom0Root, envServiceMode, startSimHost } from '../../src/sim/host.js';
import type { SimHost } from '../../src/sim/host.js';
import { asExecutableReply, isDom0Service, qrexecCollect } from '../../src/sim/qrexec/index.js';
import type { ServiceMode } from '../../src/dom0/install/manifest.js';
import { OPEN_GATE } from '../../src/sim/open-gate.js';

export const PRINCIPAL = 'mcp-control';

/** How the dom0 services are served in this run: QMCP_DOM0_SERVICE_MODE=resident serves them from the resident process. */
export const SERVICE_MODE: ServiceMode = envServiceMode() ?? 'per-call';

export interface Reply {
  readonly status: number;
  readonly stdout: string;
  readonly stderr: string;
}

/**
 * Marks a policy refusal of the principal's dom0 service call in resident
 * mode: there the service's refusal is other bytes (shared/service-reply.ts),
 * so the two must never be read as one.
 */
export const POLICY_NOT_SERVICE = '[refused by the policy, not by the resident service]';

/** What qrexec-client-vm shows for a denied call, and what every dom0 service refusal copies. */
export const REFUSED: Reply = { status: 126, stdout: '', stderr: 'Request refused\n' };

/** One umbrella qube per tier, an outside qube, a sink, a hybrid, a halted full qube, a disposable template. */
export const TIER_QUBES: Readonly<Record<Tier, string>> = { read: 'ai-t-read', exec: 'ai-t-exec', net: 'ai-t-net', full: 'ai-t-full' };
export const OUTSIDE = 'vault';
export const ABSENT = 'ai-nosuch';
export const SINK = 'drop';
export const HYBRID = 'ai-hybrid';
export const HALTED = 'ai-halted';
export const UPDATE_QUBE = 'sys-net';

const umbrella = (name: string, tags: string[]): Fleet['qubes'][number] => ({
  name,
  klass: 'AppVM',
  template: 'ai-tpl',
  label: 'red',
  tags: ['ai-managed', ...tags],
  properties: { netvm: null },
});

export const boundaryFleet: Fleet = {
  properties: { default_netvm: null, default_template: 'tpl' },
  qubes: [
    { name: 'tpl', klass: 'TemplateVM', label: 'black' },
    { name: UPDATE_QUBE, klass: 'AppVM', template: 'tpl', label: 'red', properties: { provides_network: true, netvm: null } },
    { name: PRINCIPAL, klass: 'AppVM', template: 'tpl', label: 'purple', properties: { netvm: null } },
    { name: OUTSIDE, klass: 'AppVM', template: 'tpl', label: 'black', properties: { netvm: null } },
    { name: SINK, klass: 'AppVM', template: 'tpl', label: 'red', tags: ['ai-dump'], properties: { netvm: null } },
    { name: 'ai-tpl', klass: 'TemplateVM', label: 'gray', tags: ['ai-managed', 'ai-full'] },
    umbrella(TIER_QUBES.read, []),
    umbrella(TIER_QUBES.exec, ['ai-exec']),
    umbrella(TIER_QUBES.net, ['ai-net']),
    umbrella(TIER_QUBES.full, ['ai-full']),
    umbrella(HYBRID, ['ai-dump', 'ai-full']),
    umbrella(HALTED, ['ai-full']),
    { ...umbrella('ai-dvm', ['ai-full']), properties: { netvm: null, template_for_dispvms: true } },
  ],
};

/** Qubes the tests need running (sandboxes behind them); HALTED stays halted. */
export const RUNNING = [...Object.values(TIER_QUBES), OUTSIDE, SINK, HYBRID, UPDATE_QUBE];

export interface Boundary {
  readonly host: SimHost;
  readonly admin: Qubesd;
  /** One qrexec call from `source`'s seat, as qrexec-client-vm makes it. */
  call(source: string, target: string, service: string, payload?: string | Buffer): Promise<Reply>;
  setMode(mode: Mode): Promise<void>;
  /** Starts (or unpauses) every qube in RUNNING that is not running. */
  ensureRunning(): Promise<void>;
  power(qube: string): string | undefined;
  close(): Promise<void>;
}

export interface BoundaryOptions {
  /** The gate setting; open unless a test is about the gate. */
  readonly gate?: Settings['gate'];
  /** How long an `ask` waits for an answer; nobody answers unless a test is about the gate. */
  readonly askTimeoutMs?: number;
  /** How the dom0 services are served; default SERVICE_MODE. */
  readonly serviceMode?: ServiceMode;
}

export async function startBoundary(mode: Mode, opts: BoundaryOptions = {}): Promise<Boundary> {
  const dir = await mkdtemp(join(tmpdir(), 'qmcp-boundary-'));
  const settingsFile = join(dir, 'settings.json');
  await writeFile(
    settingsFile,
    JSON.stringify({ principal: PRINCIPAL, mode, tags: { umbrella: 'ai-managed', sink: 'ai-dump', exec: 'ai-exec', net: 'ai-net', full: 'ai-full' }, gate: opts.gate === undefined ? OPEN_GATE : opts.gate }),
  );
  let host: SimHost;
  try {
    host = await startSimHost({
      dir: join(dir, 'host'),
      fleet: boundaryFleet,
      install: true,
      settingsFile,
      askTimeoutMs: opts.askTimeoutMs ?? 50,
      serviceMode: opts.serviceMode ?? SERVICE_MODE,
    });
  } catch (err) {
    await rm(dir, { recursive: true, force: true });
    throw err;
  }
  const admin = new Qubesd(host.qubesd.socketPath);
  const root = dom0Root(host.dir);
  const b: Boundary = {
    host,
    admin,
    async call(source, target, service, payload = '') {
      const raw = await qrexecCollect(host.router.socketFor(source), target, service, payload);
      const reply = (r: typeof raw): Reply => ({ status: r.status, stdout: r.stdout.toString('latin1'), stderr: r.stderr.toString('latin1') });
      if (!host.resident || !isDom0Service(target, service)) return reply(raw);
      // the principal's dom0 service calls are the service's to refuse: here the policy's refusal is another answer, and shown as one
      if (source === PRINCIPAL && raw.status !== 0) return { ...reply(raw), stderr: `${raw.stderr.toString('latin1')}${POLICY_NOT_SERVICE}` };
      // a resident dom0 service's reply, read as the executable's (an untrailed one stays as it came and fails)
      return reply(asExecutableReply(raw));
    },
    async setMode(m) {
      await setMode({ root, audit: openAudit({ root }) }, m);
    },
    async ensureRunning() {
      for (const q of RUNNING) {
        const state = host.qubesd.app.vms.get(q)?.power;
        if (state === 'Paused') await admin.call('admin.vm.Unpause', q);
        else if (state !== 'Running') await admin.call('admin.vm.Start', q);
      }
      await host.router.refresh();
    },
    power: (q) => host.qubesd.app.vms.get(q)?.power,
    async close() {
      await host.close();
      await rm(dir, { recursive: true, force: true });
    },
  };
  return b;
}

/** The tier an umbrella qube with these tags gives the agent, as SPEC §3 defines it. */
export function effectiveTier(qube: string, mode: Mode): Tier {
  for (const t of ['full', 'net', 'exec'] as const) if (TIER_QUBES[t] === qube) return t;
  return mode === 'compat' ? 'full' : 'read';
}

export function atLeast(have: Tier, need: Tier): boolean {
  return TIERS.indexOf(have) >= TIERS.indexOf(need);
}
