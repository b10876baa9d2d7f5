/** A simulated host for the qrexec tests: the real qubesd, the router and a policy written per test. */
import { mkdirSync, writeFileSync } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { PassThrough } from 'node:stream';
import type { Fleet } from '../../src/sim/fleet.js';
import { fleetState } from '../../src/sim/fleet.js';
import type { Qubesd } from '../../src/sim/qubesd/index.js';
import { startQubesd } from '../../src/sim/qubesd/index.js';
import { qrexecCall } from '../../src/sim/qrexec/client.js';
import type { QubeServiceHost, Router, RouterOptions } from '../../src/sim/qrexec/router.js';
import { startRouter } from '../../src/sim/qrexec/router.js';
import { hangBoundMs } from '../../verify/hang-bound.js';

export const fleet: Fleet = {
  properties: { default_netvm: 'sys-net', default_dispvm: 'dvm', default_template: 'tpl' },
  qubes: [
    { name: 'tpl', klass: 'TemplateVM', label: 'black' },
    { name: 'sys-net', klass: 'AppVM', template: 'tpl', label: 'red', properties: { provides_network: true, netvm: null } },
    { name: 'work', klass: 'AppVM', template: 'tpl', label: 'blue', tags: ['ai'] },
    { name: 'agent', klass: 'AppVM', template: 'tpl', label: 'red', tags: ['ai'] },
    { name: 'dvm', klass: 'AppVM', template: 'tpl', label: 'red', properties: { template_for_dispvms: true } },
    { name: 'vault', klass: 'AppVM', template: 'tpl', label: 'black', properties: { netvm: null } },
  ],
};

export interface CallResult {
  status: number;
  stdout: Buffer;
  stderr: Buffer;
}

export interface QrexecHost {
  readonly dir: string;
  readonly dom0: string;
  readonly qubesd: Qubesd;
  readonly router: Router;
  /** Replaces the simulated dom0's policy with one file (more with `files`). */
  policy(text: string, name?: string): void;
  /** A call from `source` as its qrexec-client-vm would make it. */
  call(source: string, target: string, service: string, stdin?: string | Buffer): Promise<CallResult>;
  close(): Promise<void>;
}

export async function startQrexecHost(
  opts: { qubeServices?: QubeServiceHost; askTimeoutMs?: number; router?: Partial<RouterOptions> } = {},
): Promise<QrexecHost> {
  const dir = await mkdtemp(join(tmpdir(), 'qmcp-qrexec-'));
  const dom0 = join(dir, 'dom0');
  const policyDir = join(dom0, 'etc', 'qubes', 'policy.d');
  mkdirSync(policyDir, { recursive: true });
  const qubesd = await startQubesd({ dir, seed: () => fleetState(fleet) });
  const router = await startRouter({
    dir,
    qubesdSocket: qubesd.socketPath,
    internalSocket: qubesd.internalSocketPath,
    policyRoot: dom0,
    // the test answers as the operator, through child processes: their time is the work's, not a window
    askTimeoutMs: opts.askTimeoutMs ?? hangBoundMs(60_000),
    ...(opts.qubeServices ? { qubeServices: opts.qubeServices } : {}),
    ...opts.router,
  });
  return {
    dir,
    dom0,
    qubesd,
    router,
    policy(text, name = '30-test.policy') {
      writeFileSync(join(policyDir, name), text);
    },
    call: (source, target, service, stdin) => callSocket(router.socketFor(source), target, service, stdin),
    async close() {
      await router.close();
      await qubesd.close();
      await rm(dir, { recursive: true, force: true });
    },
  };
}

export async function callSocket(socket: string, target: string, service: string, stdin?: string | Buffer): Promise<CallResult> {
  const input = new PassThrough();
  input.end(stdin ?? '');
  const out: Buffer[] = [];
  const err: Buffer[] = [];
  const stdout = new PassThrough();
  const stderr = new PassThrough();
  stdout.on('data', (c: Buffer) => out.push(c));
  stderr.on('data', (c: Buffer) => err.push(c));
  const status = await qrexecCall(socket, target, service, { stdin: input, stdout, stderr });
  return { status, stdout: Buffer.concat(out), stderr: Buffer.concat(err) };
}

/** Writes an executable dom0 service under DOM0/etc/qubes-rpc (or `sub`). */
export function writeService(dom0: string, name: string, script: string, sub = 'etc/qubes-rpc'): void {
  const dir = join(dom0, sub);
  mkdirSync(dir, { recursive: true });
  writeFileSync(join(dir, name), script, { mode: 0o755 });
}

export const REFUSED: CallResult = { status: 126, stdout: Buffer.alloc(0), stderr: Buffer.from('Request refused\n') };
