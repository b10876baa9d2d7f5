// Root inside a running qube tries to reach the host through what its
// storage is made of: links in place of each volume's directories (absolute,
// with `..`, through /proc, into /sys), carried to other qubes by a
// disposable or a clone, hard links, and mounts. The qube must see only its
// own volumes, and a marker directory on the host must stay unread and
// unchanged.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import { linkSync, lstatSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, relative } from 'node:path';
import { QubeSandboxes } from '../../src/sim/sandbox/index.js';
import type { QubeShape } from '../../src/sim/sandbox/index.js';
import { collect, FLEET, skipWithoutBwrap } from './helpers.js';
import type { Output } from './helpers.js';

const skip = skipWithoutBwrap;
const LAYER_MOUNTS: readonly (readonly [string, string])[] = [
  ['etc', '/etc'],
  ['var', '/var'],
  ['opt', '/opt'],
  ['root', '/root'],
  ['srv', '/srv'],
  ['usr-local', '/usr/local'],
];
const QUBES: Readonly<Record<string, QubeShape>> = { ...FLEET, clone: { klass: 'AppVM', template: 'tpl' } };

interface Marker {
  readonly dir: string;
  readonly secret: string;
  /** Names, contents and times of what is in it. */
  state(): string;
}

function describe(dir: string): string {
  return JSON.stringify(
    readdirSync(dir)
      .sort()
      .map((name) => {
        const info = lstatSync(join(dir, name));
        return [name, info.mtimeMs, info.isFile() ? readFileSync(join(dir, name), 'latin1') : ''];
      }),
  );
}

async function withHost(fn: (s: QubeSandboxes, dir: string, marker: Marker) => Promise<void>): Promise<void> {
  const dir = mkdtempSync(join(tmpdir(), 'qmcp-escape-'));
  const markerDir = mkdtempSync(join(tmpdir(), 'qmcp-marker-'));
  const secret = `host-secret-${randomUUID()}`;
  writeFileSync(join(markerDir, 'secret'), secret);
  // The simulator's own directory holds things a qube must not see either.
  writeFileSync(join(dir, 'host-marker'), secret);
  const marker: Marker = { dir: markerDir, secret, state: () => describe(markerDir) };
  const s = new QubeSandboxes({ dir, lookup: (name) => QUBES[name] });
  try {
    await fn(s, dir, marker);
  } finally {
    await s.stopAll();
    rmSync(dir, { recursive: true, force: true });
    rmSync(markerDir, { recursive: true, force: true });
  }
}

/** A shell command as root in the qube, from / (an attack may break /root). */
function sh(s: QubeSandboxes, qube: string, script: string): Promise<Output> {
  return collect(s.spawn(qube, ['/bin/sh', '-c', script], { cwd: '/' }));
}

/** Tries to read and change what `at` shows, including the host's marker files. */
function probe(s: QubeSandboxes, qube: string, at: string, marker: Marker): Promise<Output> {
  return sh(
    s,
    qube,
    `cat '${at}/secret' '${at}/host-marker' '${at}${marker.dir}/secret' 2>/dev/null; ls -A '${at}/' 2>/dev/null; ` +
      `echo planted > '${at}/planted' 2>/dev/null; ln '${at}/secret' '${at}/linked' 2>/dev/null; true`,
  );
}

/** What the qube got of the host: empty when it stayed inside. */
function breaches(outputs: readonly Output[], marker: Marker, before: string): string[] {
  const found: string[] = [];
  for (const out of outputs) {
    if ((out.stdout + out.stderr).includes(marker.secret)) found.push('read a host file');
    // Names only the host's directories have.
    if (/^(host-marker|qubes|qrexec|secret)$/m.test(out.stdout)) found.push(`listed a host directory: ${JSON.stringify(out.stdout)}`);
  }
  if (marker.state() !== before) found.push('changed the marker directory');
  return found;
}

function assertContained(outputs: readonly Output[], marker: Marker, before: string): void {
  assert.deepEqual(breaches(outputs, marker, before), []);
}

/** Bytes under the simulator's directory that hold the secret. */
function hostCopiesOf(dir: string, secret: string): string[] {
  const found: string[] = [];
  const walk = (at: string): void => {
    for (const name of readdirSync(at)) {
      const path = join(at, name);
      const info = lstatSync(path);
      if (info.isDirectory()) walk(path);
      else if (info.isFile() && name !== 'host-marker' && readFileSync(path, 'latin1').includes(secret)) found.push(path);
    }
  };
  walk(dir);
  return found;
}

