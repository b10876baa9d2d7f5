// The resident process keeps nothing from one call to the next: a qube the
// operator takes out of the agent's world between two calls is refused on
// the second, exactly as a fresh process would. A weakened runner that
// keeps its first snapshot for later calls is caught.
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { PassThrough } from 'node:stream';
import { pathToFileURL } from 'node:url';
import { startResident } from '../../src/dom0/resident/server.js';
import type { Resident } from '../../src/dom0/resident/server.js';
import { dom0Host, serveDom0Call } from '../../src/dom0/service/compose.js';
import { REFUSAL_REPLY, decodeReply } from '../../src/shared/service-reply.js';
import { dom0Root } from '../../src/sim/host.js';
import { runSocketService } from '../../src/sim/qrexec/dom0-services.js';
import { compiled, weakenedFile } from '../../verify/weakened-module.js';
import { PRINCIPAL, TIER_QUBES, startBoundary } from '../boundary/helpers.js';
import type { Boundary } from '../boundary/helpers.js';

type Serve = typeof serveDom0Call;

let b: Boundary;
before(async () => {
  b = await startBoundary('least-privilege', { serviceMode: 'per-call' });
});
after(async () => {
  await b.close();
});

/** One call over a resident front end's socket, as qrexec makes it; the status its reply ends with (126: the one refusal). */
async function call(path: string, service: string, argument: string): Promise<number> {
  const stdin = new PassThrough();
  stdin.end();
  const stdout = new PassThrough();
  const out: Buffer[] = [];
  stdout.on('data', (c: Buffer) => out.push(c));
  await runSocketService(path, { service, argument, source: PRINCIPAL, requested: { type: 'keyword', value: 'adminvm' } }, { stdin, stdout, stderr: new PassThrough() });
  const reply = Buffer.concat(out);
  return reply.equals(REFUSAL_REPLY) ? 126 : (decodeReply(reply)?.status ?? -1);
}

/** Info on a qube, the operator takes it out of the umbrella, info again: the two statuses. */
async function leaveCase(serve: Serve): Promise<[number, number]> {
  const dir = mkdtempSync(join(tmpdir(), 'qmcp-resident-state-'));
  const path = join(dir, 'qmcp.Info');
  const host = { ...dom0Host({ QMCP_ROOT: dom0Root(b.host.dir), QMCP_QUBESD_SOCKET: b.host.qubesd.socketPath }, 'resident'), log: () => undefined };
  const resident: Resident = startResident({ serve: (c) => serve(host, c), log: () => undefined });
  const qube = TIER_QUBES.read;
  try {
    await resident.listen({ path });
    const first = await call(path, 'qmcp.Info', qube);
    await b.admin.call('admin.vm.tag.Remove', qube, 'ai-managed');
    try {
      return [first, await call(path, 'qmcp.Info', qube)];
    } finally {
      await b.admin.call('admin.vm.tag.Set', qube, 'ai-managed');
    }
  } finally {
    await resident.stop();
    rmSync(dir, { recursive: true, force: true });
  }
}

test('resident: a qube that leaves the agent\'s world between two calls is refused on the second; a runner keeping its snapshot is caught', async () => {
  assert.deepEqual(await leaveCase(serveDom0Call), [0, 126]);
  const run = weakenedFile(
    'dom0/service/run',
    'let snapshot = await Snapshot.take(rt.qubesd, config.scope, reads);',
    'let snapshot = (globalThis.qmcpKeptSnapshot ??= await Snapshot.take(rt.qubesd, config.scope, reads));',
  );
  const compose = weakenedFile('dom0/service/compose', 'export async function serveDom0Call', 'export async function serveDom0Call', { [compiled('dom0/service/run')]: run });
  const weak = ((await import(pathToFileURL(compose).href)) as { serveDom0Call: Serve }).serveDom0Call;
  assert.deepEqual(await leaveCase(weak), [0, 0], 'the weakened runner answered from its first snapshot');
});
