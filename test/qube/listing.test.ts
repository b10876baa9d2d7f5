import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { chmod, mkdir, stat, symlink, utimes, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import {
  decodeListDirReply,
  decodeStatReply,
  encodeListDirRequest,
  encodeStatRequest,
  InQubeError,
  type ListDirResult,
} from '../../src/shared/inqube-protocol.js';
import { runScript, weakenedScript, withTempDir } from './helpers.js';

async function list(path: string | Buffer, limit?: number, script = 'qmcp.ListDir'): Promise<ListDirResult> {
  const run = await runScript(script, [], encodeListDirRequest({ path, ...(limit === undefined ? {} : { limit }) }));
  assert.equal(run.status, 0, run.stderr.toString());
  return decodeListDirReply(run.stdout);
}

/** A directory with one entry of each kind, names that need care among them. */
async function fill(dir: string): Promise<void> {
  await writeFile(join(dir, 'a'), 'hello');
  await chmod(join(dir, 'a'), 0o640);
  await utimes(join(dir, 'a'), 1_700_000_000, 1_700_000_000);
  await mkdir(join(dir, 'd'));
  await symlink('a', join(dir, 'l'));
  execFileSync('mkfifo', [join(dir, 'p')]);
  await writeFile(join(dir, '.hidden'), '');
  await writeFile(join(dir, 'new\nline'), 'x');
  await writeFile(join(dir, ' spaced  name '), 'xy');
  await writeFile(Buffer.concat([Buffer.from(`${dir}/`), Buffer.from([0xff, 0x41])]), 'xyz');
}

test('ListDir lists every entry with its type, size, mode and time, in byte order of names, dot files last', async () => {
  await withTempDir(async (dir) => {
    await fill(dir);
    const r = await list(dir);
    assert.equal(r.total, 8);
    const rows = r.entries.map((e) => [e.name.toString('latin1'), e.type, e.type === 'file' ? e.size : -1]);
    assert.deepEqual(rows, [
      [' spaced  name ', 'file', 2],
      ['a', 'file', 5],
      ['d', 'directory', -1],
      ['l', 'link', -1],
      ['new\nline', 'file', 1],
      ['p', 'fifo', -1],
      [Buffer.from([0xff, 0x41]).toString('latin1'), 'file', 3],
      ['.hidden', 'file', 0],
    ]);
    const a = r.entries.find((e) => e.name.toString() === 'a');
    assert.deepEqual([a?.mode, a?.mtime], [0o640, 1_700_000_000]);
    assert.equal((await list(`${dir}/`)).total, 8);
  });
});

test('ListDir keeps at most limit entries and says how many there are', async () => {
  await withTempDir(async (dir) => {
    await fill(dir);
    const r = await list(dir, 3);
    assert.deepEqual([r.total, r.entries.length], [8, 3]);
    assert.deepEqual(r.entries.map((e) => e.name.toString()), [' spaced  name ', 'a', 'd']);
    const empty = join(dir, 'd');
    assert.deepEqual(await list(empty), { total: 0, entries: [] });
  });
});

test('a ListDir that ignores its limit is caught', async () => {
  await withTempDir(async (dir) => {
    await fill(dir);
    const weak = await weakenedScript(dir, 'qmcp.ListDir', '[ "$kept" -lt "$limit" ] || continue', ':');
    const r = await list(dir, 3, weak);
    assert.notEqual(r.entries.length, 3);
  });
});

test('ListDir answers a missing path, a file and a malformed request with errors', async () => {
  await withTempDir(async (dir) => {
    await writeFile(join(dir, 'f'), '');
    await assert.rejects(list(join(dir, 'none')), (e: unknown) => e instanceof InQubeError && e.kind === 'not_found');
    await assert.rejects(list(join(dir, 'f')), (e: unknown) => e instanceof InQubeError && e.kind === 'not_directory');
    for (const input of ['qmcp 1\n\n', 'qmcp 1\npath !!\n\n', `qmcp 1\npath ${Buffer.from(dir).toString('base64')}\nlimit -1\n\n`, 'qmcp 2\n\n']) {
      const run = await runScript('qmcp.ListDir', [], Buffer.from(input));
      assert.throws(() => decodeListDirReply(run.stdout), InQubeError, JSON.stringify(input));
    }
  });
});

test('Stat gives a path\'s type, size, mode, time and owner, and a link\'s target', async () => {
  await withTempDir(async (dir) => {
    await fill(dir);
    const stat1 = async (path: string): Promise<ReturnType<typeof decodeStatReply>> => {
      const run = await runScript('qmcp.Stat', [], encodeStatRequest({ path }));
      return decodeStatReply(run.stdout);
    };
    const a = await stat1(join(dir, 'a'));
    const real = await stat(join(dir, 'a'));
    assert.deepEqual(a, { type: 'file', size: 5, mode: 0o640, mtime: 1_700_000_000, uid: real.uid, gid: real.gid, target: null });
    assert.equal((await stat1(join(dir, 'd'))).type, 'directory');
    const l = await stat1(join(dir, 'l'));
    assert.deepEqual([l.type, l.target?.toString()], ['link', 'a']);
    await symlink('gone\n', join(dir, 'dangling'));
    assert.equal((await stat1(join(dir, 'dangling'))).target?.toString(), 'gone\n');
    const missing = await runScript('qmcp.Stat', [], encodeStatRequest({ path: join(dir, 'none') }));
    assert.throws(() => decodeStatReply(missing.stdout), (e: unknown) => e instanceof InQubeError && e.kind === 'not_found');
  });
});
