/**
 * How listing scales with the number of qubes, on a host whose dom0 services
 * are resident: the `qube_list` tool through the whole stack, `qmcp.List`
 * through the router, and qubesd's own `admin.vm.List` on its socket.
 */
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { qubesdCall } from '../src/shared/adminapi/client.js';
import { decodeReply } from '../src/shared/service-reply.js';
import type { Fleet, FleetQube } from '../src/sim/fleet.js';
import { startSimHost } from '../src/sim/host.js';
import { connectPrincipal, ok } from './latency.js';
import { routerCall } from './router-call.js';
import { BENCH_SETTINGS, PRINCIPAL } from './settings.js';
import { latencyRow, sample, type Row } from './stats.js';

const SECTION = 'listing scale';

/** `total` qubes besides dom0, half of them inside the agent's umbrella. */
export function scaleFleet(total: number): Fleet {
  const qubes: FleetQube[] = [
    { name: 'tpl', klass: 'TemplateVM' },
    { name: 'ai-tpl', klass: 'TemplateVM', tags: ['ai-managed', 'ai-full'] },
    { name: PRINCIPAL, klass: 'AppVM', template: 'tpl', properties: { netvm: null } },
    { name: 'ai-egress', klass: 'AppVM', template: 'ai-tpl', tags: ['ai-managed'], properties: { provides_network: true, netvm: null } },
  ];
  for (let i = 0; qubes.length < total; i++) {
    qubes.push(
      i % 2 === 0
        ? { name: `ai-q${i}`, klass: 'AppVM', template: 'ai-tpl', tags: ['ai-managed', 'ai-exec'], properties: { netvm: null } }
        : { name: `op-q${i}`, klass: 'AppVM', template: 'tpl', properties: { netvm: null } },
    );
  }
  return { qubes };
}

async function expectOk(p: Promise<{ status: number } | { ok: boolean }>, what: string): Promise<void> {
  const r = await p;
  if ('status' in r ? r.status !== 0 : !r.ok) throw new Error(`${what} failed`);
}

/** A resident service's reply through the router: its own status and stdout in band, the router's status 0. */
async function residentList(dir: string): Promise<{ status: number; stdout: Buffer }> {
  const r = await routerCall(dir, PRINCIPAL, '@adminvm', 'qmcp.List');
  const reply = r.status === 0 ? decodeReply(r.stdout) : null;
  return reply ?? { status: r.status || -1, stdout: r.stdout };
}

/** How many rows the agent's listing has: the umbrella's share of the fleet. */
async function visibleCount(dir: string): Promise<number> {
  const r = await residentList(dir);
  const parsed = JSON.parse(r.stdout.toString('utf8')) as { qubes?: unknown };
  if (r.status !== 0 || !Array.isArray(parsed.qubes)) throw new Error('qmcp.List gave no list');
  return parsed.qubes.length;
}

export async function listingScale(sizes: readonly number[], calls: number): Promise<Row[]> {
  const rows: Row[] = [];
  for (const size of sizes) {
    const dir = await mkdtemp(join(tmpdir(), 'qmcp-bench-scale-'));
    const host = await startSimHost({ dir, fleet: scaleFleet(size), install: true, initialSettings: BENCH_SETTINGS, serviceMode: 'resident' });
    const client = await connectPrincipal(dir);
    try {
      // the hosts of 1000 qubes and more take a quarter of the calls to keep the run short
      const n = size >= 1000 ? Math.max(3, Math.ceil(calls / 4)) : calls;
      const visible = await visibleCount(dir);
      rows.push(latencyRow(SECTION, `qube_list, ${size} qubes (${visible} listed)`, await sample(n, () => ok(client, 'qube_list', {}))));
      rows.push(
        latencyRow(
          SECTION,
          `qmcp.List via router, ${size} qubes (${visible} listed)`,
          await sample(n, () => expectOk(residentList(dir), 'qmcp.List')),
        ),
      );
      rows.push(
        latencyRow(
          SECTION,
          `admin.vm.List on qubesd.sock, ${size} qubes`,
          await sample(n, () => expectOk(qubesdCall(host.qubesd.socketPath, { method: 'admin.vm.List', dest: 'dom0' }), 'admin.vm.List')),
        ),
      );
    } finally {
      await client.close();
      await host.close();
      await rm(dir, { recursive: true, force: true });
    }
  }
  return rows;
}
