// A simulated qube's volumes have the sizes qubesd gives them: writing past
// one fails with ENOSPC inside the qube, and the host keeps at most about
// the volume's size for it.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { lstatSync, mkdtempSync, readdirSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { PassThrough } from 'node:stream';
import { FleetError, validateFleet } from '../../src/sim/fleet.js';
import { startSimHost } from '../../src/sim/host.js';
import { QubeSandboxes } from '../../src/sim/sandbox/index.js';
import type { QubeShape } from '../../src/sim/sandbox/index.js';
import { collect, skipWithoutBwrap } from './helpers.js';
import type { Output } from './helpers.js';

const skip = skipWithoutBwrap;
const MiB = 1024 * 1024;

const SMALL: Readonly<Record<string, QubeShape>> = {
  'tpl': { klass: 'TemplateVM', volumes: { root: 48 * MiB, private: 16 * MiB } },
  'app': { klass: 'AppVM', template: 'tpl', volumes: { root: 48 * MiB, private: 32 * MiB } },
  'dvm-tpl': { klass: 'AppVM', template: 'tpl', volumes: { root: 48 * MiB, private: 24 * MiB } },
  'disp1': { klass: 'DispVM', template: 'dvm-tpl', volumes: { root: 48 * MiB, private: 24 * MiB } },
  'standalone': { klass: 'StandaloneVM', volumes: { root: 40 * MiB, private: 20 * MiB } },
};

/** Bytes the host keeps for a qube. */
function hostBytes(dir: string, qube: string): number {
  let total = 0;
  const walk = (at: string): void => {
    let names: string[];
    try {
      names = readdirSync(at);
    } catch {
      return;
    }
    for (const name of names) {
      const info = lstatSync(join(at, name));
      if (info.isDirectory()) walk(join(at, name));
      else total += info.size;
    }
  };
  walk(join(dir, 'qubes', qube));
  return total;
}

/** Room for names and modes on top of the data. */
const about = (size: number): number => size + size / 8 + MiB;

async function withSmall(fn: (s: QubeSandboxes, dir: string) => Promise<void>): Promise<void> {
  const dir = mkdtempSync(join(tmpdir(), 'qmcp-bounds-'));
  const s = new QubeSandboxes({ dir, lookup: (name) => SMALL[name] });
  try {
    await fn(s, dir);
  } finally {
    await s.stopAll();
    rmSync(dir, { recursive: true, force: true });
  }
}

function sh(s: QubeSandboxes, qube: string, script: string): Promise<Output> {
  return collect(s.spawn(qube, ['/bin/sh', '-c', script], { cwd: '/' }));
}

/** Writes `mib` MiB to `path`; prints the exit status and the size written. */
function fill(path: string, mib: number): string {
  return `dd if=/dev/zero of='${path}' bs=1M count=${mib} 2>&1; echo "status $?"; wc -c < '${path}'`;
}

function assertNoSpace(out: Output, limit: number, what: string): void {
  assert.match(out.stdout, /No space left on device/, `${what}: ${out.stdout}${out.stderr}`);
  assert.doesNotMatch(out.stdout, /status 0\n/, what);
  const written = Number(out.stdout.trim().split('\n').pop());
  assert.ok(written <= limit, `${what}: ${written} bytes written, over ${limit}`);
}

test('writing past the private volume fails with ENOSPC inside every kind of qube, and the host keeps about its size', { skip }, async () => {
  await withSmall(async (s, dir) => {
    for (const [qube, size] of [
      ['app', 32 * MiB],
      ['tpl', 16 * MiB],
      ['standalone', 20 * MiB],
      ['disp1', 24 * MiB],
    ] as const) {
      await s.beforeStart(qube);
      assertNoSpace(await sh(s, qube, fill('/home/user/big', size / MiB + 16)), size, qube);
      // While it runs, nothing of what it wrote is on the host's disk.
      assert.ok(hostBytes(dir, qube) <= about(size), `${qube} holds ${hostBytes(dir, qube)} bytes on the host`);
      await s.afterStop(qube);
      assert.ok(hostBytes(dir, qube) <= about(size), `${qube} holds ${hostBytes(dir, qube)} bytes on the host`);
    }
    // What fitted is kept (not for the disposable).
    await s.beforeStart('app');
    const kept = Number((await sh(s, 'app', 'wc -c < /home/user/big')).stdout);
    assert.ok(kept > 16 * MiB && kept <= 32 * MiB, `kept ${kept}`);
  });
});

