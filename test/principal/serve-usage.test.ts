/** `qmcp serve` refuses bad usage with exit 2 and a reason, and a missing simulator with exit 1 and what to do, before it serves anything. */
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { test } from 'node:test';

const QMCP = fileURLToPath(new URL('../../../bin/qmcp.js', import.meta.url));

function serve(args: string[]): Promise<{ status: number | null; stdout: string; stderr: string }> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [QMCP, 'serve', ...args], { stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (b: Buffer) => (stdout += b.toString()));
    child.stderr.on('data', (b: Buffer) => (stderr += b.toString()));
    child.on('error', reject);
    child.on('close', (status) => resolve({ status, stdout, stderr }));
  });
}

test('qmcp serve: bad usage exits 2 with the reason', async () => {
  const cases: [string[], RegExp][] = [
    [['--bogus'], /bogus/],
    [['extra'], /unknown argument: extra/],
    [['--sim'], /--sim/],
    [['--sim', 'd', '--qrexec-client', 'c'], /not both/],
    [['--http', '127.0.0.1:8765'], /--http needs --token-file/],
    [['--http', 'nonsense', '--token-file', 'f'], /HOST:PORT/],
    [['--allowed-host', 'x'], /go with --http/],
    [['--principal', 'mcp-pentest'], /--principal goes with --sim/],
    [['--sim', 'd', '--principal', 'no/name'], /--principal needs a qube name/],
  ];
  for (const [args, reason] of cases) {
    const r = await serve(args);
    assert.equal(r.status, 2, `${args.join(' ')}: ${r.stderr}`);
    assert.match(r.stderr, reason, args.join(' '));
  }
});

test('qmcp serve --sim DIR: no simulator running at DIR exits 1 at once, telling the operator (not the agent) how to start one', async () => {
  const root = mkdtempSync(join(tmpdir(), 'qmcp-serve-'));
  try {
    const empty = join(root, 'empty');
    mkdirSync(empty);
    // what a simulator killed without its cleanup leaves: state, and a socket nobody listens on
    const stopped = join(root, 'stopped');
    mkdirSync(join(stopped, 'state'), { recursive: true });
    mkdirSync(join(stopped, 'qrexec'));
    writeFileSync(join(stopped, 'qrexec', 'mcp-control.sock'), '');
    const cases: [string, RegExp][] = [
      [join(root, 'missing'), /no simulated host at \S+missing: the directory does not exist/],
      [empty, /\S+empty holds no simulated host/],
      [stopped, /the simulated host at \S+stopped is not running \(\S+mcp-control\.sock: ECONNREFUSED\)/],
    ];
    for (const [dir, reason] of cases) {
      const r = await serve(['--sim', dir]);
      assert.equal(r.status, 1, `${dir}: ${r.stderr}`);
      assert.match(r.stderr, reason);
      assert.ok(r.stderr.includes(`qmcp sim start --dir ${dir}`), r.stderr);
      assert.equal(r.stdout, '', 'nothing on the MCP channel');
    }
  } finally {
    rmSync(root, { recursive: true, force: true });
  }
});