test('a link in place of /rw/home, absolute, with .. or through /proc, never leads outside the qube', { skip }, async () => {
  await withHost(async (s, dir, marker) => {
    const before = marker.state();
    await s.beforeStart('app');
    // Where the private volume was kept on the host, for relative links.
    const privateDir = join(dir, 'qubes', 'app', 'private');
    const targets = [
      marker.dir,
      relative(privateDir, marker.dir),
      '..',
      '../..',
      '../../..',
      `/proc/self/root${marker.dir}`,
      `/proc/1/root${marker.dir}`,
      '/proc/self/cwd',
    ];
    const outputs: Output[] = [];
    const escapes: string[] = [];
    for (const target of targets) {
      const now = marker.state();
      const tried = [await sh(s, 'app', `rm -rf /rw/home; ln -s '${target}' /rw/home`), await probe(s, 'app', '/home', marker)];
      for (const breach of breaches(tried, marker, now)) escapes.push(`${target}: ${breach}`);
      outputs.push(...tried);
    }
    assert.deepEqual(escapes, []);
    outputs.push(await sh(s, 'app', `rm -rf /rw/home; ln -s '${marker.dir}' /rw/home`));
    await s.afterStop('app');
    await s.beforeStart('app');
    outputs.push(await probe(s, 'app', '/home', marker));
    outputs.push(await probe(s, 'app', '/rw/home', marker));
    assertContained(outputs, marker, before);
    assert.deepEqual(hostCopiesOf(dir, marker.secret), []);
  });
});

for (const qube of ['app', 'tpl']) {
  test(`no root-layer directory of ${qube === 'app' ? 'an AppVM' : 'a TemplateVM'} can be turned into a host directory`, { skip }, async () => {
    await withHost(async (s, dir, marker) => {
      const before = marker.state();
      await s.beforeStart(qube);
      // Where the root layer of a running qube was kept on the host.
      const layer = join(dir, 'qubes', qube, 'volatile');
      const outputs: Output[] = [];
      const escapes: string[] = [];
      for (const [sub, mount] of LAYER_MOUNTS) {
        const now = marker.state();
        const tried: Output[] = [];
        // Reach the layer through /home, then replace the directory behind
        // the mount; and replace the mount point itself from inside.
        tried.push(await sh(s, qube, `rm -rf /rw/home; ln -s '${layer}' /rw/home`));
        tried.push(
          await sh(
            s,
            qube,
            `if [ -d /home/${sub} ]; then mv /home/${sub} /home/${sub}.orig; ln -s '${marker.dir}' /home/${sub}; fi; ` +
              `mv '${mount}' '${mount}.orig' 2>/dev/null && ln -s '${marker.dir}' '${mount}'; true`,
          ),
        );
        tried.push(await probe(s, qube, mount, marker));
        for (const breach of breaches(tried, marker, now)) escapes.push(`${mount}: ${breach}`);
        outputs.push(...tried);
      }
      assert.deepEqual(escapes, []);
      await s.afterStop(qube);
      await s.beforeStart(qube);
      for (const [, mount] of LAYER_MOUNTS) outputs.push(await probe(s, qube, mount, marker));
      assertContained(outputs, marker, before);
      assert.deepEqual(hostCopiesOf(dir, marker.secret), []);
    });
  });
}

test('a link a disposable template left in its private volume does not reach out of its disposables', { skip }, async () => {
  await withHost(async (s, dir, marker) => {
    const before = marker.state();
    await s.beforeStart('dvm-tpl');
    const outputs = [await sh(s, 'dvm-tpl', `rm -rf /rw/home; ln -s '${marker.dir}' /rw/home`)];
    await s.afterStop('dvm-tpl');
    await s.beforeStart('disp1');
    outputs.push(await probe(s, 'disp1', '/home', marker), await probe(s, 'disp1', '/rw/home', marker));
    assertContained(outputs, marker, before);
    assert.deepEqual(hostCopiesOf(dir, marker.secret), []);
  });
});

test('a link in a cloned volume does not reach out of the clone', { skip }, async () => {
  await withHost(async (s, dir, marker) => {
    const before = marker.state();
    await s.beforeStart('app');
    const outputs = [await sh(s, 'app', `rm -rf /rw/home; ln -s '${marker.dir}' /rw/home`)];
    await s.afterStop('app');
    await s.cloneStorage('app', 'clone');
    await s.beforeStart('clone');
    outputs.push(await probe(s, 'clone', '/home', marker), await probe(s, 'clone', '/rw/home', marker));
    assertContained(outputs, marker, before);
    assert.deepEqual(hostCopiesOf(dir, marker.secret), []);
  });
});

