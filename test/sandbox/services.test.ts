import { test } from 'node:test';
import assert from 'node:assert/strict';
import {
  decodeExecReply,
  decodeListDirReply,
  decodeReadFileReply,
  decodeStatReply,
  decodeWriteFileReply,
  encodeExecRequest,
  encodeListDirRequest,
  encodeReadFileRequest,
  encodeStatRequest,
  encodeWriteFileRequest,
} from '../../src/shared/inqube-protocol.js';
import { SandboxError } from '../../src/sim/sandbox/index.js';
import { callService, collect, sh, skipWithoutBwrap, withSandboxes } from './helpers.js';

const skip = skipWithoutBwrap;
const from = { source: 'mcp-control', argument: '' };

test('qmcp.Exec runs as root inside the qube with the qrexec environment', { skip }, async () => {
  await withSandboxes(async (s) => {
    await s.beforeStart('app');
    const request = encodeExecRequest({
      user: 'root',
      shell: 'printf "%s|%s|%s|" "$QREXEC_REMOTE_DOMAIN" "$QREXEC_SERVICE_FULL_NAME" "$(id -u)"; hostname; cat; exit 3',
      stdin: Buffer.from([0, 1, 2]),
    });
    const run = await callService(s, { ...from, qube: 'app', service: 'qmcp.Exec' }, request);
    assert.equal(run.status, 0, run.stderr.toString());
    const result = decodeExecReply(run.stdout);
    assert.equal(result.exitStatus, 3);
    assert.deepEqual(result.stdout.head, Buffer.concat([Buffer.from('mcp-control|qmcp.Exec+|0|app\n'), Buffer.from([0, 1, 2])]));
  });
});

test("qmcp.Exec runs as the qube's default user in its home, as qvm-run, and as root in /root when asked", { skip }, async () => {
  await withSandboxes(async (s) => {
    await s.beforeStart('app');
    const context = 'printf "%s|%s|%s|%s|%s" "$USER" "$LOGNAME" "$HOME" "$SHELL" "$(pwd)"';
    const run = async (request: Parameters<typeof encodeExecRequest>[0]): Promise<string> => {
      const r = await callService(s, { ...from, qube: 'app', service: 'qmcp.Exec' }, encodeExecRequest(request));
      return decodeExecReply(r.stdout).stdout.head.toString();
    };
    assert.equal(await run({ shell: context }), 'user|user|/home/user|/bin/sh|/home/user');
    assert.equal(await run({ shell: context, user: 'root' }), 'root|root|/root|/bin/sh|/root');
    assert.equal(await run({ shell: context, cwd: '/etc', env: ['HOME_TOO=x'] }), 'user|user|/home/user|/bin/sh|/etc');
  });
});

test('the output qmcp.Exec saves stays in the running qube, for qmcp.ReadFile to page through', { skip }, async () => {
  await withSandboxes(async (s) => {
    await s.beforeStart('app');
    const r = await callService(s, { ...from, qube: 'app', service: 'qmcp.Exec' }, encodeExecRequest({ shell: 'seq 1 100000', outputLimit: 100 }));
    const result = decodeExecReply(r.stdout);
    assert.ok(result.saved !== null);
    const whole = Buffer.from(Array.from({ length: 100000 }, (_, i) => `${i + 1}\n`).join(''));
    assert.equal(result.stdout.total, whole.length);
    const page = await callService(s, { ...from, qube: 'app', service: 'qmcp.ReadFile' }, encodeReadFileRequest({ path: `${result.saved}/stdout`, offset: 50, limit: 1000 }));
    const read = decodeReadFileReply(page.stdout);
    assert.deepEqual([read.size, read.truncated], [whole.length, true]);
    assert.deepEqual(read.content, whole.subarray(50, 1050));
  });
});

