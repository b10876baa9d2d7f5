import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { request } from 'node:http';
import { chmod, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { Client, StreamableHTTPClientTransport } from '@modelcontextprotocol/client';
import { readTokenFile, TokenFileError } from '../../src/principal/http-guard.js';
import { startHttp, type RunningHttp } from '../../src/principal/http.js';
import { QrexecRunner } from '../../src/principal/qrexec.js';
import { isAlive, makeFakeQrexec, sleeperPids, until, type FakeQrexec } from './fake-qrexec.js';

interface Raw {
  status: number;
  headers: Record<string, string | string[] | undefined>;
  body: string;
}

/** node:http rather than fetch, so Host can be set freely. */
function raw(port: number, headers: Record<string, string>, body = '', method = 'POST'): Promise<Raw> {
  return new Promise((resolve, reject) => {
    const req = request({ host: '127.0.0.1', port, path: '/mcp', method, headers: { 'content-type': 'application/json', accept: 'application/json, text/event-stream', ...headers } }, (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (c: Buffer) => chunks.push(c));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, headers: res.headers, body: Buffer.concat(chunks).toString() }));
    });
    req.on('error', reject);
    req.end(body);
  });
}

const LIST = JSON.stringify({ jsonrpc: '2.0', id: 1, method: 'tools/list', params: {} });

describe('qmcp serve over Streamable HTTP', () => {
  let fake: FakeQrexec;
  let http: RunningHttp;
  let runner: QrexecRunner;
  const token = randomBytes(32).toString('hex');
  let host: string;
  const auth = (): Record<string, string> => ({ authorization: `Bearer ${token}`, host });

  before(async () => {
    fake = await makeFakeQrexec();
    runner = new QrexecRunner({ client: fake.client, env: fake.env });
    http = await startHttp(runner, { host: '127.0.0.1', port: 0, token, maxBodyBytes: 64 * 1024 });
    host = `127.0.0.1:${http.port}`;
  });
  after(async () => {
    runner.close();
    await http.close();
    await fake.cleanup();
  });

  it('serves the SDK client with the bearer token', async () => {
    const client = new Client({ name: 'test', version: '0' });
    await client.connect(
      new StreamableHTTPClientTransport(new URL(`http://${host}/mcp`), { requestInit: { headers: { Authorization: `Bearer ${token}` } } }),
    );
    const { tools } = await client.listTools();
    assert.equal(tools[0]?.name, 'qube_list');
    const r = await client.callTool({ name: 'qube_state', arguments: { qube: 'ai-work' } });
    assert.deepEqual(r.structuredContent, { qube: 'ai-work', state: 'Running' });
    await client.close();
  });

  for (const era of ['legacy', 'modern'] as const) {
    it(`kills the child when a ${era} client cancels a call`, async () => {
      const client = new Client({ name: 'test', version: '0' }, era === 'modern' ? { versionNegotiation: { mode: { pin: '2026-07-28' } } } : {});
      await client.connect(
        new StreamableHTTPClientTransport(new URL(`http://${host}/mcp`), { requestInit: { headers: { Authorization: `Bearer ${token}` } } }),
      );
      const { tools } = await client.listTools();
      assert.equal(tools[0]?.name, 'qube_list');
      const known = new Set(await sleeperPids(fake.dir));
      const ac = new AbortController();
      const pending = client.callTool({ name: 'qube_run', arguments: { qube: 'ai-sleep', argv: ['sleep', '1000'] } }, { signal: ac.signal });
      const settled = assert.rejects(pending);
      let pid = 0;
      await until(async () => {
        pid = (await sleeperPids(fake.dir)).find((p) => !known.has(p)) ?? 0;
        return pid !== 0;
      }, 'the child to start');
      ac.abort();
      await settled;
      await until(() => !isAlive(pid), 'the cancelled child to die');
      await until(() => runner.active === 0, 'the runner to forget the child');
      await client.close();
    });
  }

  it('answers a good raw request, with no CORS headers', async () => {
    const r = await raw(http.port, { ...auth(), 'mcp-protocol-version': '2025-11-25' }, LIST);
    assert.equal(r.status, 200, r.body);
    assert.ok(!Object.keys(r.headers).some((h) => h.startsWith('access-control-')));
  });

  it('answers 401 without a token, with a wrong one, and on every method', async () => {
    assert.equal((await raw(http.port, { host }, LIST)).status, 401);
    assert.equal((await raw(http.port, { host, authorization: `Bearer ${token}x` }, LIST)).status, 401);
    assert.equal((await raw(http.port, { host, authorization: `Basic ${token}` }, LIST)).status, 401);
    assert.equal((await raw(http.port, { host }, '', 'GET')).status, 401);
    assert.equal((await raw(http.port, { host }, '', 'DELETE')).status, 401);
    const r = await raw(http.port, { host }, LIST);
    assert.equal(r.headers['www-authenticate'], 'Bearer');
  });

  it('answers 403 to a wrong Host alone and to any Origin alone', async () => {
    assert.equal((await raw(http.port, { ...auth(), host: `evil.example:${http.port}` }, LIST)).status, 403);
    assert.equal((await raw(http.port, { ...auth(), origin: 'http://evil.example' }, LIST)).status, 403);
    assert.equal((await raw(http.port, { ...auth(), origin: `http://${host}` }, LIST)).status, 403);
  });

  it('answers 413 to an oversize body', async () => {
    const big = JSON.stringify({ jsonrpc: '2.0', id: 1, method: 'tools/list', params: { pad: 'x'.repeat(100 * 1024) } });
    assert.equal((await raw(http.port, auth(), big)).status, 413);
  });

  it('serves no OAuth metadata', async () => {
    const r = await new Promise<number>((resolve, reject) => {
      request({ host: '127.0.0.1', port: http.port, path: '/.well-known/oauth-protected-resource', headers: auth() }, (res) => {
        res.resume();
        resolve(res.statusCode ?? 0);
      })
        .on('error', reject)
        .end();
    });
    assert.equal(r, 404);
  });

  it('refuses a token file others can read, and a short token', async () => {
    const path = join(fake.dir, 'token');
    await writeFile(path, token + '\n');
    await chmod(path, 0o644);
    assert.throws(() => readTokenFile(path), TokenFileError);
    await chmod(path, 0o600);
    assert.equal(readTokenFile(path), token);
    await writeFile(path, 'abc123\n');
    assert.throws(() => readTokenFile(path), TokenFileError);
  });
});