test('the root file system is bounded by the root volume, and /dev by its own small limits', { skip }, async () => {
  await withSmall(async (s, dir) => {
    await s.beforeStart('tpl');
    assertNoSpace(await sh(s, 'tpl', fill('/var/big', 64)), 48 * MiB, 'tpl /var');
    assertNoSpace(await sh(s, 'tpl', `rm -f /var/big; ${fill('/tmp/big', 64)}`), 48 * MiB, 'tpl /tmp');
    assertNoSpace(await sh(s, 'tpl', `rm -f /tmp/big; ${fill('/dev/shm/big', 80)}`), 64 * MiB, 'tpl /dev/shm');
    assert.match((await sh(s, 'tpl', 'rm -f /dev/shm/big; touch /dev/big 2>&1; true')).stdout, /Read-only file system/);
    assertNoSpace(await sh(s, 'tpl', fill('/usr/local/big', 64)), 48 * MiB, 'tpl /usr/local');
    await s.afterStop('tpl');
    assert.ok(hostBytes(dir, 'tpl') <= about(48 * MiB) + about(16 * MiB));
    // An AppVM's root is its template's, with its template's size.
    await s.beforeStart('app');
    assertNoSpace(await sh(s, 'app', fill('/etc/big', 64)), 48 * MiB, 'app /etc');
  });
});

test('fleet volume sizes reach the sandbox: a qubes.Filecopy stream bigger than the private volume ends in ENOSPC', { skip }, async () => {
  const dir = mkdtempSync(join(tmpdir(), 'qmcp-bounds-host-'));
  try {
    const host = await startSimHost({
      dir,
      fleet: {
        qubes: [
          { name: 'tpl', klass: 'TemplateVM' },
          { name: 'sink', klass: 'AppVM', template: 'tpl', properties: { netvm: null }, volumes: { private: 32 * MiB } },
        ],
      },
    });
    try {
      const { app } = host.qubesd;
      await app.start(app.mustGet('sink'));
      const size = 48 * MiB;
      const stream = Buffer.concat([
        Buffer.from(`qmcp-filecopy 1\nfile ${Buffer.from('big').toString('base64')} 644 ${size}\n`),
        Buffer.alloc(size),
        Buffer.from('end\n'),
      ]);
      const stdin = new PassThrough();
      const stdout = new PassThrough();
      const stderr = new PassThrough();
      const err: Buffer[] = [];
      stdout.resume();
      stderr.on('data', (c: Buffer) => err.push(c));
      stdin.end(stream);
      const status = await host.sandboxes.run({ qube: 'sink', service: 'qubes.Filecopy', argument: '', source: 'box', stdin, stdout, stderr });
      assert.notEqual(status, 0, Buffer.concat(err).toString());
      const inside = await collect(host.sandboxes.spawn('sink', ['/bin/sh', '-c', 'du -sk /rw | cut -f1']));
      assert.ok(Number(inside.stdout) * 1024 <= 32 * MiB, inside.stdout);
      assert.ok(hostBytes(dir, 'sink') <= about(32 * MiB));
      await app.kill(app.mustGet('sink'));
      assert.ok(hostBytes(dir, 'sink') <= about(32 * MiB), `${hostBytes(dir, 'sink')} bytes`);
    } finally {
      await host.close();
    }
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('a fleet refuses unknown volumes and sizes under 1 MiB', () => {
  const fleet = (volumes: unknown): unknown => ({ qubes: [{ name: 'tpl', klass: 'TemplateVM', volumes }] });
  assert.throws(() => validateFleet(fleet({ swap: 2 * MiB })), FleetError);
  assert.throws(() => validateFleet(fleet({ private: 1000 })), FleetError);
  assert.throws(() => validateFleet(fleet({ private: '2G' })), FleetError);
  validateFleet(fleet({ private: 2 * MiB, root: 4 * MiB, volatile: 8 * MiB }));
});
