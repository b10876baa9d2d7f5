// The chain's head is read from the log's tail: a short read first, the whole bound
// only when the last line is longer than that read.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { MAX_LINE_BYTES } from '../../src/dom0/audit/entry.js';
import { TornTailError, lastLine } from '../../src/dom0/audit/files.js';
import { weakenedFile } from '../../verify/weakened-module.js';

type LastLine = typeof lastLine;

async function cases(read: LastLine): Promise<void> {
  const dir = await mkdtemp(join(tmpdir(), 'qmcp-last-line-'));
  try {
    const file = join(dir, 'log');
    const long = 'x'.repeat(10_000);
    await writeFile(file, `a\n${long}\n`);
    assert.equal(await read(file), long, 'a last line longer than the first read');
    await writeFile(file, `${long}\n`);
    assert.equal(await read(file), long, 'a file of one long line');
    await writeFile(file, 'a\nb\n');
    assert.equal(await read(file), 'b');
    await writeFile(file, `a\n${'x'.repeat(MAX_LINE_BYTES + 1)}\n`);
    await assert.rejects(read(file), TornTailError, 'a line past the bound');
    await writeFile(file, `a\n${long}`);
    await assert.rejects(read(file), TornTailError, 'a torn last line');
    await writeFile(file, '');
    assert.equal(await read(file), null);
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
}

test('the last line is read whole whatever its length up to the bound, and a longer or torn one is refused', async () => {
  await cases(lastLine);
});

test('weakened: a tail read only as far as the first read takes a long last line for an over-long one', async () => {
  const weak = weakenedFile('dom0/audit/files', '[FIRST_TAIL_BYTES, MAX_LINE_BYTES + 1]', '[FIRST_TAIL_BYTES]');
  const { lastLine: weakLastLine } = (await import(pathToFileURL(weak).href)) as { lastLine: LastLine };
  await assert.rejects(cases(weakLastLine), /a last line longer than the first read|over-long/);
});
