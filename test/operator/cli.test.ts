// Every operator command has --help with its exit codes, rejects an unknown option with
// exit 2, and accepts --root and --qubesd-socket.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const QMCP = join(dirname(fileURLToPath(import.meta.url)), '..', '..', '..', 'bin', 'qmcp.js');

function run(args: string[]): Promise<{ status: number; stdout: string }> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [QMCP, ...args], { stdio: ['ignore', 'pipe', 'ignore'] });
    const out: Buffer[] = [];
    child.stdout.on('data', (c: Buffer) => out.push(c));
    child.on('error', reject);
    child.on('close', (code) => resolve({ status: code ?? -1, stdout: Buffer.concat(out).toString() }));
  });
}

const COMMANDS = [['install'], ['uninstall'], ['doctor'], ['explain'], ['tier'], ['mode'], ['audit', 'verify'], ['audit', 'tail'], ['tombstones'], ['plans']];

test('operator commands: --help names --root, --json and the exit codes; an unknown option exits 2', async () => {
  await Promise.all(
    COMMANDS.map(async (words) => {
      const help = await run(['dom0', ...words, '--help']);
      assert.equal(help.status, 0, words.join(' '));
      assert.match(help.stdout, /--root DIR/, words.join(' '));
      assert.match(help.stdout, /--json/, words.join(' '));
      assert.match(help.stdout, /Exit 0 [^,]+,\s1 [\s\S]+?,\s2 usage\./, words.join(' '));
      assert.equal((await run(['dom0', ...words, '--frobnicate'])).status, 2, words.join(' '));
    }),
  );
});

test('commands that need no qubesd still accept --qubesd-socket', async () => {
  const root = mkdtempSync(join(tmpdir(), 'qmcp-cli-'));
  try {
    const verify = await run(['dom0', 'audit', 'verify', '--root', root, '--qubesd-socket', join(root, 'q.sock'), '--json']);
    assert.notEqual(verify.status, 2);
    const mode = await run(['dom0', 'mode', 'compat', '--root', root, '--qubesd-socket', join(root, 'q.sock'), '--json']);
    assert.equal(mode.status, 1, 'nothing installed: refused, not a usage error');
    assert.match(mode.stdout, /"refused"/);
  } finally {
    rmSync(root, { recursive: true, force: true });
  }
});
