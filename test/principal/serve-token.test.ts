/** `qmcp serve --http` re-reads its token file on SIGHUP; a bad new file keeps the old token. */
import assert from 'node:assert/strict';
import { spawn, type ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { chmod, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { request } from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { after, before, describe, it } from 'node:test';
import { until } from './fake-qrexec.js';

const QMCP = fileURLToPath(new URL('../../../bin/qmcp.js', import.meta.url));
const LIST = JSON.stringify({ jsonrpc: '2.0', id: 1, method: 'tools/list', params: {} });

function post(port: number, token: string): Promise<number> {
  return new Promise((resolve, reject) => {
    const req = request(
      {
        host: '127.0.0.1',
        port,
        path: '/mcp',
        method: 'POST',
        headers: { authorization: `Bearer ${token}`, 'content-type': 'application/json', accept: 'application/json, text/event-stream' },
      },
      (res) => {
        res.resume();
        res.on('end', () => resolve(res.statusCode ?? 0));
      },
    );
    req.on('error', reject);
    req.end(LIST);
  });
}

describe('qmcp serve --http and SIGHUP', () => {
  let dir: string;
  let file: string;
  let child: ChildProcess;
  let stderr = '';
  let port = 0;

  const writeToken = async (token: string, mode = 0o600): Promise<void> => {
    await writeFile(file, token + '\n', { mode: 0o600 });
    await chmod(file, mode);
  };
  const hup = async (expect: string): Promise<void> => {
    const seen = stderr.split(expect).length;
    child.kill('SIGHUP');
    await until(() => stderr.split(expect).length > seen, expect);
  };

  before(async () => {
    dir = await mkdtemp(join(tmpdir(), 'qmcp-serve-token-'));
    file = join(dir, 'token');
    await writeToken('a'.repeat(32));
    child = spawn(process.execPath, [QMCP, 'serve', '--http', '127.0.0.1:0', '--token-file', file, '--qrexec-client', join(dir, 'none')], {
      stdio: ['ignore', 'ignore', 'pipe'],
    });
    child.stderr?.on('data', (c: Buffer) => (stderr += c.toString()));
    await until(() => /listening on http:\/\/127\.0\.0\.1:(\d+)\//.test(stderr), 'the server to listen');
    port = Number(/listening on http:\/\/127\.0\.0\.1:(\d+)\//.exec(stderr)?.[1]);
  });
  after(async () => {
    if (child.exitCode === null) {
      const exited = new Promise((r) => child.once('exit', r));
      child.kill('SIGTERM');
      await exited;
    }
    await rm(dir, { recursive: true, force: true });
  });

  it('accepts only the new token after SIGHUP', async () => {
    const old = 'a'.repeat(32);
    const fresh = randomBytes(32).toString('hex');
    assert.equal(await post(port, old), 200);
    await writeToken(fresh);
    await hup('token reloaded');
    assert.equal(await post(port, old), 401);
    assert.equal(await post(port, fresh), 200);
  });

  it('keeps the current token when the new file is bad, and says why', async () => {
    const current = randomBytes(32).toString('hex');
    await writeToken(current);
    await hup('token reloaded');
    await writeToken(randomBytes(32).toString('hex'), 0o644);
    await hup('token not reloaded');
    assert.match(stderr, /keeping the old one: the token file must be readable by its owner only/);
    await writeToken('short');
    await hup('at least 128 bits');
    await rm(file);
    await hup('cannot open the token file');
    assert.equal(await post(port, current), 200);
    assert.equal(child.exitCode, null);
  });
});