test('qmcp.ListDir and qmcp.Stat work inside the qube, where the default user has its home', { skip }, async () => {
  await withSandboxes(async (s) => {
    await s.beforeStart('app');
    const list = await callService(s, { ...from, qube: 'app', service: 'qmcp.ListDir' }, encodeListDirRequest({ path: '/home' }));
    assert.deepEqual(decodeListDirReply(list.stdout).entries.map((e) => [e.name.toString(), e.type]), [['user', 'directory']]);
    const stat = await callService(s, { ...from, qube: 'app', service: 'qmcp.Stat' }, encodeStatRequest({ path: '/home' }));
    assert.deepEqual([decodeStatReply(stat.stdout).type, decodeStatReply(stat.stdout).target?.toString()], ['link', 'rw/home']);
  });
});

test('qmcp.WriteFile and qmcp.ReadFile work inside the qube', { skip }, async () => {
  await withSandboxes(async (s) => {
    await s.beforeStart('app');
    const content = Buffer.from([0, 10, 255, 0, 65]);
    const write = await callService(
      s,
      { ...from, qube: 'app', service: 'qmcp.WriteFile' },
      encodeWriteFileRequest({ path: '/home/user/new dir/f\nx', content, createParents: true }),
    );
    assert.equal(decodeWriteFileReply(write.stdout).size, 5);
    const read = await callService(s, { ...from, qube: 'app', service: 'qmcp.ReadFile' }, encodeReadFileRequest({ path: '/rw/home/user/new dir/f\nx' }));
    assert.deepEqual(decodeReadFileReply(read.stdout).content, content);
  });
});

test('services are looked up as SERVICE+ARG, then SERVICE; a missing one is 127', { skip }, async () => {
  await withSandboxes(async (s) => {
    await s.beforeStart('app');
    const setup = await sh(
      s,
      'app',
      'cd /etc/qubes-rpc && printf "#!/bin/sh\\necho specific \\"\\$1\\"\\n" > test.Svc+one && printf "#!/bin/sh\\necho generic \\"\\$1\\"\\n" > test.Svc && chmod 755 test.Svc test.Svc+one',
    );
    assert.equal(setup.status, 0, setup.stderr);
    const one = await callService(s, { ...from, qube: 'app', service: 'test.Svc', argument: 'one' }, Buffer.alloc(0));
    assert.equal(one.stdout.toString(), 'specific one\n');
    const two = await callService(s, { ...from, qube: 'app', service: 'test.Svc', argument: 'two' }, Buffer.alloc(0));
    assert.equal(two.stdout.toString(), 'generic two\n');
    const missing = await callService(s, { ...from, qube: 'app', service: 'test.None' }, Buffer.alloc(0));
    assert.equal(missing.status, 127);
    const sneaky = await callService(s, { ...from, qube: 'app', service: '..' }, Buffer.alloc(0));
    assert.equal(sneaky.status, 127);
  });
});

test('a service call to a halted qube is refused', { skip }, async () => {
  await withSandboxes(async (s) => {
    await assert.rejects(callService(s, { ...from, qube: 'app', service: 'qmcp.Exec' }, Buffer.alloc(0)), SandboxError);
  });
});

test('qvm-copy-to-vm in one qube and qubes.Filecopy in another deliver into QubesIncoming', { skip }, async () => {
  await withSandboxes(async (s) => {
    await s.beforeStart('app');
    await s.beforeStart('app2');
    // qrexec-client-vm is replaced by one that keeps the stream the sender
    // would hand to the router and answers success; the stream then comes
    // out on stdout.
    const pack = await collect(
      s.spawn('app', [
        '/bin/sh',
        '-c',
        'mkdir -p /tmp/fake /home/user/docs && printf "#!/bin/sh\\ncat >/home/user/stream\\necho result 0\\n" > /tmp/fake/qrexec-client-vm && chmod 755 /tmp/fake/qrexec-client-vm && ' +
          'printf "report" > /home/user/docs/r.txt && PATH=/tmp/fake:$PATH qvm-copy-to-vm app2 /home/user/docs && cat /home/user/stream',
      ]),
    );
    assert.equal(pack.status, 0, pack.stderr);
    const receive = await callService(s, { qube: 'app2', service: 'qubes.Filecopy', argument: '', source: 'app' }, Buffer.from(pack.stdout));
    assert.equal(receive.status, 0, receive.stderr.toString());
    assert.equal((await sh(s, 'app2', 'cat /home/user/QubesIncoming/app/docs/r.txt')).stdout, 'report');
  });
});
