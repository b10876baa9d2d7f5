/**
 * qrexec's TCP services as the simulated qube's agent reads them: the three
 * link forms of libqrexec, its port check, numeric hosts only.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtemp, rm, symlink, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { tcpServiceAddress } from '../../src/sim/sandbox/tcp-service.js';
import { parseConnectSpec } from '../../src/sim/qrexec/connect-tcp.js';

test('a link to /dev/tcp is a TCP service; the argument gives what the link leaves out', async () => {
  const dir = await mkdtemp(join(tmpdir(), 'qmcp-tcp-service-'));
  try {
    const link = async (name: string, target: string): Promise<string> => {
      await symlink(target, join(dir, name));
      return join(dir, name);
    };
    const host = await link('qubes.ConnectTCP', '/dev/tcp/127.0.0.1');
    const fixed = await link('fixed', '/dev/tcp/127.0.0.1/22');
    const both = await link('both', '/dev/tcp');
    const elsewhere = await link('elsewhere', '/usr/bin/true');
    await writeFile(join(dir, 'plain'), '#!/bin/sh\n');

    assert.deepEqual(await tcpServiceAddress(host, '8080'), { host: '127.0.0.1', port: 8080 });
    assert.deepEqual(await tcpServiceAddress(host, '65535'), { host: '127.0.0.1', port: 65535 });
    assert.deepEqual(await tcpServiceAddress(fixed, ''), { host: '127.0.0.1', port: 22 });
    assert.deepEqual(await tcpServiceAddress(both, '10.0.0.1+80'), { host: '10.0.0.1', port: 80 });
    assert.deepEqual(await tcpServiceAddress(both, '++1+80'), { host: '::1', port: 80 });
    // what libqrexec refuses: the call fails, no connection is tried
    for (const port of ['0', '08080', '65536', '123456', '', '80x', '-1']) assert.equal(await tcpServiceAddress(host, port), null, `port ${JSON.stringify(port)}`);
    assert.equal(await tcpServiceAddress(fixed, '80'), null, 'an argument to a link that names its port');
    assert.equal(await tcpServiceAddress(both, 'localhost+80'), null, 'a host name');
    assert.equal(await tcpServiceAddress(both, 'a_b+80'), null, 'an underscore');
    assert.equal(await tcpServiceAddress(both, '80'), null, 'no host');
    // anything else is an ordinary service
    assert.equal(await tcpServiceAddress(elsewhere, '80'), undefined);
    assert.equal(await tcpServiceAddress(join(dir, 'plain'), '80'), undefined);
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
});

test("qvm-connect-tcp's argument, as Qubes' script reads it", () => {
  assert.deepEqual(parseConnectSpec('9080:ai-b:8080'), { localPort: 9080, target: 'ai-b', port: 8080 });
  assert.deepEqual(parseConnectSpec(':ai-b:8080'), { localPort: 8080, target: 'ai-b', port: 8080 });
  assert.equal(parseConnectSpec('9080:ai-b:'), 'Please provide PORT');
  assert.equal(parseConnectSpec('9080:ai-b:70000'), 'Invalid port provided');
  assert.equal(parseConnectSpec('0:ai-b:80'), 'Invalid port provided');
  assert.equal(parseConnectSpec('9080::80'), 'Please provide the target qube');
});
