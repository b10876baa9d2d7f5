/** Shared setup for the qubesd tests: a temp host directory and raw socket calls. */
import { mkdtemp, rm } from 'node:fs/promises';
import { connect } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Fleet } from '../../src/sim/fleet.js';
import { fleetState } from '../../src/sim/fleet.js';
import type { Qubesd } from '../../src/sim/qubesd/index.js';
import { startQubesd } from '../../src/sim/qubesd/index.js';

export const smallFleet: Fleet = {
  properties: { default_netvm: 'sys-firewall', default_dispvm: 'dvm', default_template: 'tpl' },
  qubes: [
    { name: 'tpl', klass: 'TemplateVM', label: 'black' },
    { name: 'sys-net', klass: 'AppVM', template: 'tpl', label: 'red', properties: { provides_network: true, netvm: null } },
    { name: 'sys-firewall', klass: 'AppVM', template: 'tpl', label: 'green', properties: { provides_network: true, netvm: 'sys-net' } },
    { name: 'work', klass: 'AppVM', template: 'tpl', label: 'blue' },
    { name: 'dvm', klass: 'AppVM', template: 'tpl', label: 'red', tags: ['ai-managed'], properties: { template_for_dispvms: true } },
    { name: 'vault', klass: 'AppVM', template: 'tpl', label: 'black', properties: { netvm: null } },
  ],
  devices: { block: { 'sys-net': [{ port: 'sda', devid: 'disk1', description: 'USB stick', interfaces: 'b******' }] } },
};

export interface TestHost {
  readonly dir: string;
  readonly qubesd: Qubesd;
  /** Sends raw bytes, half-closes, resolves to every byte the server sent. */
  raw(req: Buffer | string): Promise<Buffer>;
  /** A call from dom0 (or `src`) in qubesadmin's framing; resolves to the reply as a latin1 string. */
  call(method: string, dest: string, opts?: { arg?: string; payload?: string | Buffer; src?: string }): Promise<string>;
  close(): Promise<void>;
}

export function rawCall(path: string, req: Buffer | string): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    const sock = connect(path, () => sock.end(Buffer.isBuffer(req) ? req : Buffer.from(req, 'latin1')));
    sock.on('data', (c: Buffer) => chunks.push(c));
    sock.on('error', (e: NodeJS.ErrnoException) => {
      // a reset after an abort still counts as the end of the reply
      if (e.code !== 'ECONNRESET' && e.code !== 'EPIPE') reject(e);
    });
    sock.on('close', () => resolve(Buffer.concat(chunks)));
  });
}

export async function startTestHost(fleet: Fleet = smallFleet, dir?: string): Promise<TestHost> {
  const d = dir ?? (await mkdtemp(join(tmpdir(), 'qmcp-qubesd-')));
  const qubesd = await startQubesd({ dir: d, seed: () => fleetState(fleet) });
  const raw = (req: Buffer | string): Promise<Buffer> => rawCall(qubesd.socketPath, req);
  return {
    dir: d,
    qubesd,
    raw,
    call: async (method, dest, opts = {}) => {
      const head = Buffer.from(`${method}+${opts.arg ?? ''} ${opts.src ?? 'dom0'} name ${dest}\0`, 'latin1');
      const body = opts.payload === undefined ? Buffer.alloc(0) : Buffer.from(opts.payload);
      return (await raw(Buffer.concat([head, body]))).toString('latin1');
    },
    close: async () => {
      await qubesd.close();
    },
  };
}

export async function removeDir(dir: string): Promise<void> {
  await rm(dir, { recursive: true, force: true });
}
