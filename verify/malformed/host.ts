/**
 * An in-process simulated host for the attack checks: a simulated qubesd, a
 * dom0 root with stamped settings and policy, and dom0 service calls made
 * through the real runner (`runService` over `serviceTable`), as qrexec
 * would start them. Cheap enough for thousands of calls. The seams a
 * weakened variant substitutes are the service table and the Qubesd the
 * services talk to; src/ is never edited.
 */
import { spawn } from 'node:child_process';
import type { ChildProcess } from 'node:child_process';
import { mkdirSync, mkdtempSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { setTimeout as delay } from 'node:timers/promises';
import { PassThrough } from 'node:stream';
import type { Readable, Writable } from 'node:stream';
import { fileURLToPath } from 'node:url';
import { initAuditLog, openAudit } from '../../src/dom0/audit/index.js';
import type { AuditLog } from '../../src/dom0/audit/index.js';
import type { WriteDeps } from '../../src/dom0/create/deps.js';
import { readWriteSettings } from '../../src/dom0/create/settings.js';
import type { Settings } from '../../src/shared/model/settings.js';
import { POLICY_FILE, renderPolicies, renderPolicy, stampPrincipals, stampSettings } from '../../src/dom0/install/policy.js';
import { Qubesd } from '../../src/dom0/qubesd.js';
import type { Clock } from '../../src/dom0/gate/wait.js';
import { auditOptions } from '../../src/dom0/service/compose.js';
import type { Dom0CallIo } from '../../src/dom0/service/compose.js';
import { runService } from '../../src/dom0/service/run.js';
import { startResident } from '../../src/dom0/resident/server.js';
import type { Resident } from '../../src/dom0/resident/server.js';
import type { ServiceMode } from '../../src/dom0/install/manifest.js';
import { ERROR_CODES, isErrorCode } from '../../src/shared/error-codes.js';
import type { ErrorCode } from '../../src/shared/error-codes.js';
import { REFUSAL_REPLY, decodeReply } from '../../src/shared/service-reply.js';
import { envServiceMode } from '../../src/sim/host.js';
import { runSocketService } from '../../src/sim/qrexec/dom0-services.js';
import type { ServiceSpec } from '../../src/dom0/service/run.js';
import { serviceTable } from '../../src/dom0/services/index.js';
import { readDeps } from '../../src/dom0/services/read-services.js';
import type { Dom0Config } from '../../src/dom0/service/config.js';
import type { Fleet } from '../../src/sim/fleet.js';
import { fleetState } from '../../src/sim/fleet.js';
import type { Qubesd as SimQubesd } from '../../src/sim/qubesd/index.js';
import { startQubesd } from '../../src/sim/qubesd/index.js';
import { qrexecCollect } from '../../src/sim/qrexec/client.js';
import { installDom0Client } from '../../src/sim/qrexec/dom0-seat.js';
import { startRouter } from '../../src/sim/qrexec/router.js';
import type { QubeServiceHost, Router } from '../../src/sim/qrexec/router.js';
import { hangBoundMs } from '../hang-bound.js';
import { OPEN_GATE } from '../../src/sim/open-gate.js';
import { servedAs } from '../noninterference/weakened.js';
import { Dom0Files } from './dom0-files.js';

export const GiB = 1024 ** 3;
export const PRINCIPAL = 'mcp-control';
export const TAGS = { umbrella: 'ai-managed', sink: 'ai-dump', exec: 'ai-exec', net: 'ai-net', full: 'ai-full' } as const;
/** The default hiding tag of a qube under construction. */
export const INCOMPLETE = 'qmcp-incomplete';

export type ServiceTable = ReadonlyMap<string, ServiceSpec<unknown>>;

/** What a weakened variant may substitute: the service table, the runner, and the Qubesd the services use. */
export interface ServiceSut {
  /** `write` is what the real write rows were built with, for a variant that rebuilds one. */
  readonly table?: (real: ServiceTable, write: WriteDeps) => ServiceTable;
  /** The runner in place of the real one (a weakened copy of its compiled module). */
  readonly runner?: typeof runService;
  readonly qubesd?: (real: Qubesd) => Qubesd;
  readonly audit?: (real: AuditLog) => AuditLog;
  /** Every caller served with the first principal's settings under its own name (servedAs in verify/noninterference/weakened.ts). */
  readonly firstsSettings?: boolean;
  /** Every caller's gate decided by the first principal's gate setting (servedAs's `gate`). */
  readonly firstsGate?: boolean;
}

export interface CallResult {
  readonly status: number;
  readonly stdout: string;
  readonly stderr: string;
}

export const REFUSED: CallResult = { status: 126, stdout: '', stderr: 'Request refused\n' };

export function isRefused(r: CallResult): boolean {
  return r.status === REFUSED.status && r.stdout === '' && r.stderr === REFUSED.stderr;
}

/**
 * An actionable answer about the call's own input (a name without the
 * prefix, a value out of range): decided from the bytes and the settings
 * before any lookup, so the same whatever the call names, and it may stand
 * in for the refusal of a call that names an absent or outside qube.
 * Nothing else may.
 */
export function inputError(r: CallResult): boolean {
  if (r.status !== 1 || r.stderr !== '') return false;
  try {
    const e = (JSON.parse(r.stdout) as { error?: { code?: unknown } }).error;
    return isErrorCode(e?.code) && (ERROR_CODES[e.code] as ErrorCode).input === true;
  } catch {
    return false;
  }
}

export function show(r: CallResult): string {
  return JSON.stringify(r);
}

export interface CallOptions {
  readonly fault?: (step: string) => void | Promise<void>;
  readonly caller?: string;
  /** Replaces the host's Qubesd for this call (a proxy that fails or holds). */
  readonly qubesd?: Qubesd;
  readonly audit?: AuditLog;
  /** Takes the budget lock in place of the lock file (a watched lock). */
  readonly budgetLock?: WriteDeps['budgetLock'];
}

/**
 * The fleet the checks start from: every tier, an outside world (including
 * a qube inside the reserved prefix), an egress qube, disposable templates
 * inside and outside, a sink, a template lineage.
 */
export function attackFleet(extra: Fleet['qubes'] = []): Fleet {
  const inside = (name: string, tags: string[], properties: Fleet['qubes'][number]['properties'] = { netvm: null }): Fleet['qubes'][number] => ({
    name,
    klass: 'AppVM',
    template: 'ai-tpl',
    label: 'blue',
    tags: [TAGS.umbrella, ...tags],
    properties,
  });
  return {
    properties: { default_netvm: 'sys-firewall', default_dispvm: 'ops-dvm', default_template: 'debian' },
    qubes: [
      { name: PRINCIPAL, klass: 'AppVM', template: 'debian', label: 'red' },
      { name: 'debian', klass: 'TemplateVM', label: 'black' },
      { name: 'sys-firewall', klass: 'AppVM', template: 'debian', label: 'green', properties: { provides_network: true, netvm: null } },
      { name: 'vault', klass: 'AppVM', template: 'debian', label: 'black', properties: { netvm: null } },
      { name: 'ops-dvm', klass: 'AppVM', template: 'debian', label: 'red', properties: { template_for_dispvms: true } },
      { name: 'ai-outside', klass: 'AppVM', template: 'debian', label: 'red', tags: [TAGS.full] },
      { name: 'drop', klass: 'AppVM', template: 'debian', label: 'red', tags: [TAGS.sink], properties: { netvm: null } },
      { name: 'ai-tpl', klass: 'TemplateVM', label: 'black', tags: [TAGS.umbrella, TAGS.full] },
      {
        name: 'ai-egress',
        klass: 'AppVM',
        template: 'ai-tpl',
        label: 'orange',
        tags: [TAGS.umbrella],
        properties: { provides_network: true, netvm: 'sys-firewall' },
      },
      inside('ai-dvm', [TAGS.full, 'op-keep'], { template_for_dispvms: true, netvm: 'ai-egress', default_dispvm: 'ai-dvm' }),
      inside('ai-box', [TAGS.full, 'op-keep', 'ai-lock'], { netvm: 'ai-egress', default_dispvm: 'ai-dvm', memory: 800 }),
      inside('ai-peer', [TAGS.full]),
      inside('ai-read', []),
      inside('ai-execbox', [TAGS.exec]),
      ...extra,
    ],
  };
}

export interface SettingsFile {
  readonly [key: string]: unknown;
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

export interface HostOptions {
  readonly fleet?: Fleet;
  readonly settings?: SettingsFile;
  readonly sut?: ServiceSut;
  /** How calls reach the runner; default what QMCP_DOM0_SERVICE_MODE says, else per-call. */
  readonly serviceMode?: ServiceMode;
}

/**
 * A resident front end's raw reply, read strictly: the one refusal reply
 * (nothing before it) is the refusal, another trailer its status and
 * stdout; anything else stays raw (exit 0, the bytes as they came), so it
 * fails every comparison.
 */
export function residentReply(raw: Buffer): CallResult {
  if (raw.equals(REFUSAL_REPLY)) return REFUSED;
  const d = decodeReply(raw);
  if (d === null || d.status === REFUSED.status) return { status: 0, stdout: raw.toString('latin1'), stderr: '' };
  return { status: d.status, stdout: d.stdout.toString('latin1'), stderr: '' };
}

/**
 * The gate's clock in process: a waiting call looks for its answer every
 * few milliseconds rather than every 200, so a check with the gate on is
 * not slowed by the poll; the deadline stays in real time.
 */
const QUICK_POLL: Clock = { now: () => Date.now(), sleep: (ms) => delay(Math.min(ms, 5)) };

export class InProcessHost {
  /** Calls whose runner rejected (the service process turns that into the refusal). */
  escapes = 0;
  private router: Router | null = null;
  /** The resident front end calls go through in resident mode, listening on `residentSocket`. */
  private resident: Resident | null = null;
  private residentSocket = '';
  private readonly files: Dom0Files;

  /** How calls reach the runner: directly, or through the resident front end. */
  get serviceMode(): ServiceMode {
    return this.resident ? 'resident' : 'per-call';
  }

  private constructor(
    readonly root: string,
    readonly sim: SimQubesd,
    readonly qubesd: Qubesd,
    private readonly sut: ServiceSut,
    /** The temporary directory this host made and removes; null when attached to another's. */
    private readonly owned: string | null,
  ) {
    this.files = new Dom0Files(root);
  }

  /** Service calls on a host someone else runs (a full simulated host's dom0 root and qubesd). */
  static attach(root: string, sim: SimQubesd, sut: ServiceSut = {}): InProcessHost {
    return new InProcessHost(root, sim, new Qubesd(sim.socketPath), sut, null);
  }

  static async start(opts: HostOptions = {}): Promise<InProcessHost> {
    const root = mkdtempSync(join(tmpdir(), 'qmcp-verify-'));
    try {
      const fleet = opts.fleet ?? attackFleet();
      // a machine thrown away after the check: its state need not wait for the disk
      const sim = await startQubesd({ dir: join(root, 'host'), seed: () => fleetState(fleet), durable: false });
      const host = new InProcessHost(join(root, 'dom0'), sim, new Qubesd(sim.socketPath), opts.sut ?? {}, root);
      mkdirSync(host.root, { recursive: true });
      await initAuditLog(host.root);
      host.writeSettings(opts.settings ?? BASE_SETTINGS);
      if ((opts.serviceMode ?? envServiceMode()) === 'resident') await host.serveResident(join(root, 'resident.sock'));
      return host;
    } catch (err) {
      rmSync(root, { recursive: true, force: true });
      throw err;
    }
  }

  /** As an install writes them: settings stamped with the model hash, the policy rendered from them. */
  writeSettings(s: SettingsFile): void {
    const stamped = stampSettings({ principal: PRINCIPAL, tags: TAGS, ...s });
    this.install(stamped.text, renderPolicy(stamped.settings));
  }

  /** Several principals, in this order, as an install writes a list-form file: each call is then served with its caller's. */
  writePrincipals(list: readonly SettingsFile[]): void {
    const stamped = stampPrincipals({ principals: list });
    this.install(stamped.text, renderPolicies(stamped.principals));
  }

  private install(settings: string, policy: string): void {
    mkdirSync(join(this.root, 'etc', 'qmcp'), { recursive: true });
    mkdirSync(join(this.root, 'etc', 'qubes', 'policy.d'), { recursive: true });
    writeFileSync(join(this.root, 'etc', 'qmcp', 'settings.json'), settings);
    writeFileSync(join(this.root, 'etc', 'qubes', 'policy.d', POLICY_FILE), policy);
  }

  /** The service table a call dispatches on (read rows scoped by CONFIG), after the variant's substitution. */
  table(write: WriteDeps, config: Dom0Config | null): ServiceTable {
    const real = serviceTable({ write, read: readDeps(config) });
    return this.sut.table ? this.sut.table(real, write) : real;
  }

  /** What the write rows need; their settings are CALLER's principal's, as the service process reads them. */
  writeDeps(fault?: (step: string) => void | Promise<void>, log: (m: string) => void = () => undefined, budgetLock?: WriteDeps['budgetLock'], caller?: string): WriteDeps {
    return {
      root: this.root,
      settings: () => readWriteSettings(this.root, log, caller),
      log,
      now: () => new Date(),
      lockWaitMs: hangBoundMs(60_000),
      ...(fault ? { fault } : {}),
      ...(budgetLock ? { budgetLock } : {}),
    };
  }

  /** The runner on one call's environment and streams, with the caller's principal's settings; rejects as the runner does. */
  private run(env: NodeJS.ProcessEnv, stdin: Readable, io: { stdout: Writable; stderr: Writable }, opts: CallOptions): Promise<number> {
    const log = (): void => undefined;
    const { served, config, reload } = servedAs(this.root, log, env['QREXEC_REMOTE_DOMAIN'], this.sut.firstsSettings === true ? 'settings' : this.sut.firstsGate === true ? 'gate' : null);
    const real = opts.qubesd ?? this.qubesd;
    return (this.sut.runner ?? runService)(this.table(this.writeDeps(opts.fault, log, opts.budgetLock, served), config), {
      env,
      stdin,
      io,
      qubesd: this.sut.qubesd ? this.sut.qubesd(real) : real,
      audit: this.audit(opts.audit, config?.settings),
      config: config ? config.service : null,
      log,
      gate: { reload, clock: QUICK_POLL },
    });
  }

  /**
   * Serves calls through the resident front end (src/dom0/resident/server.ts)
   * in this process: the descriptor parsed into the call's environment, the
   * refusal and status written as its trailer. A call's options travel by
   * its descriptor's source, unique per call.
   */
  private async serveResident(path: string): Promise<void> {
    this.resident = startResident({
      serve: async (c: Dom0CallIo) => {
        const pending = this.pending.get(c.env['QREXEC_REMOTE_DOMAIN'] ?? '');
        if (!pending) throw new Error('a resident call without its options');
        try {
          return await this.run({ ...c.env, QREXEC_REMOTE_DOMAIN: pending.caller }, c.stdin, c.io, pending.opts);
        } catch (err) {
          this.escapes++;
          throw err;
        }
      },
      log: () => undefined,
    });
    await this.resident.listen({ path });
    this.residentSocket = path;
  }

  private readonly pending = new Map<string, { caller: string; opts: CallOptions }>();
  private callIds = 0;

  /** One dom0 service call (`qmcp.X` or `qmcp.X+ARG`), through the real runner (and the resident front end in resident mode). */
  async call(full: string, payload: string | Buffer = '', opts: CallOptions = {}): Promise<CallResult> {
    const plus = full.indexOf('+');
    const caller = opts.caller ?? PRINCIPAL;
    // no descriptor carries a NUL or a character beyond a byte (nor does qrexec): such a call goes to the runner as it is
    if (this.resident && !/[\0\u0100-\uffff]/.test(full)) {
      // the descriptor carries a per-call token as its source; the runner is given the real caller
      const token = `call-${++this.callIds}`;
      this.pending.set(token, { caller, opts });
      const stdin = new PassThrough();
      stdin.end(payload);
      const stdout = new PassThrough();
      const out: Buffer[] = [];
      stdout.on('data', (c: Buffer) => out.push(c));
      try {
        const call = { service: plus < 0 ? full : full.slice(0, plus), argument: plus < 0 ? '' : full.slice(plus + 1), source: token, requested: { type: 'keyword', value: 'adminvm' } } as const;
        await runSocketService(this.residentSocket, call, { stdin, stdout, stderr: new PassThrough() });
      } finally {
        this.pending.delete(token);
      }
      return residentReply(Buffer.concat(out));
    }
    const stdin = new PassThrough();
    stdin.end(payload);
    const stdout = new PassThrough();
    const stderr = new PassThrough();
    const out: Buffer[] = [];
    const err: Buffer[] = [];
    stdout.on('data', (c: Buffer) => out.push(c));
    stderr.on('data', (c: Buffer) => err.push(c));
    let status: number;
    try {
      status = await this.run(
        { QREXEC_SERVICE_FULL_NAME: full, QREXEC_REMOTE_DOMAIN: caller, QREXEC_SERVICE_ARGUMENT: plus < 0 ? '' : full.slice(plus + 1) },
        stdin,
        { stdout, stderr },
        opts,
      );
    } catch {
      // What the service process does with a rejection: the uniform refusal, nothing else.
      this.escapes++;
      stderr.write(REFUSED.stderr);
      status = REFUSED.status;
    }
    return { status, stdout: Buffer.concat(out).toString('latin1'), stderr: Buffer.concat(err).toString('latin1') };
  }

  /** The audit log a call appends to, rotated as the settings say (as the service process's), after the variant's substitution. */
  audit(given?: AuditLog, settings?: Settings): AuditLog {
    const real = given ?? openAudit(settings ? auditOptions(this.root, settings) : { root: this.root });
    return this.sut.audit ? this.sut.audit(real) : real;
  }

  /** The whole simulated machine, canonically (power states included). */
  state(): string {
    return stableJson(this.sim.app.snapshot());
  }

  /**
   * The whole simulated machine as JSON.stringify writes it: a fifth of
   * state()'s cost. Two of them are one machine when sameState says so
   * (the keys of an object may have been written again in another order).
   */
  quickState(): string {
    return JSON.stringify(this.sim.app.snapshot());
  }

  /** Every file under the dom0 root but the ones that change by design, with its hash, walked again only when a watch saw one change (dom0-files.ts). */
  dom0FilesNow(): Promise<ReadonlyMap<string, string>> {
    return this.files.now();
  }

  /**
   * Starts qrexec on this host: a router over its qubesd and its dom0's
   * policy, read again at every call. `qubes` runs what the policy (or dom0's
   * qrexec-client) lets into a qube; without it qrexec answers such a call
   * 127, as for a missing service.
   */
  async startQrexec(qubes?: QubeServiceHost): Promise<void> {
    if (this.owned === null) throw new Error('qrexec runs only on a host this process made');
    this.router = await startRouter({
      dir: join(this.owned, 'router'),
      qubesdSocket: this.sim.socketPath,
      internalSocket: this.sim.internalSocketPath,
      policyRoot: this.root,
      ...(qubes ? { qubeServices: qubes } : {}),
    });
    // dom0's qrexec-client, through which an approved plan calls into qubes
    installDom0Client(this.root, this.router.dom0Socket);
  }

  /** The control socket of the router's dialogs (`qmcp sim ask`), once qrexec runs. */
  get askSocket(): string | undefined {
    return this.router?.askSocket;
  }

  /** One qrexec call from `seat` (the principal by default), as qrexec-client-vm there makes it. */
  async qrexec(target: string, service: string, payload: string | Buffer = '', seat = PRINCIPAL): Promise<CallResult> {
    if (!this.router) throw new Error('startQrexec first');
    const r = await qrexecCollect(this.router.socketFor(seat), target, service, payload);
    return { status: r.status, stdout: r.stdout.toString('latin1'), stderr: r.stderr.toString('latin1') };
  }

  /** A policy file read before qmcp's own (a weakened variant's line). */
  addPolicy(name: string, text: string): void {
    writeFileSync(join(this.root, 'etc', 'qubes', 'policy.d', name), text);
  }

  async done(): Promise<void> {
    this.files.close();
    await this.router?.close();
    await this.resident?.stop();
    if (this.owned === null) return;
    await this.sim.close();
    // off the event loop: another host's calls go on meanwhile
    await rm(this.owned, { recursive: true, force: true });
  }
}

/**
 * JSON with object keys sorted, so two equal states print alike: what
 * `JSON.stringify` prints with every object's keys sorted, written in one
 * walk (a replacer that rebuilds each object sorted took a tenth of the
 * malformed check's time).
 */
export function stableJson(v: unknown): string {
  return write(v, '') ?? 'undefined';
}

/** One value as JSON.stringify writes it under KEY, or undefined where it writes nothing. */
function write(value: unknown, key: string): string | undefined {
  let v = value;
  if (v !== null && typeof v === 'object' && typeof (v as { toJSON?: unknown }).toJSON === 'function') v = (v as { toJSON(k: string): unknown }).toJSON(key);
  if (v === null) return 'null';
  switch (typeof v) {
    case 'string':
    case 'number':
    case 'boolean':
    case 'bigint':
      return JSON.stringify(v);
    case 'object': {
      if (Array.isArray(v)) {
        const items: string[] = [];
        for (let i = 0; i < v.length; i++) items.push(write(v[i], String(i)) ?? 'null');
        return `[${items.join(',')}]`;
      }
      if (v instanceof Number || v instanceof String || v instanceof Boolean) return JSON.stringify(v);
      const parts: string[] = [];
      for (const k of Object.keys(v).sort((a, b) => (a < b ? -1 : a > b ? 1 : 0))) {
        const w = write((v as Record<string, unknown>)[k], k);
        if (w !== undefined) parts.push(`${JSON.stringify(k)}:${w}`);
      }
      return `{${parts.join(',')}}`;
    }
    default:
      return undefined;
  }
}

/** Whether two quickState()s are one machine: equal, or equal once their keys are sorted. */
export function sameState(a: string, b: string): boolean {
  return a === b || stableJson(JSON.parse(a)) === stableJson(JSON.parse(b));
}

/** The first difference between two file maps, or null. */
export function filesDiffer(a: ReadonlyMap<string, string>, b: ReadonlyMap<string, string>): string | null {
  for (const [k, v] of a) if (b.get(k) !== v) return b.has(k) ? `${k} changed` : `${k} removed`;
  for (const k of b.keys()) if (!a.has(k)) return `${k} added`;
  return null;
}

/** A small seeded PRNG (mulberry32) for checks where shrinking does not matter. */
export function prng(seed: number): { next(): number; int(n: number): number; pick<T>(xs: readonly T[]): T; shuffle<T>(xs: T[]): T[] } {
  let a = seed >>> 0;
  const next = (): number => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
  const int = (n: number): number => Math.floor(next() * n);
  return {
    next,
    int,
    pick: <T>(xs: readonly T[]): T => xs[int(xs.length)] as T,
    shuffle: <T>(xs: T[]): T[] => {
      for (let i = xs.length - 1; i > 0; i--) {
        const j = int(i + 1);
        [xs[i], xs[j]] = [xs[j] as T, xs[i] as T];
      }
      return xs;
    },
  };
}

/** The compiled dom0 service entry, as the installed wrappers exec it. */
export const SERVICE_MAIN = join(dirname(fileURLToPath(import.meta.url)), '..', '..', 'src', 'dom0', 'service-main.js');
export const RESIDENT_MAIN = join(dirname(fileURLToPath(import.meta.url)), '..', '..', 'src', 'dom0', 'resident-main.js');

export interface ResidentProcess {
  readonly pid: number;
  /** One call over the service's socket (from the principal unless `source` says), read strictly (residentReply). */
  call(full: string, payload: string | Buffer, source?: string): Promise<CallResult>;
  stop(): Promise<void>;
}

/**
 * The resident front end as its own process on the host's dom0 root, as
 * systemd starts it, once the socket of `service` is there; `main` replaces
 * the entry in tests of a weakened resident.
 */
export async function startResidentProcess(h: InProcessHost, service: string, main = RESIDENT_MAIN): Promise<ResidentProcess> {
  const child = spawn(process.execPath, [main], {
    env: { PATH: process.env['PATH'] ?? '', QMCP_ROOT: h.root, QMCP_QUBESD_SOCKET: h.sim.socketPath },
    stdio: ['ignore', 'ignore', 'inherit'],
  });
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
  const socket = join(h.root, 'etc', 'qubes-rpc', service);
  const deadline = Date.now() + hangBoundMs(60_000);
  for (;;) {
    try {
      if (statSync(socket).isSocket()) break;
    } catch {
      // not yet
    }
    if (child.exitCode !== null || Date.now() > deadline) throw new Error('the resident dom0 service did not bind its sockets');
    await delay(20);
  }
  return {
    pid: child.pid as number,
    async call(full, payload, source = PRINCIPAL) {
      const plus = full.indexOf('+');
      const stdin = new PassThrough();
      stdin.end(payload);
      const stdout = new PassThrough();
      const out: Buffer[] = [];
      stdout.on('data', (c: Buffer) => out.push(c));
      const call = { service: plus < 0 ? full : full.slice(0, plus), argument: plus < 0 ? '' : full.slice(plus + 1), source, requested: { type: 'keyword', value: 'adminvm' } } as const;
      await runSocketService(join(h.root, 'etc', 'qubes-rpc', call.service), call, { stdin, stdout, stderr: new PassThrough() });
      return residentReply(Buffer.concat(out));
    },
    async stop() {
      if (child.exitCode === null) child.kill('SIGTERM');
      await exited;
    },
  };
}

/** The argument vector and environment qrexec gives a dom0 service process for the principal's call FULL to @adminvm. */
export function serviceProcess(h: { readonly root: string; readonly sim: { readonly socketPath: string } }, full: string): { argv: string[]; env: Record<string, string> } {
  const plus = full.indexOf('+');
  const argument = plus < 0 ? '' : full.slice(plus + 1);
  return {
    argv: argument ? [argument] : [],
    env: {
      PATH: process.env['PATH'] ?? '',
      QMCP_ROOT: h.root,
      QMCP_QUBESD_SOCKET: h.sim.socketPath,
      QREXEC_SERVICE_FULL_NAME: full,
      QREXEC_REMOTE_DOMAIN: PRINCIPAL,
      QREXEC_SERVICE_ARGUMENT: argument,
      QREXEC_REQUESTED_TARGET_TYPE: 'keyword',
      QREXEC_REQUESTED_TARGET_KEYWORD: 'adminvm',
    },
  };
}

/**
 * One service call as its own process, started the way qrexec starts a dom0
 * service for the principal's call to @adminvm; `main` replaces the entry in
 * tests of a weakened service.
 */
export function spawnService(h: InProcessHost, full: string, payload: string | Buffer, main = SERVICE_MAIN): { child: ChildProcess; done: Promise<CallResult> } {
  const { argv, env } = serviceProcess(h, full);
  const child = spawn(process.execPath, [main, ...argv], { env, stdio: ['pipe', 'pipe', 'pipe'] });
  const out: Buffer[] = [];
  const err: Buffer[] = [];
  child.stdout?.on('data', (b: Buffer) => out.push(b));
  child.stderr?.on('data', (b: Buffer) => err.push(b));
  // a service that refuses before reading its input closes stdin under us
  child.stdin?.on('error', () => undefined);
  child.stdin?.end(payload);
  const done = new Promise<CallResult>((resolve, reject) => {
    child.on('error', reject);
    child.on('close', (code) => resolve({ status: code ?? -1, stdout: Buffer.concat(out).toString('latin1'), stderr: Buffer.concat(err).toString('latin1') }));
  });
  return { child, done };
}