test('hard links to files outside its volumes are neither made by the qube nor taken from old storage', { skip }, async () => {
  await withHost(async (s, dir, marker) => {
    // Storage left by an earlier version with a file linked from outside.
    const home = join(dir, 'qubes', 'app', 'private', 'home', 'user');
    mkdirSync(home, { recursive: true });
    linkSync(join(marker.dir, 'secret'), join(home, 'linked'));
    const before = marker.state();
    await s.beforeStart('app');
    const outputs = [await sh(s, 'app', 'cat /home/user/linked /rw/home/user/linked 2>/dev/null; true')];
    outputs.push(await sh(s, 'app', `rm -rf /rw/home; ln -s '${marker.dir}' /rw/home`));
    const tries = ['/home/secret', '/usr/bin/env', '/run/qmcp/bin/node', '/run/qmcp-agent/sim/sandbox/agent.js', `/proc/self/root${marker.dir}/secret`];
    const script = tries.map((from, i) => `ln '${from}' /rw/h${i} 2>/dev/null && echo "linked ${from}"; ln '${from}' /var/h${i} 2>/dev/null && echo "linked ${from}";`).join(' ');
    const made = await sh(s, 'app', `${script} ln /home/secret /home/linked 2>/dev/null; true`);
    outputs.push(made);
    assert.equal(made.stdout, '');
    await s.afterStop('app');
    assertContained(outputs, marker, before);
    // The old storage was packed without the planted link, and nothing new shares the secret's inode.
    assert.equal(statSync(join(marker.dir, 'secret')).nlink, 1);
    assert.deepEqual(hostCopiesOf(dir, marker.secret), []);
  });
});

function writableMounts(mountinfo: string): string[] {
  const found: string[] = [];
  for (const line of mountinfo.split('\n').filter(Boolean)) {
    const [left, right] = line.split(' - ');
    const fields = (left ?? '').split(' ');
    const point = fields[4] ?? '';
    const options = (fields[5] ?? '').split(',');
    const type = (right ?? '').split(' ')[0] ?? '';
    if (!options.includes('rw')) continue;
    // The qube's own file systems, its device nodes and its qrexec socket.
    if (['tmpfs', 'proc', 'devpts', 'mqueue'].includes(type)) continue;
    if (/^\/dev\/(null|zero|full|random|urandom|tty)$/.test(point) || point === '/run/qmcp/qrexec.sock') continue;
    found.push(`${point} (${type})`);
  }
  return found;
}

test('the qube sees only its own volumes: no host directory is writable in it, and it cannot mount over /proc or /sys', { skip }, async () => {
  await withHost(async (s, _dir, marker) => {
    const before = marker.state();
    await s.beforeStart('app');
    const outputs: Output[] = [];
    for (const target of ['/proc/self/root', '/proc/1/root', '/sys', '/sys/fs/cgroup', '/proc/sys']) {
      outputs.push(await sh(s, 'app', `rm -rf /rw/home; ln -s '${target}' /rw/home`));
      const seen = await sh(s, 'app', `[ -e '/home${marker.dir}/secret' ] && echo "host root at ${target}"; [ -d /home/devices ] && [ -d /home/class ] && echo "host sysfs at ${target}"; true`);
      assert.equal(seen.stdout, '');
      outputs.push(seen);
    }
    const mountsBefore = (await sh(s, 'app', 'cat /proc/self/mountinfo')).stdout;
    const mounts = await sh(
      s,
      'app',
      'mount --bind /rw /proc/sys 2>/dev/null && echo mounted; mount -t proc proc /rw 2>/dev/null && echo mounted; ' +
        'mkdir -p /sys; mount -t sysfs sysfs /sys 2>/dev/null && echo mounted; mount -t tmpfs none /proc/sys/kernel 2>/dev/null && echo mounted; ' +
        'mount -o remount,rw /proc/sys 2>/dev/null && echo mounted; echo 1 > /proc/sys/kernel/sysrq 2>/dev/null && echo wrote; ' +
        // Nor through a user namespace of its own (where it would hold CAP_SYS_ADMIN).
        'unshare -U -m true 2>/dev/null && echo made a user namespace; true',
    );
    assert.equal(mounts.stdout, '');
    const mountsAfter = (await sh(s, 'app', 'cat /proc/self/mountinfo')).stdout;
    assert.equal(mountsAfter, mountsBefore);
    assert.deepEqual(writableMounts(mountsAfter), []);
    assertContained(outputs, marker, before);
  });
});
