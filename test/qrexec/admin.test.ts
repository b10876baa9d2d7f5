import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { mkdtemp, rm } from 'node:fs/promises';
import type { Server } from 'node:net';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { QrexecHost } from './helpers.js';
import { REFUSED, startQrexecHost } from './helpers.js';

/** A stand-in qubesd that records each request's bytes and answers `0\0ok`. */
async function recordingQubesd(path: string, seen: Buffer[]): Promise<Server> {
  const server = createServer({ allowHalfOpen: true }, (sock) => {
    const chunks: Buffer[] = [];
    sock.on('data', (c: Buffer) => chunks.push(c));
    sock.on('end', () => {
      seen.push(Buffer.concat(chunks));
      sock.end(Buffer.from('0\0ok', 'latin1'));
    });
  });
  await new Promise<void>((resolve) => server.listen(path, resolve));
  return server;
}

describe('qrexec router: admin.* to qubesd', () => {
  let host: QrexecHost;
  let fakeDir: string;
  let fake: Server;
  const seen: Buffer[] = [];
  before(async () => {
    fakeDir = await mkdtemp(join(tmpdir(), 'qmcp-fake-qubesd-'));
    const path = join(fakeDir, 'qubesd.sock');
    fake = await recordingQubesd(path, seen);
    host = await startQrexecHost({ router: { qubesdSocket: path, adminMethods: new Set(['admin.vm.List', 'admin.vm.Start', 'admin.vm.feature.Set']) } });
    host.policy(
      [
        'admin.vm.List         *  agent  @adminvm  allow',
        'admin.vm.feature.Set  *  agent  @adminvm  allow',
        'admin.vm.Start        *  agent  @tag:ai   allow target=dom0',
        'admin.vm.Unknown      *  agent  @adminvm  allow',
      ].join('\n') + '\n',
    );
  });
  after(async () => {
    await host.close();
    await new Promise<void>((resolve) => fake.close(() => resolve()));
    await rm(fakeDir, { recursive: true, force: true });
  });

  const last = (): string => (seen.at(-1) ?? Buffer.alloc(0)).toString('latin1');

  it('writes the keyword form for @adminvm and pipes the reply back with status 0', async () => {
    const r = await host.call('agent', '@adminvm', 'admin.vm.List');
    assert.equal(r.status, 0);
    assert.equal(r.stdout.toString('latin1'), '0\0ok');
    assert.equal(last(), 'admin.vm.List+ agent keyword adminvm\0');
  });

  it('writes name dom0 when the caller asked for dom0, and streams the payload', async () => {
    const r = await host.call('agent', 'dom0', 'admin.vm.feature.Set+gui', 'value');
    assert.equal(r.status, 0);
    assert.equal(last(), 'admin.vm.feature.Set+gui agent name dom0\0value');
  });

  it('passes the requested target on for a rule that redirects to dom0', async () => {
    const r = await host.call('agent', 'work', 'admin.vm.Start');
    assert.equal(r.status, 0);
    assert.equal(last(), 'admin.vm.Start+ agent name work\0');
  });

  it('treats an admin method qubesd does not serve as a missing service', async () => {
    const before = seen.length;
    const r = await host.call('agent', '@adminvm', 'admin.vm.Unknown');
    assert.equal(r.status, 127);
    assert.equal(seen.length, before);
  });

  it('never reaches qubesd for a refused call', async () => {
    const before = seen.length;
    assert.deepEqual(await host.call('work', '@adminvm', 'admin.vm.List'), REFUSED);
    assert.equal(seen.length, before);
  });
});
