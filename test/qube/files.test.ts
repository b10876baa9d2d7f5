import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdir, readFile, stat, symlink, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import {
  decodeReadFileReply,
  decodeWriteFileReply,
  encodeExecRequest,
  encodeReadFileRequest,
  encodeWriteFileRequest,
  InQubeError,
} from '../../src/shared/inqube-protocol.js';
import type { ReadFileResult, WriteFileRequest } from '../../src/shared/inqube-protocol.js';
import { me, runScript, withTempDir } from './helpers.js';

const weirdName = ' -dash \n newline * $(x) \'q\' é';

async function readVia(path: string, limit?: number, offset?: number): Promise<ReadFileResult> {
  const run = await runScript('qmcp.ReadFile', [], encodeReadFileRequest({ path, ...(limit === undefined ? {} : { limit }), ...(offset === undefined ? {} : { offset }) }));
  assert.equal(run.status, 0, run.stderr.toString());
  return decodeReadFileReply(run.stdout);
}

async function writeVia(request: WriteFileRequest): Promise<number> {
  const run = await runScript('qmcp.WriteFile', [], encodeWriteFileRequest(request));
  assert.equal(run.status, 0, run.stderr.toString());
  return decodeWriteFileReply(run.stdout).size;
}

function allBytes(): Buffer {
  const bytes = Buffer.alloc(512);
  for (let i = 0; i < bytes.length; i++) bytes[i] = i % 256;
  return bytes;
}

test('WriteFile then ReadFile round-trips binary content to a weird name', async () => {
  await withTempDir(async (dir) => {
    const path = join(dir, weirdName);
    const content = Buffer.concat([allBytes(), Buffer.from('\n')]);
    assert.equal(await writeVia({ path, content, mode: 0o600 }), content.length);
    assert.deepEqual(await readFile(path), content);
    assert.equal((await stat(path)).mode & 0o7777, 0o600);
    const read = await readVia(path);
    assert.deepEqual(read.content, content);
    assert.equal(read.size, content.length);
    assert.equal(read.truncated, false);
  });
});

test('WriteFile creates parents only when asked and replaces atomically', async () => {
  await withTempDir(async (dir) => {
    const path = join(dir, 'a', 'b', 'file');
    await assert.rejects(writeVia({ path, content: 'x' }), (e: unknown) => e instanceof InQubeError && e.kind === 'not_found');
    assert.equal(await writeVia({ path, content: 'first', createParents: true }), 5);
    assert.equal(await writeVia({ path, content: '' }), 0);
    assert.equal(await readFile(path, 'utf8'), '');
  });
});

test('WriteFile refuses content over its limit and leaves the old file', async () => {
  await withTempDir(async (dir) => {
    const path = join(dir, 'f');
    await writeFile(path, 'old');
    await assert.rejects(
      writeVia({ path, content: Buffer.alloc(100_000), limit: 1000 }),
      (e: unknown) => e instanceof InQubeError && e.kind === 'too_large',
    );
    assert.equal(await readFile(path, 'utf8'), 'old');
  });
});

test('WriteFile refuses relative paths and directories', async () => {
  await withTempDir(async (dir) => {
    await assert.rejects(writeVia({ path: 'relative', content: 'x' }), InQubeError);
    await assert.rejects(writeVia({ path: dir, content: 'x' }), (e: unknown) => e instanceof InQubeError && e.kind === 'is_directory');
  });
});

test('ReadFile truncates at its limit and reports the full size', async () => {
  await withTempDir(async (dir) => {
    const path = join(dir, 'big');
    await writeFile(path, Buffer.alloc(5000, 0x61));
    const read = await readVia(path, 100);
    assert.equal(read.content.length, 100);
    assert.equal(read.size, 5000);
    assert.equal(read.truncated, true);
  });
});

test('ReadFile pages through a file by offset: every byte once, truncated until the last page', async () => {
  await withTempDir(async (dir) => {
    const path = join(dir, 'big');
    const bytes = Buffer.alloc(10_000);
    for (let i = 0; i < bytes.length; i++) bytes[i] = (i * 7) % 256;
    await writeFile(path, bytes);
    const pages: Buffer[] = [];
    for (let offset = 0; offset < bytes.length; offset += 3000) {
      const page = await readVia(path, 3000, offset);
      assert.equal(page.size, 10_000);
      assert.equal(page.truncated, offset + 3000 < 10_000, `offset ${offset}`);
      pages.push(page.content);
    }
    assert.deepEqual(Buffer.concat(pages), bytes);
    const past = await readVia(path, 10, 20_000);
    assert.deepEqual([past.content.length, past.size, past.truncated], [0, 10_000, false]);
    const exact = await readVia(path, 1000, 9000);
    assert.deepEqual([exact.content.length, exact.truncated], [1000, false]);
  });
});

test('ReadFile refuses a malformed offset', async () => {
  for (const offset of ['-1', 'x', '1e3', '1234567890123456']) {
    const run = await runScript('qmcp.ReadFile', [], Buffer.from(`qmcp 1\npath ${Buffer.from('/etc/hostname').toString('base64')}\noffset ${offset}\n\n`));
    assert.throws(() => decodeReadFileReply(run.stdout), (e: unknown) => e instanceof InQubeError && e.kind === 'bad_request', offset);
  }
});

test('ReadFile reports missing files and directories as errors', async () => {
  await withTempDir(async (dir) => {
    await assert.rejects(readVia(join(dir, 'none')), (e: unknown) => e instanceof InQubeError && e.kind === 'not_found');
    await assert.rejects(readVia(dir), (e: unknown) => e instanceof InQubeError && e.kind === 'is_directory');
    await mkdir(join(dir, 'd'));
    await symlink(join(dir, 'd'), join(dir, 'link'));
    await assert.rejects(readVia(join(dir, 'link')), (e: unknown) => e instanceof InQubeError && e.kind === 'is_directory');
  });
});

test('ReadFile refuses a FIFO instead of blocking on it', async () => {
  await withTempDir(async (dir) => {
    const fifo = join(dir, 'fifo');
    const made = await runScript('qmcp.Exec', [], encodeExecRequest({ argv: ['mkfifo', fifo], user: me }));
    assert.equal(made.status, 0);
    await assert.rejects(readVia(fifo), (e: unknown) => e instanceof InQubeError && e.kind === 'not_regular');
  });
});
