/** `qmcp serve` refuses bad usage with exit 2 and a reason, before it serves anything. */
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { test } from 'node:test';

const QMCP = fileURLToPath(new URL('../../../bin/qmcp.js', import.meta.url));

function serve(args: string[]): Promise<{ status: number | null; stderr: string }> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [QMCP, 'serve', ...args], { stdio: ['ignore', 'ignore', 'pipe'] });
    let stderr = '';
    child.stderr.on('data', (b: Buffer) => (stderr += b.toString()));
    child.on('error', reject);
    child.on('close', (status) => resolve({ status, stderr }));
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
  ];
  for (const [args, reason] of cases) {
    const r = await serve(args);
    assert.equal(r.status, 2, `${args.join(' ')}: ${r.stderr}`);
    assert.match(r.stderr, reason, args.join(' '));
  }
});
