import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { chmod, lstat, mkdir, readFile, readdir, readlink, stat, symlink, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { decodeCopyToReply, encodeCopyToRequest, InQubeError, SINK_PUSH } from '../../src/shared/inqube-protocol.js';
import { qubeDir, runScript, shell, weakenedScript, withTempDir } from './helpers.js';

// A stand-in for qrexec-client-vm that hands the stream to the receiver
// locally, as the router would in the target qube: qubes.Filecopy[+ARG] to
// the simulator's receiver, qmcp.SinkPush[+ARG] to the sink service for
// targets named sink*, refused ("Request refused", 126) for any other target.
/** A push's name as the argument of a call line. */
const SINK_PUSH_IN = new RegExp(`\\+${SINK_PUSH.source.slice(1, -1)}$`);

async function fakeQrexec(dir: string, home: string, sinkHome = join(dir, 'sink-home'), sinkScript = join(qubeDir, 'qmcp.SinkPush')): Promise<Record<string, string>> {
  const bin = join(dir, 'bin');
  await mkdir(bin);
  const client = join(bin, 'qrexec-client-vm');
  await writeFile(
    client,
    `#!/bin/sh\necho "$1 $2" >>"${dir}/calls"\n` +
      `case $2 in\n` +
      `  qubes.Filecopy) set -- ;;\n` +
      `  qubes.Filecopy+*) set -- "\${2#qubes.Filecopy+}" ;;\n` +
      `  qmcp.SinkPush | qmcp.SinkPush+*) case $1 in sink*) QREXEC_SERVICE_ARGUMENT="\${2#qmcp.SinkPush}" QREXEC_SERVICE_ARGUMENT="\${QREXEC_SERVICE_ARGUMENT#+}" QREXEC_REMOTE_DOMAIN=work QMCP_INCOMING_HOME="${sinkHome}" exec ${shell} "${sinkScript}" ;; esac\n` +
      `    cat >/dev/null; echo 'Request refused' >&2; exit 126 ;;\n` +
      `  *) exit 127 ;;\n` +
      `esac\n` +
      `QREXEC_REMOTE_DOMAIN=work QMCP_INCOMING_HOME="${home}" exec ${shell} "${join(qubeDir, 'qubes.Filecopy')}" "$@"\n`,
  );
  await chmod(client, 0o755);
  await writeFile(join(bin, 'qvm-copy-to-vm'), `#!/bin/sh\nexec ${shell} "${join(qubeDir, 'qvm-copy-to-vm')}" "$@"\n`);
  await chmod(join(bin, 'qvm-copy-to-vm'), 0o755);
  return { PATH: `${bin}:${process.env['PATH'] ?? '/usr/bin:/bin'}`, QMCP_SERVICES_DIR: qubeDir };
}

test('qvm-copy-to-vm and qubes.Filecopy copy files, trees and links into QubesIncoming/SOURCE', async () => {
  await withTempDir(async (dir) => {
    const home = join(dir, 'home');
    const env = await fakeQrexec(dir, home);
    const src = join(dir, 'src');
    await mkdir(join(src, 'tree', 'sub'), { recursive: true });
    const binary = Buffer.from([0, 1, 2, 10, 0, 255, 10]);
    await writeFile(join(src, 'tree', 'sub', 'binary'), binary);
    await writeFile(join(src, 'tree', '.hidden'), 'h');
    await symlink('sub/binary', join(src, 'tree', 'link'));
    await chmod(join(src, 'tree', 'sub'), 0o750);
    await writeFile(join(src, '-odd name'), 'odd');
    await chmod(join(src, '-odd name'), 0o751);
    const run = await runScript('qvm-copy-to-vm', ['target-qube', join(src, 'tree') + '/', join(src, '-odd name')], Buffer.alloc(0), env);
    assert.equal(run.status, 0, run.stderr.toString());
    const incoming = join(home, 'QubesIncoming', 'work');
    assert.deepEqual(await readFile(join(incoming, 'tree', 'sub', 'binary')), binary);
    assert.equal(await readFile(join(incoming, 'tree', '.hidden'), 'utf8'), 'h');
    assert.equal(await readlink(join(incoming, 'tree', 'link')), 'sub/binary');
    assert.equal(await readFile(join(incoming, '-odd name'), 'utf8'), 'odd');
    assert.equal((await stat(join(incoming, '-odd name'))).mode & 0o7777, 0o751);
    // a directory's mode comes with its second entry, after its contents
    assert.equal((await stat(join(incoming, 'tree', 'sub'))).mode & 0o7777, 0o750);
    assert.equal(await readFile(join(dir, 'calls'), 'utf8'), 'target-qube qubes.Filecopy\n');
    // A second copy of the same file is refused rather than overwriting it, in qfile-agent's words.
    const again = await runScript('qvm-copy-to-vm', ['target-qube', join(src, '-odd name')], Buffer.alloc(0), env);
    assert.equal(again.status, 1);
    assert.equal(
      again.stderr.toString(),
      'qfile-agent: Fatal error: A file named "-odd name" already exists in QubesIncoming dir (error type: File exists)\n',
    );
  });
});

test('qvm-copy-to-vm sends names Qubes refuses to qubes.Filecopy+allow-all-names, as qvm-copy does', async () => {
  await withTempDir(async (dir) => {
    const home = join(dir, 'home');
    const env = await fakeQrexec(dir, home);
    await mkdir(join(dir, 'src'));
    await writeFile(join(dir, 'src', 'bin\nary'), 'x');
    const run = await runScript('qvm-copy-to-vm', ['target-qube', join(dir, 'src')], Buffer.alloc(0), env);
    assert.equal(run.status, 0, run.stderr.toString());
    assert.equal(await readFile(join(home, 'QubesIncoming', 'work', 'src', 'bin\nary'), 'utf8'), 'x');
    assert.equal(await readFile(join(dir, 'calls'), 'utf8'), 'target-qube qubes.Filecopy+allow-all-names\n');
  });
});

const b64 = (s: string | Buffer): string => Buffer.from(s).toString('base64');

// Entries of a hand-made qmcp-filecopy stream.
const fileEntry = (name: string | Buffer, mode: string, content = 'x'): string => `file ${b64(name)} ${mode} ${Buffer.byteLength(content, 'latin1')}\n${content}`;
const dirEntry = (name: string | Buffer, mode = '755'): string => `dir ${b64(name)} ${mode}\n`;
const linkEntry = (name: string, target: string): string => `link ${b64(name)} ${b64(target)}\n`;

function stream(...entries: string[]): Buffer {
  return Buffer.from(`qmcp-filecopy 1\n${entries.join('')}end\n`, 'latin1');
}

interface Received {
  status: number | null;
  code: string;
  last: Buffer;
  stdout: string;
  stderr: string;
}

/** The simulated receiver's answer to a hand-made stream: qfile-unpacker's code and last name. */
async function receive(home: string, input: Buffer, args: string[] = []): Promise<Received> {
  const run = await runScript('qubes.Filecopy', args, input, { QREXEC_REMOTE_DOMAIN: 'work', QMCP_INCOMING_HOME: home });
  const m = /^result (-?\d+) ([A-Za-z0-9+/=]*)\n$/.exec(run.stdout.toString());
  return {
    status: run.status,
    code: m?.[1] ?? 'none',
    last: Buffer.from(m?.[2] ?? '', 'base64'),
    stdout: run.stdout.toString(),
    stderr: run.stderr.toString(),
  };
}

const errno = { ENOENT: '2', EEXIST: '17', ENOTDIR: '20', EINVAL: '22', ENAMETOOLONG: '36', ENOLINK: '67', EILSEQ: '84', EREMOTEIO: '121', EDQUOT: '122' };

/** Asserts an answer: the code, the exit status qfile-unpacker would have (code & 255), nothing on stderr. */
function expect(r: Received, code: string, last: string | Buffer, what: string): void {
  assert.equal(r.code, code, `${what}: ${r.stdout}${r.stderr}`);
  assert.equal(r.status, Number(code) & 255, what);
  assert.equal(r.stderr, '', what);
  assert.deepEqual(r.last, Buffer.from(last), what);
}

test('qubes.Filecopy keeps no setuid bit and takes no name with a newline or a terminal escape, whatever it answers', async () => {
  await withTempDir(async (dir) => {
    const home = join(dir, 'home');
    const incoming = join(home, 'QubesIncoming', 'work');
    await receive(home, stream(fileEntry('tool', '4755', '#!/bin/sh\n'), fileEntry('group', '2755')));
    assert.equal((await stat(join(incoming, 'tool'))).mode & 0o7777, 0o755);
    assert.equal((await stat(join(incoming, 'group'))).mode & 0o7777, 0o755);
    for (const name of ['line\nbreak', 'x\x1b]0;title\x07\x1b[2J']) await receive(home, stream(fileEntry(name, '644')));
    assert.deepEqual((await readdir(incoming)).sort(), ['group', 'tool']);
  });
});

test('qubes.Filecopy answers as qfile-unpacker: a result line with the error code and the last name', async () => {
  await withTempDir(async (dir) => {
    const home = join(dir, 'home');
    expect(await receive(home, stream(fileEntry('a', '644'), fileEntry('b', '644', 'yy'))), '0', 'b', 'success names the last file');
    expect(await receive(home, Buffer.alloc(0)), errno.EREMOTEIO, '', 'an empty stream');
    expect(await receive(home, Buffer.from(`qmcp-filecopy 1\n${fileEntry('c', '644', '')}`)), errno.EREMOTEIO, 'c', 'no end marker');
    expect(await receive(home, Buffer.from(`qmcp-filecopy 1\nfile ${b64('d')} 644 10\nabc`)), '31415926', 'd', 'a stream ending inside a file');
    expect(await receive(home, stream(`fifo ${b64('e')} 644\n`)), errno.EINVAL, '', 'an entry of another kind');
    expect(await receive(home, stream(fileEntry('a', '644', 'y'))), errno.EEXIST, 'a', 'an existing name');
    assert.equal(await readFile(join(home, 'QubesIncoming', 'work', 'a'), 'utf8'), 'x');
    const noSource = await runScript('qubes.Filecopy', [], stream(), { QMCP_INCOMING_HOME: home });
    assert.equal(noSource.status, 1);
    const badArg = await runScript('qubes.Filecopy', ['other'], stream(), { QREXEC_REMOTE_DOMAIN: 'work', QMCP_INCOMING_HOME: home });
    assert.equal(badArg.status, 1);
    assert.match(badArg.stderr.toString(), /Unexpected argument other/);
  });
});

test('qubes.Filecopy names: what qrexec-lib validate_path refuses, and only printable ASCII without allow-all-names', async () => {
  await withTempDir(async (dir) => {
    const home = join(dir, 'home');
    const incoming = join(home, 'QubesIncoming', 'work');
    const refused: (string | Buffer)[] = [
      '/etc/passwd',
      '..',
      '../escape',
      'a/../../escape',
      '.',
      './a',
      'a//b',
      'a/',
      'new\nline',
      'esc\x1b[31mred',
      'del\x7f',
      'tab\there',
      Buffer.from([0x66, 0xff, 0xfe]),
      'caf\u00e9',
      Buffer.from([0x61, 0, 0x62]),
    ];
    for (const name of refused) {
      // a NUL, which would cut the name short in C, is refused; the name comes back without it
      const last = Buffer.from(name).filter((c) => c !== 0);
      expect(await receive(home, stream(fileEntry(name, '644'))), errno.EILSEQ, Buffer.from(last), JSON.stringify(name.toString()));
      // as qfile-unpacker, a directory's refusal comes negated
      expect(await receive(home, stream(dirEntry(name))), `-${errno.EILSEQ}`, Buffer.from(last), `dir ${JSON.stringify(name.toString())}`);
    }
    // an empty name leaves its field out: a malformed entry
    expect(await receive(home, stream(fileEntry('', '644'))), errno.EINVAL, '', 'an empty name');
    assert.deepEqual(await readdir(incoming), []);
    // allow-all-names lets any byte but NUL through, never a path that climbs out
    for (const name of ['new\nline', 'esc\x1b[31mred', 'caf\u00e9']) {
      expect(await receive(home, stream(fileEntry(name, '644')), ['allow-all-names']), '0', name, JSON.stringify(name));
    }
    for (const name of ['../escape', '/abs', 'a//b']) {
      expect(await receive(home, stream(fileEntry(name, '644')), ['allow-all-names']), errno.EILSEQ, name, JSON.stringify(name));
    }
    assert.deepEqual((await readdir(incoming)).sort(), ['caf\u00e9', 'esc\x1b[31mred', 'new\nline']);
    // qfile-unpacker reads at most 16383 bytes of name, its NUL included
    expect(await receive(home, stream(fileEntry('n'.repeat(16383), '644'))), errno.ENAMETOOLONG, '', 'a name too long');
    expect(await receive(home, stream('file not!base64 644 1\nx')), errno.EINVAL, '', 'a name that is no base64');
  });
});

test('qubes.Filecopy modes: permission bits kept, setuid, setgid and sticky dropped; a directory gets its mode after its contents', async () => {
  await withTempDir(async (dir) => {
    const home = join(dir, 'home');
    const incoming = join(home, 'QubesIncoming', 'work');
    const modes: [string, number][] = [
      ['4755', 0o755],
      ['2755', 0o755],
      ['6711', 0o711],
      ['1777', 0o777],
      ['640', 0o640],
      ['0', 0],
    ];
    const entries = modes.map(([m], i) => fileEntry(`f${i}`, m));
    expect(await receive(home, stream(...entries, dirEntry('d', '2555'), fileEntry('d/in', '644'), dirEntry('d', '2555'))), '0', 'd', 'modes');
    for (const [i, [m, want]] of modes.entries()) assert.equal((await stat(join(incoming, `f${i}`))).mode & 0o7777, want, m);
    assert.equal((await stat(join(incoming, 'd'))).mode & 0o7777, 0o555);
    expect(await receive(home, stream(fileEntry('g', '8755'))), errno.EINVAL, 'g', 'not an octal mode');
  });
});

test('qubes.Filecopy sizes and counts: no limit on files or bytes (qfile-unpacker sets none), sizes past 64 bits refused', async () => {
  await withTempDir(async (dir) => {
    const home = join(dir, 'home');
    const incoming = join(home, 'QubesIncoming', 'work');
    const many = Array.from({ length: 40 }, (_, i) => fileEntry(`m${i}`, '644', 'z'.repeat(i % 3)));
    expect(await receive(home, stream(...many, fileEntry('empty', '644', ''))), '0', 'empty', 'many files');
    assert.equal((await readdir(incoming)).length, 41);
    assert.equal((await stat(join(incoming, 'm2'))).size, 2);
    expect(await receive(home, stream(`file ${b64('huge')} 644 ${'9'.repeat(19)}\n`)), errno.EDQUOT, 'huge', 'a size past 64 bits');
    expect(await receive(home, stream(`file ${b64('neg')} 644 -1\n`)), errno.EINVAL, 'neg', 'a size that is no number');
  });
});

test('qubes.Filecopy links: allowed below the top, never pointing above their top directory; nothing written through one', async () => {
  await withTempDir(async (dir) => {
    const home = join(dir, 'home');
    const incoming = join(home, 'QubesIncoming', 'work');
    const top = [dirEntry('a'), dirEntry('a/b')];
    expect(await receive(home, stream(...top, linkEntry('a/l', 'x'), linkEntry('a/b/up', '../x'), linkEntry('a/dot', './x/'), linkEntry('a/b/two', '.././../a/x'))), errno.ENOLINK, '.././../a/x', 'two levels up from a/b');
    assert.equal(await readlink(join(incoming, 'a', 'l')), 'x');
    assert.equal(await readlink(join(incoming, 'a', 'b', 'up')), '../x');
    assert.equal(await readlink(join(incoming, 'a', 'dot')), './x/');
    const refused: [string, string, string][] = [
      ['top', 'x', errno.ENOLINK],
      ['a/up', '../x', errno.ENOLINK],
      ['a/abs', '/etc/passwd', errno.ENOLINK],
      ['a/mid', 'x/../../y', errno.ENOLINK],
      ['a/esc', 'x\x1b[2J', errno.EILSEQ],
      ['a/../z', 'x', errno.EILSEQ],
      ['a/l', 'y', errno.EEXIST],
    ];
    for (const [name, target, code] of refused) {
      expect(await receive(home, stream(linkEntry(name, target))), code, code === errno.EEXIST ? name : target, `${name} -> ${target}`);
    }
    assert.equal((await lstat(join(incoming, 'a', 'l'))).isSymbolicLink(), true);
    // nothing goes through a link: not one sent, not one already there
    await mkdir(join(dir, 'outside'));
    await symlink(join(dir, 'outside'), join(incoming, 'out'));
    expect(await receive(home, stream(linkEntry('a/sub', 'b'), fileEntry('a/sub/f', '644'))), errno.ENOTDIR, 'sub', 'through a sent link');
    expect(await receive(home, stream(fileEntry('out/f', '644'))), errno.ENOTDIR, 'out', 'through a link already there');
    expect(await receive(home, stream(dirEntry('out'))), errno.ENOTDIR, 'out', 'a directory entry over a link');
    expect(await receive(home, stream(fileEntry('none/f', '644'))), errno.ENOENT, 'none', 'an entry before its directory');
    assert.deepEqual(await readdir(join(dir, 'outside')), []);
  });
});

/** Runs the sink service on INPUT, writing it all even when the service stops reading early. */
function sinkPush(
  home: string,
  input: Buffer,
  source = 'work',
  argument?: string,
): Promise<{ status: number | null; stdout: string; stderr: string; writeError: string | null }> {
  return new Promise((resolve, reject) => {
    const child = spawn(shell, [join(qubeDir, 'qmcp.SinkPush')], {
      env: { PATH: process.env['PATH'] ?? '/usr/bin:/bin', QREXEC_REMOTE_DOMAIN: source, QMCP_INCOMING_HOME: home, ...(argument === undefined ? {} : { QREXEC_SERVICE_ARGUMENT: argument }) },
      stdio: ['pipe', 'pipe', 'pipe'],
    });
    let stdout = '';
    let stderr = '';
    let writeError: string | null = null;
    child.stdout.on('data', (c: Buffer) => (stdout += c.toString('latin1')));
    child.stderr.on('data', (c: Buffer) => (stderr += c.toString('latin1')));
    child.stdin.on('error', (e: NodeJS.ErrnoException) => (writeError = e.code ?? e.message));
    child.on('error', reject);
    child.on('close', (status) => resolve({ status, stdout, stderr, writeError }));
    child.stdin.end(input);
  });
}

test('qmcp.SinkPush: every push in a fresh directory, and the sender learns nothing, whatever happened', async () => {
  await withTempDir(async (dir) => {
    const home = join(dir, 'home');
    const incoming = join(home, 'QubesIncoming', 'work');
    // past any pipe buffer: a service that stopped reading would fail the write
    const tail = Buffer.alloc(4 << 20, 0x41);
    const good = stream(fileEntry('report.txt', '644', 'hello'));
    const cases: [string, Buffer][] = [
      ['good', good],
      ['the same name again', good],
      ['a name Qubes refuses', Buffer.concat([stream(fileEntry('../up', '644')), tail])],
      ['a stream ending inside a file', Buffer.from(`qmcp-filecopy 1\nfile ${b64('cut')} 644 100\nabc`)],
      ['no stream at all', Buffer.concat([Buffer.from('GET / HTTP/1.0\n\n'), tail])],
      ['a setuid file and a link', stream(dirEntry('t'), fileEntry('t/s', '4755'), linkEntry('t/l', 's'), dirEntry('t'))],
    ];
    for (const [what, input] of cases) {
      assert.deepEqual(await sinkPush(home, input), { status: 0, stdout: '', stderr: '', writeError: null }, what);
    }
    const entries = (await readdir(incoming)).sort();
    const pushes = entries.filter((e) => !e.endsWith('.error'));
    assert.equal(pushes.length, cases.length, entries.join(' '));
    for (const p of pushes) assert.match(p, /^\d{8}T\d{6}Z\.[A-Za-z0-9]{6}$/);
    const inside = new Map<string, string[]>();
    for (const p of pushes) inside.set(p, await readdir(join(incoming, p)));
    const reports: string[] = [];
    for (const [p, names] of inside) if (names.includes('report.txt')) reports.push(await readFile(join(incoming, p, 'report.txt'), 'utf8'));
    assert.deepEqual(reports, ['hello', 'hello'], 'both pushes of one name landed');
    // why a push stopped is for the operator, beside it
    const errors = entries.filter((e) => e.endsWith('.error'));
    assert.equal(errors.length, 3, entries.join(' '));
    const texts = await Promise.all(errors.map((e) => readFile(join(incoming, e), 'utf8')));
    assert.ok(texts.some((t) => /stopped at "\.\.\/up": a name .*\(error 84\)/.test(t)), texts.join(''));
    assert.ok(texts.some((t) => /stream ended early/.test(t)), texts.join(''));
    const tree = [...inside].find(([, names]) => names.includes('t'));
    assert.ok(tree);
    assert.equal((await stat(join(incoming, tree[0], 't', 's'))).mode & 0o7777, 0o755);
    assert.equal(await readlink(join(incoming, tree[0], 't', 'l')), 's');
    // no source qube (not a qrexec call): still nothing back, nothing written
    assert.deepEqual(await sinkPush(join(dir, 'other'), good, ''), { status: 0, stdout: '', stderr: '', writeError: null });
    await assert.rejects(readdir(join(dir, 'other')));
    // nowhere to unpack (the home is no directory): nothing back either
    await writeFile(join(dir, 'not-a-dir'), '');
    assert.deepEqual(await sinkPush(join(dir, 'not-a-dir'), Buffer.concat([good, tail])), { status: 0, stdout: '', stderr: '', writeError: null });
  });
});

test('qmcp.SinkPush+PUSH: only a name of the shape qmcp.CopyTo gives, not yet taken, names the directory', async () => {
  await withTempDir(async (dir) => {
    const home = join(dir, 'home');
    const incoming = join(home, 'QubesIncoming', 'work');
    const good = '20260101T000000Z.00112233aabbccdd';
    const good2 = '20260101T000000Z.ffeeddccbbaa9988';
    await mkdir(incoming, { recursive: true });
    await writeFile(join(incoming, good2), 'an entry already there, not a directory');
    const nearMisses = [
      good2,
      '.',
      '..',
      '-rf',
      `${good}.error`,
      `${good}0`,
      good.slice(0, -1),
      good.toUpperCase(),
      good.replace('T', 't'),
      good.replace('.', '_'),
      `x${good}`,
      '20261301T000000Z',
      '',
    ];
    const input = stream(fileEntry('f', '644', 'x'));
    for (const name of nearMisses) assert.deepEqual(await sinkPush(home, input, 'work', name), { status: 0, stdout: '', stderr: '', writeError: null }, name);
    assert.deepEqual(await sinkPush(home, input, 'work', good), { status: 0, stdout: '', stderr: '', writeError: null });
    const entries = await readdir(incoming);
    assert.ok(entries.includes(good));
    assert.equal(await readFile(join(incoming, good, 'f'), 'utf8'), 'x');
    // every near miss landed in a directory of the sink's choosing, and no name was taken from it
    const chosen = entries.filter((e) => e !== good && e !== good2);
    assert.equal(chosen.length, nearMisses.length, entries.join(' '));
    for (const e of chosen) assert.match(e, /^\d{8}T\d{6}Z\.[A-Za-z0-9]{6}$/);
    assert.equal(await readFile(join(incoming, good2), 'utf8'), 'an entry already there, not a directory');
    assert.deepEqual(await readdir(dir), ['home']);
  });
});

test('qmcp.CopyTo+TARGET: a sink push always reads the same; other copies report success and failure', async () => {
  await withTempDir(async (dir) => {
    const home = join(dir, 'home');
    const sinkHome = join(dir, 'sink-home');
    const env = await fakeQrexec(dir, home, sinkHome);
    await writeFile(join(dir, 'f'), 'content');
    await writeFile(join(dir, 'bad\nname'), 'refused by the sink');
    const pushes = [
      await runScript('qmcp.CopyTo', ['sink-1'], encodeCopyToRequest({ paths: [join(dir, 'f')] }), env),
      await runScript('qmcp.CopyTo', ['sink-1'], encodeCopyToRequest({ paths: [join(dir, 'f')] }), env),
      await runScript('qmcp.CopyTo', ['sink-1'], encodeCopyToRequest({ paths: [join(dir, 'bad\nname')] }), env),
    ];
    // one reply but for the push's name, chosen here: each push lands in the directory it names
    const named: string[] = [];
    for (const p of pushes) {
      assert.equal(p.status, 0);
      const push = /^qmcp 1\nstatus ok\nexit 0\npush ([^\n]*)\nmessage \n\n$/.exec(p.stdout.toString())?.[1];
      assert.match(push ?? '', SINK_PUSH, p.stdout.toString());
      assert.deepEqual(decodeCopyToReply(p.stdout), { message: '', push });
      named.push(push as string);
    }
    const landed = (await readdir(join(sinkHome, 'QubesIncoming', 'work'))).filter((e) => !e.endsWith('.error'));
    assert.deepEqual(landed.sort(), [...new Set(named)].sort());
    const contents = await Promise.all(named.map(async (d) => (await readdir(join(sinkHome, 'QubesIncoming', 'work', d))).join()));
    assert.deepEqual(contents, ['f', 'f', '']);

    const ok = await runScript('qmcp.CopyTo', ['dump'], encodeCopyToRequest({ paths: [join(dir, 'f')] }), env);
    assert.equal(ok.status, 0);
    decodeCopyToReply(ok.stdout);
    assert.equal(await readFile(join(home, 'QubesIncoming', 'work', 'f'), 'utf8'), 'content');
    const again = await runScript('qmcp.CopyTo', ['dump'], encodeCopyToRequest({ paths: [join(dir, 'f')] }), env);
    assert.throws(() => decodeCopyToReply(again.stdout), (e: unknown) => e instanceof InQubeError && e.kind === 'copy_failed' && /already exists/.test(e.message));
    const missing = await runScript('qmcp.CopyTo', ['dump'], encodeCopyToRequest({ paths: [join(dir, 'none')] }), env);
    assert.throws(() => decodeCopyToReply(missing.stdout), (e: unknown) => e instanceof InQubeError && e.kind === 'not_found');
    const badTarget = await runScript('qmcp.CopyTo', ['a b'], encodeCopyToRequest({ paths: [join(dir, 'f')] }), env);
    assert.throws(() => decodeCopyToReply(badTarget.stdout), InQubeError);
    // the sink is tried first, then Qubes' receiver
    const calls = (await readFile(join(dir, 'calls'), 'utf8')).split('\n');
    assert.deepEqual(
      calls.slice(0, 5).map((c) => c.replace(SINK_PUSH_IN, '+PUSH')),
      ['sink-1 qmcp.SinkPush+PUSH', 'sink-1 qmcp.SinkPush+PUSH', 'sink-1 qmcp.SinkPush+PUSH', 'dump qmcp.SinkPush+PUSH', 'dump qubes.Filecopy'],
    );
  });
});

test('qmcp.CopyTo names where a push lands: caught without the name sent, or with a sink that ignores it', async () => {
  await withTempDir(async (dir) => {
    /** Whether a push through COPY into a sink running SINK lands in the directory its reply names. */
    const landsWhereNamed = async (copy: string, sink: string, at: string): Promise<boolean> => {
      await mkdir(join(dir, at));
      const sinkHome = join(dir, at, 'sink-home');
      const env = await fakeQrexec(join(dir, at), join(dir, at, 'home'), sinkHome, sink);
      const reply = decodeCopyToReply((await runScript(copy, ['sink-1'], encodeCopyToRequest({ paths: [join(dir, 'f')] }), env)).stdout);
      const inside = await readdir(join(sinkHome, 'QubesIncoming', 'work', reply.push ?? 'none')).catch((): string[] => []);
      return inside.includes('f');
    };
    await writeFile(join(dir, 'f'), 'content');
    const sink = join(qubeDir, 'qmcp.SinkPush');
    assert.equal(await landsWhereNamed('qmcp.CopyTo', sink, 'real'), true);
    const unnamed = await weakenedScript(dir, 'qmcp.CopyTo', '"qmcp.SinkPush+$push"', 'qmcp.SinkPush');
    assert.equal(await landsWhereNamed(unnamed, sink, 'unnamed'), false, 'a push sent without its name');
    const deaf = await weakenedScript(dir, 'qmcp.SinkPush', 'case ${QREXEC_SERVICE_ARGUMENT-} in', 'case ignored in');
    assert.equal(await landsWhereNamed('qmcp.CopyTo', deaf, 'deaf'), false, 'a sink that names every push itself');
  });
});
