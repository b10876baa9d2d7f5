import { test } from 'node:test';
import assert from 'node:assert/strict';
import { chmod, mkdir, writeFile } from 'node:fs/promises';
import { createServer } from 'node:net';
import type { Server } from 'node:net';
import { join } from 'node:path';
import { QubeSandboxes } from '../../src/sim/sandbox/index.js';
import { FLEET, sh, skipWithoutBwrap, weakenedSandboxes, withTempDir } from './helpers.js';
import type { Sandboxes } from './helpers.js';

// Stands in for the router's client, laid out as in this package: an
// extensionless ESM script importing from dist/src/sim/qrexec/.
const CLIENT = `#!/usr/bin/env node
import { hello } from '../dist/src/sim/qrexec/fake-client.js';
hello(process.argv.slice(2));
`;
const CLIENT_MODULE = `import { connect } from 'node:net';
export function hello(args) {
  const socket = connect(process.env.QMCP_QREXEC_SOCKET);
  socket.on('data', (d) => process.stdout.write(d));
  socket.on('end', () => process.exit(0));
  socket.on('error', (e) => { console.error(e.message); process.exit(125); });
  socket.end(args.join(' '));
}
`;

async function fakePackage(root: string): Promise<void> {
  await mkdir(join(root, 'bin'), { recursive: true });
  await mkdir(join(root, 'dist', 'src', 'sim', 'qrexec'), { recursive: true });
  await writeFile(join(root, 'package.json'), '{"type": "module"}\n');
  await writeFile(join(root, 'bin', 'qrexec-client-vm'), CLIENT);
  await chmod(join(root, 'bin', 'qrexec-client-vm'), 0o755);
  await writeFile(join(root, 'dist', 'src', 'sim', 'qrexec', 'fake-client.js'), CLIENT_MODULE);
  await writeFile(join(root, 'secret'), 'not for qubes');
}

function listen(path: string, name: string): Promise<Server> {
  const server = createServer((socket) => {
    const chunks: Buffer[] = [];
    socket.on('data', (c: Buffer) => chunks.push(c));
    socket.on('end', () => socket.end(`${name} got: ${Buffer.concat(chunks).toString()}`));
  });
  return new Promise((resolve) => server.listen(path, () => resolve(server)));
}

test('qrexec-client-vm inside a qube reaches the router on that qube\'s socket only', { skip: skipWithoutBwrap }, async () => {
  await withTempDir(async (dir) => {
    await mkdir(join(dir, 'qrexec'));
    const clientRoot = join(dir, 'package');
    await fakePackage(clientRoot);
    const servers = [await listen(join(dir, 'qrexec', 'app.sock'), 'app'), await listen(join(dir, 'qrexec', 'app2.sock'), 'app2')];
    const s = new QubeSandboxes({ dir, lookup: (n) => FLEET[n], clientRoot });
    try {
      await s.beforeStart('app');
      const result = await sh(s, 'app', 'qrexec-client-vm work qubes.Test; echo; ls -A /run/qmcp; ls /run/qmcp/bin');
      assert.equal(result.status, 0, result.stderr);
      assert.equal(result.stdout, 'app got: work qubes.Test\nbin\ndist\npackage.json\nqrexec.sock\nnode\nqrexec-client-vm\n');
    } finally {
      await s.stopAll();
      await Promise.all(servers.map((server) => new Promise((resolve) => server.close(resolve))));
    }
  });
});

/**
 * A qube made since the router's last look has no socket yet; bwrap binds a
 * missing socket as nothing, and the qube would be without qrexec for its
 * life (every call failing as unreachable, which a caller may not tell from
 * a call that ran). The sandbox asks for the socket before it comes.
 */
async function socketBeforeSandbox(Sandboxes: Sandboxes): Promise<string> {
  let out = '';
  await withTempDir(async (dir) => {
    await mkdir(join(dir, 'qrexec'));
    const clientRoot = join(dir, 'package');
    await fakePackage(clientRoot);
    const servers: Server[] = [];
    // the socket comes only when asked for: no poll, no timing
    const qrexecReady = async (name: string): Promise<void> => {
      servers.push(await listen(join(dir, 'qrexec', `${name}.sock`), name));
    };
    const s = new Sandboxes({ dir, lookup: (n) => FLEET[n], clientRoot, qrexecReady });
    try {
      await s.beforeStart('app');
      out = (await sh(s, 'app', 'qrexec-client-vm work qubes.Test; echo " status=$?"')).stdout;
    } finally {
      await s.stopAll();
      await Promise.all(servers.map((server) => new Promise((resolve) => server.close(resolve))));
    }
  });
  return out;
}

test('a qube made since the router last looked has its qrexec socket when its sandbox comes', { skip: skipWithoutBwrap }, async () => {
  assert.equal(await socketBeforeSandbox(QubeSandboxes), 'app got: work qubes.Test status=0\n');
  const without = await weakenedSandboxes(['await ready(name)', 'await Promise.resolve()']);
  assert.match(await socketBeforeSandbox(without), / status=125\n$/, 'the sandbox bound the socket before it was there');
});
