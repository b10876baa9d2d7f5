import { test } from 'node:test';
import assert from 'node:assert/strict';
import { chmodSync, existsSync, readdirSync, writeFileSync } from 'node:fs';
import { homedir } from 'node:os';
import { join } from 'node:path';
import { QubeSandboxes, SandboxError, SandboxUnavailableError } from '../../src/sim/sandbox/index.js';
import { callService, collect, FLEET, sh, withTempDir, skipWithoutBwrap, withSandboxes } from './helpers.js';

const repository = join(import.meta.dirname, '..', '..', '..');

test('a command cannot see the host home, this repository or the host /tmp', { skip: skipWithoutBwrap }, async () => {
  await withSandboxes(async (s, dir) => {
    await s.beforeStart('app');
    // The host home may share its path with the qube's own (/root), so look
    // for what is in it rather than for the directory.
    const home = readdirSync(homedir()).map((entry) => join(homedir(), entry));
    const paths = [...home, repository, join(repository, 'package.json'), dir];
    assert.ok(existsSync(join(repository, 'package.json')));
    const script = 'for p in "$@"; do if [ -e "$p" ]; then echo "visible $p"; fi; done; ls -A /tmp';
    const result = await collect(s.spawn('app', ['/bin/sh', '-c', script, 'sh', ...paths]));
    assert.equal(result.status, 0, result.stderr);
    assert.equal(result.stdout, '');
  });
});

test('a command cannot write outside its qube', { skip: skipWithoutBwrap }, async () => {
  await withSandboxes(async (s) => {
    await s.beforeStart('app');
    // /usr itself is on the qube's root file system, as in Qubes; what is in it comes from the host, read-only.
    const ro = await sh(s, 'app', 'touch /usr/qmcp-probe; for d in /bin /usr/bin /lib /usr/lib /usr/share; do touch "$d/qmcp-probe" 2>/dev/null && echo "wrote $d"; done; true');
    assert.equal(ro.stdout, '');
    const remount = await sh(s, 'app', 'mount -o remount,rw,bind /usr 2>/dev/null && touch /usr/qmcp-probe 2>/dev/null && echo escaped; true');
    assert.equal(remount.stdout, '');
    assert.equal(existsSync('/usr/qmcp-probe'), false);
    const marker = `qmcp-probe-${process.pid}`;
    const rw = await sh(s, 'app', `echo x > /etc/${marker} && echo x > /var/${marker} && echo x > /tmp/${marker} && echo ok`);
    assert.equal(rw.stdout, 'ok\n');
    for (const d of ['/etc', '/var', '/tmp']) assert.equal(existsSync(join(d, marker)), false);
  });
});

test('a qube has no network but loopback', { skip: skipWithoutBwrap }, async () => {
  await withSandboxes(async (s) => {
    await s.beforeStart('app');
    const result = await sh(s, 'app', "tail -n +3 /proc/net/dev | cut -d: -f1 | tr -d ' '");
    assert.equal(result.status, 0, result.stderr);
    assert.deepEqual(result.stdout.split('\n').filter(Boolean), ['lo']);
  });
});

test('commands run as root with the qube name as host name, in /etc/hostname too (not its template\'s)', { skip: skipWithoutBwrap }, async () => {
  await withSandboxes(async (s) => {
    await s.beforeStart('app');
    const result = await sh(s, 'app', 'id -u; hostname; echo "$HOME"; cat /etc/hostname; grep -c app /etc/hosts');
    assert.equal(result.stdout, '0\napp\n/root\napp\n1\n');
  });
});

test('a halted qube runs nothing', { skip: skipWithoutBwrap }, async () => {
  await withSandboxes(async (s) => {
    assert.throws(() => s.spawn('app', ['true']), SandboxError);
    await s.beforeStart('app');
    await s.afterStop('app');
    assert.throws(() => s.spawn('app', ['true']), /not running/);
  });
});

test('without bubblewrap, a qube starts but running anything says how to install it', async () => {
  await withTempDir(async (dir) => {
    const s = new QubeSandboxes({ dir, lookup: (n) => FLEET[n], bwrap: null });
    assert.equal(s.available, false);
    await s.beforeStart('app');
    assert.throws(
      () => s.spawn('app', ['true']),
      (e: unknown) => e instanceof SandboxUnavailableError && /apt-get install bubblewrap/.test(e.message) && /dnf install bubblewrap/.test(e.message),
    );
    const run = await callService(s, { qube: 'app', service: 'qmcp.Exec', argument: '', source: 'mcp-control' }, Buffer.from('x'));
    assert.equal(run.status, 125);
    assert.match(run.stderr.toString(), /apt-get install bubblewrap.*dnf install bubblewrap/);
    await s.afterStop('app');
  });
});

test('a bubblewrap too old to limit volume sizes runs nothing, and says which version is needed', async () => {
  await withTempDir(async (dir) => {
    const old = join(dir, 'bwrap');
    writeFileSync(old, '#!/bin/sh\necho "usage: bwrap [OPTIONS...] [--] COMMAND"\necho "    --tmpfs DEST"\n');
    chmodSync(old, 0o755);
    const s = new QubeSandboxes({ dir, lookup: (n) => FLEET[n], bwrap: old });
    assert.equal(s.available, false);
    await s.beforeStart('app');
    assert.throws(() => s.spawn('app', ['true']), (e: unknown) => e instanceof SandboxUnavailableError && /too old.*0\.7\.0 or newer/.test(e.message));
    const run = await callService(s, { qube: 'app', service: 'qmcp.Exec', argument: '', source: 'mcp-control' }, Buffer.from('x'));
    assert.equal(run.status, 125);
    assert.match(run.stderr.toString(), /too old/);
    await s.afterStop('app');
  });
});
