import { test } from 'node:test';
import assert from 'node:assert/strict';
import { chmod, mkdir, readFile, readdir, stat, symlink, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { decodeCopyToReply, encodeCopyToRequest, InQubeError } from '../../src/shared/inqube-protocol.js';
import { qubeDir, runScript, shell, withTempDir } from './helpers.js';

// A stand-in for qrexec-client-vm that hands the stream to the receiver
// locally, as the router would in the target qube.
async function fakeQrexec(dir: string, home: string): Promise<Record<string, string>> {
  const bin = join(dir, 'bin');
  await mkdir(bin);
  const client = join(bin, 'qrexec-client-vm');
  await writeFile(
    client,
    `#!/bin/sh\n[ "$2" = qubes.Filecopy ] || exit 127\necho "$1" >>"${dir}/targets"\n` +
      `QREXEC_REMOTE_DOMAIN=work QMCP_INCOMING_HOME="${home}" exec ${shell} "${join(qubeDir, 'qubes.Filecopy')}"\n`,
  );
  await chmod(client, 0o755);
  await writeFile(join(bin, 'qvm-copy-to-vm'), `#!/bin/sh\nexec ${shell} "${join(qubeDir, 'qvm-copy-to-vm')}" "$@"\n`);
  await chmod(join(bin, 'qvm-copy-to-vm'), 0o755);
  return { PATH: `${bin}:${process.env['PATH'] ?? '/usr/bin:/bin'}` };
}

test('qvm-copy-to-vm and qubes.Filecopy copy files and trees into QubesIncoming/SOURCE', async () => {
  await withTempDir(async (dir) => {
    const home = join(dir, 'home');
    const env = await fakeQrexec(dir, home);
    const src = join(dir, 'src');
    await mkdir(join(src, 'tree', 'sub'), { recursive: true });
    const binary = Buffer.from([0, 1, 2, 10, 0, 255, 10]);
    await writeFile(join(src, 'tree', 'sub', 'bin\nary'), binary);
    await writeFile(join(src, 'tree', '.hidden'), 'h');
    await writeFile(join(src, '-odd name'), 'odd');
    await chmod(join(src, '-odd name'), 0o751);
    const run = await runScript('qvm-copy-to-vm', ['target-qube', join(src, 'tree') + '/', join(src, '-odd name')], Buffer.alloc(0), env);
    assert.equal(run.status, 0, run.stderr.toString());
    const incoming = join(home, 'QubesIncoming', 'work');
    assert.deepEqual(await readFile(join(incoming, 'tree', 'sub', 'bin\nary')), binary);
    assert.equal(await readFile(join(incoming, 'tree', '.hidden'), 'utf8'), 'h');
    assert.equal(await readFile(join(incoming, '-odd name'), 'utf8'), 'odd');
    assert.equal((await stat(join(incoming, '-odd name'))).mode & 0o777, 0o751);
    assert.equal(await readFile(join(dir, 'targets'), 'utf8'), 'target-qube\n');
    // A second copy of the same file is refused rather than overwriting it.
    const again = await runScript('qvm-copy-to-vm', ['target-qube', join(src, '-odd name')], Buffer.alloc(0), env);
    assert.notEqual(again.status, 0);
    assert.match(again.stderr.toString(), /already exists/);
  });
});

function stream(entries: string[], body = ''): Buffer {
  return Buffer.from(`qmcp-filecopy 1\n${entries.join('\n')}\n${body}end\n`);
}
const b64 = (s: string): string => Buffer.from(s).toString('base64');

test('qubes.Filecopy refuses absolute names, .. components and symbolic links', async () => {
  await withTempDir(async (dir) => {
    const home = join(dir, 'home');
    const env = { QREXEC_REMOTE_DOMAIN: 'work', QMCP_INCOMING_HOME: home };
    for (const name of ['/etc/passwd', '../escape', 'a/../../escape', '.', 'a//b', '']) {
      const run = await runScript('qubes.Filecopy', [], stream([`file ${b64(name)} 644 1`], 'x'), env);
      assert.notEqual(run.status, 0, name);
    }
    const outside = join(dir, 'outside');
    await mkdir(outside);
    await symlink(outside, join(home, 'QubesIncoming', 'work', 'link'));
    const run = await runScript('qubes.Filecopy', [], stream([`file ${b64('link/f')} 644 1`], 'x'), env);
    assert.notEqual(run.status, 0);
    assert.deepEqual(await readdir(outside), []);
    assert.deepEqual((await readdir(join(home, 'QubesIncoming', 'work'))).sort(), ['link']);
  });
});

test('qubes.Filecopy refuses an unknown source and a short stream', async () => {
  await withTempDir(async (dir) => {
    const home = join(dir, 'home');
    const noSource = await runScript('qubes.Filecopy', [], stream([]), { QMCP_INCOMING_HOME: home });
    assert.notEqual(noSource.status, 0);
    const short = await runScript('qubes.Filecopy', [], Buffer.from(`qmcp-filecopy 1\nfile ${b64('f')} 644 10\nabc`), {
      QREXEC_REMOTE_DOMAIN: 'work',
      QMCP_INCOMING_HOME: home,
    });
    assert.notEqual(short.status, 0);
  });
});

test('qmcp.CopyTo+TARGET reports success and failure of qvm-copy-to-vm', async () => {
  await withTempDir(async (dir) => {
    const home = join(dir, 'home');
    const env = await fakeQrexec(dir, home);
    await writeFile(join(dir, 'f'), 'content');
    const ok = await runScript('qmcp.CopyTo', ['dump'], encodeCopyToRequest({ paths: [join(dir, 'f')] }), env);
    assert.equal(ok.status, 0);
    decodeCopyToReply(ok.stdout);
    assert.equal(await readFile(join(home, 'QubesIncoming', 'work', 'f'), 'utf8'), 'content');
    const again = await runScript('qmcp.CopyTo', ['dump'], encodeCopyToRequest({ paths: [join(dir, 'f')] }), env);
    assert.throws(() => decodeCopyToReply(again.stdout), (e: unknown) => e instanceof InQubeError && e.code === 'copy_failed' && /already exists/.test(e.message));
    const missing = await runScript('qmcp.CopyTo', ['dump'], encodeCopyToRequest({ paths: [join(dir, 'none')] }), env);
    assert.throws(() => decodeCopyToReply(missing.stdout), (e: unknown) => e instanceof InQubeError && e.code === 'not_found');
    const badTarget = await runScript('qmcp.CopyTo', ['a b'], encodeCopyToRequest({ paths: [join(dir, 'f')] }), env);
    assert.throws(() => decodeCopyToReply(badTarget.stdout), InQubeError);
  });
});
