/**
 * A dom0 service call in each way of serving, side by side: per-call (qrexec
 * runs the installed executable, a fresh Node process) and resident (qrexec
 * connects to the resident process's socket and writes the descriptor). At
 * the service, as qrexec in dom0 reaches it, and through the simulated
 * router from the principal's seat (which adds the simulator's own client
 * process to both).
 */
import { spawn } from 'node:child_process';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { PassThrough } from 'node:stream';
import type { ServiceMode } from '../src/dom0/install/manifest.js';
import { REFUSAL_REPLY, decodeReply } from '../src/shared/service-reply.js';
import type { Fleet } from '../src/sim/fleet.js';
import { dom0Root, startSimHost } from '../src/sim/host.js';
import { runSocketService } from '../src/sim/qrexec/dom0-services.js';
import { routerCall } from './router-call.js';
import { BENCH_SETTINGS, PRINCIPAL } from './settings.js';
import { latencyRow, sample, type Row, type Summary } from './stats.js';

const SECTION = 'dom0 service: per-call vs resident';

/** The calls compared: a listing, a one-qube read, and a refusal (an absent qube). */
function cases(visible: string): { what: string; service: string; argument: string; status: number }[] {
  return [
    { what: 'qmcp.List', service: 'qmcp.List', argument: '', status: 0 },
    { what: 'qmcp.Info (a visible qube)', service: 'qmcp.Info', argument: visible, status: 0 },
    { what: 'qmcp.Info (absent: the refusal)', service: 'qmcp.Info', argument: 'ai-bench-absent', status: 126 },
  ];
}

/** The installed executable, run as qrexec runs it; resolves to its exit status. */
function execCall(root: string, service: string, argument: string): Promise<number> {
  return new Promise((resolve, reject) => {
    const child = spawn(join(root, 'etc', 'qubes-rpc', service), argument ? [argument] : [], {
      stdio: ['ignore', 'ignore', 'ignore'],
      env: {
        PATH: process.env['PATH'] ?? '',
        QREXEC_SERVICE_FULL_NAME: `${service}+${argument}`,
        QREXEC_REMOTE_DOMAIN: PRINCIPAL,
        QREXEC_REQUESTED_TARGET_TYPE: 'keyword',
        QREXEC_REQUESTED_TARGET_KEYWORD: 'adminvm',
        QREXEC_SERVICE_ARGUMENT: argument,
      },
    });
    child.on('error', reject);
    child.on('close', (code) => resolve(code ?? -1));
  });
}

/** The resident process's socket, connected to as qrexec does; resolves to the status its reply ends with. */
async function socketCall(root: string, service: string, argument: string): Promise<number> {
  const stdin = new PassThrough();
  stdin.end();
  const stdout = new PassThrough();
  const out: Buffer[] = [];
  stdout.on('data', (c: Buffer) => out.push(c));
  const call = { service, argument, source: PRINCIPAL, requested: { type: 'keyword', value: 'adminvm' } } as const;
  await runSocketService(join(root, 'etc', 'qubes-rpc', service), call, { stdin, stdout, stderr: new PassThrough() });
  const reply = Buffer.concat(out);
  return reply.equals(REFUSAL_REPLY) ? 126 : (decodeReply(reply)?.status ?? -1);
}

async function expect(p: Promise<number>, want: number, what: string): Promise<void> {
  const status = await p;
  if (status !== want) throw new Error(`${what}: status ${status}, expected ${want}`);
}

const times = (x: number): string => (Number.isFinite(x) ? `${x.toFixed(3)}×` : '-');

function ratioRow(what: string, resident: Summary, perCall: Summary): Row {
  return { section: SECTION, what: `${what}: resident / per-call`, n: String(resident.n), median: times(resident.medianMs / perCall.medianMs), p95: times(resident.p95Ms / perCall.p95Ms) };
}

export async function serviceModes(fleet: Fleet, visible: string, calls: number): Promise<Row[]> {
  const dirs: Record<ServiceMode, string> = { 'per-call': await mkdtemp(join(tmpdir(), 'qmcp-bench-percall-')), resident: await mkdtemp(join(tmpdir(), 'qmcp-bench-resident-')) };
  const hosts = [];
  try {
    for (const mode of ['per-call', 'resident'] as const) hosts.push(await startSimHost({ dir: dirs[mode], fleet, install: true, initialSettings: BENCH_SETTINGS, serviceMode: mode }));
    const rows: Row[] = [];
    for (const c of cases(visible)) {
      const full = c.argument ? `${c.service}+${c.argument}` : c.service;
      const perCall = await sample(calls, () => expect(execCall(dom0Root(dirs['per-call']), c.service, c.argument), c.status, `per-call ${full}`));
      const resident = await sample(calls, () => expect(socketCall(dom0Root(dirs.resident), c.service, c.argument), c.status, `resident ${full}`));
      const viaPerCall = await sample(calls, () => routerCall(dirs['per-call'], PRINCIPAL, '@adminvm', full));
      const viaResident = await sample(calls, () => routerCall(dirs.resident, PRINCIPAL, '@adminvm', full));
      rows.push(
        latencyRow(SECTION, `${c.what} at the service, per-call`, perCall),
        latencyRow(SECTION, `${c.what} at the service, resident`, resident),
        ratioRow(`${c.what} at the service`, resident, perCall),
        latencyRow(SECTION, `${c.what} via router, per-call`, viaPerCall),
        latencyRow(SECTION, `${c.what} via router, resident`, viaResident),
        ratioRow(`${c.what} via router`, viaResident, viaPerCall),
      );
    }
    return rows;
  } finally {
    for (const h of hosts) await h.close();
    for (const d of Object.values(dirs)) await rm(d, { recursive: true, force: true });
  }
}
