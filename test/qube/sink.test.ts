/**
 * A push into a sink, end to end on a simulated host with the real install:
 * whatever the sink says or is (a name pushed twice, a name its receiver
 * refuses, halted), the agent sees one outcome, through a raw qrexec call
 * from the source qube, through qmcp.CopyTo from the principal and through
 * the MCP copy tool; and every push lands in a fresh directory of the sink,
 * the one the copy names.
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { Client } from '@modelcontextprotocol/client';
import { InMemoryTransport } from '@modelcontextprotocol/server';
import { simRunner } from '../../src/cli/sim-principal.js';
import { createServer } from '../../src/principal/server.js';
import { encodeCopyToRequest, encodeWriteFileRequest } from '../../src/shared/inqube-protocol.js';
import { findBwrap } from '../../src/sim/sandbox/index.js';
import { PRINCIPAL, REFUSED, SINK, TIER_QUBES, startBoundary } from '../boundary/helpers.js';
import type { Boundary } from '../boundary/helpers.js';

const SOURCE = TIER_QUBES.exec;
const b64 = (s: string): string => Buffer.from(s).toString('base64');
const push = (name: string, content: string): string => `qmcp-filecopy 1\nfile ${b64(name)} 644 ${content.length}\n${content}end\n`;
/** What a sink push always answers: no output, exit status 0. */
const SILENT = { status: 0, stdout: '', stderr: '' };
/** A push's directory name, as qmcp.CopyTo chooses it. */
const PUSH = /[0-9]{8}T[0-9]{6}Z\.[0-9a-f]{16}/g;
/** TEXT with every push name in it replaced, and the names, in order. */
const unnamed = (text: string): { text: string; pushes: string[] } => ({ text: text.replace(PUSH, 'PUSH'), pushes: text.match(PUSH) ?? [] });

describe('a push into a sink', { skip: findBwrap() === undefined ? 'needs bwrap' : false }, () => {
  let b: Boundary;
  before(async () => {
    b = await startBoundary('least-privilege');
    await b.ensureRunning();
  });
  after(async () => {
    await b?.close();
  });

  const incoming = `/home/user/QubesIncoming/${SOURCE}`;
  /** Runs a shell script inside the running sink, as its root, and resolves to its stdout. */
  const inSink = async (script: string): Promise<string> => {
    const p = b.host.sandboxes.spawn(SINK, ['/bin/sh', '-c', script]);
    const out: Buffer[] = [];
    p.stdout.on('data', (c: Buffer) => out.push(c));
    p.stderr.resume();
    p.stdin.end();
    await new Promise((resolve) => p.once('close', resolve));
    return Buffer.concat(out).toString();
  };
  /** The pushes in the sink, each with the content of FILE in it (null when it has none). */
  const pushesIn = async (file: string): Promise<Map<string, string | null>> => {
    const out = new Map<string, string | null>();
    const text = await inSink(`cd ${incoming} 2>/dev/null || exit 0; for d in *; do case $d in *.error) continue;; esac; if [ -f "$d/${file}" ]; then printf '%s %s\\n' "$d" "$(base64 -w0 < "$d/${file}")"; else printf '%s -\\n' "$d"; fi; done`);
    for (const line of text.split('\n').filter(Boolean)) {
      const [dir, content] = line.split(' ') as [string, string];
      out.set(dir, content === '-' ? null : Buffer.from(content, 'base64').toString());
    }
    return out;
  };
  const halt = async (): Promise<void> => {
    await b.admin.call('admin.vm.Kill', SINK);
    assert.equal(b.power(SINK), 'Halted');
  };

  test('from the source qube: one answer whatever the sink said or was; every push in its own directory', async () => {
    const before = new Set((await pushesIn('note.txt')).keys());
    const replies = [
      await b.call(SOURCE, SINK, 'qmcp.SinkPush', push('note.txt', 'first')),
      await b.call(SOURCE, SINK, 'qmcp.SinkPush', push('note.txt', 'second')),
      await b.call(SOURCE, SINK, 'qmcp.SinkPush', push('../escape', 'x')),
      await b.call(SOURCE, SINK, 'qmcp.SinkPush', 'not a stream at all\n'),
    ];
    await halt();
    replies.push(await b.call(SOURCE, SINK, 'qmcp.SinkPush', push('note.txt', 'third')));
    for (const r of replies) assert.deepEqual(r, SILENT);
    // started on demand by the policy, not refused
    assert.equal(b.power(SINK), 'Running');
    const pushes = [...(await pushesIn('note.txt'))].filter(([dir]) => !before.has(dir));
    assert.equal(pushes.length, replies.length);
    const notes = pushes.map(([, note]) => note).filter((n): n is string => n !== null);
    assert.deepEqual(notes.sort(), ['first', 'second', 'third']);
    // Qubes' own receiver, which answers the sender, is not reachable, running or halted
    assert.deepEqual(await b.call(SOURCE, SINK, 'qubes.Filecopy', push('note.txt', 'x')), REFUSED);
    await halt();
    assert.deepEqual(await b.call(SOURCE, SINK, 'qubes.Filecopy', push('note.txt', 'x')), REFUSED);
    assert.equal(b.power(SINK), 'Halted');
  });

  test('a push named by its sender lands in that directory; a name taken, or of another shape, gets a fresh one', async () => {
    await b.ensureRunning();
    const name = '20260101T000000Z.00112233aabbccdd';
    const before = new Set((await pushesIn('named.txt')).keys());
    for (const [arg, content] of [
      [name, 'named'],
      [name, 'taken'],
      ['20260101T000000Z.00112233aabbccdd.error', 'long'],
      ['x', 'short'],
    ] as const) {
      assert.deepEqual(await b.call(SOURCE, SINK, `qmcp.SinkPush+${arg}`, push('named.txt', content)), SILENT);
    }
    const pushes = [...(await pushesIn('named.txt'))].filter(([dir]) => !before.has(dir));
    assert.equal(pushes.length, 4);
    assert.equal(new Map(pushes).get(name), 'named');
    const others = pushes.filter(([dir]) => dir !== name);
    for (const [dir] of others) assert.match(dir, /^[0-9]{8}T[0-9]{6}Z\.[A-Za-z0-9]{6}$/);
    assert.deepEqual(others.map(([, c]) => c).sort(), ['long', 'short', 'taken']);
  });

  test('through qmcp.CopyTo and the MCP copy tool: one reply, byte for byte', async () => {
    await b.ensureRunning();
    const files: [string, string][] = [
      ['/root/report.txt', 'report'],
      ['/root/bad\nname', 'refused by the sink'],
    ];
    for (const [path, content] of files) {
      const w = await b.call(PRINCIPAL, SOURCE, 'qmcp.WriteFile', encodeWriteFileRequest({ path, createParents: false, content: Buffer.from(content) }).toString('latin1'));
      assert.equal(w.status, 0, w.stderr);
    }
    // one reply but for the push's name, which the source chose: nothing in it comes from the sink
    const named: string[] = [];
    const copy = async (path: string): Promise<unknown> => {
      const r = await b.call(PRINCIPAL, SOURCE, `qmcp.CopyTo+${SINK}`, encodeCopyToRequest({ paths: [path] }).toString('latin1'));
      const { text, pushes } = unnamed(r.stdout);
      named.push(...pushes);
      return { ...r, stdout: text };
    };
    const first = await copy('/root/report.txt');
    assert.deepEqual(first, { status: 0, stdout: 'qmcp 1\nstatus ok\nexit 0\npush PUSH\nmessage \n\n', stderr: '' });
    assert.deepEqual(await copy('/root/report.txt'), first, 'the same name again');
    assert.deepEqual(await copy('/root/bad\nname'), first, 'a name the sink refuses');
    await halt();
    assert.deepEqual(await copy('/root/report.txt'), first, 'a halted sink');
    assert.equal(new Set(named).size, 4, 'each push has a name of its own');

    const runner = simRunner(b.host.dir);
    const [serverSide, clientSide] = InMemoryTransport.createLinkedPair();
    await createServer(runner).connect(serverSide);
    const client = new Client({ name: 'sink', version: '0' });
    await client.connect(clientSide);
    try {
      const tool = async (path: string): Promise<string> => {
        const { text, pushes } = unnamed(JSON.stringify(await client.callTool({ name: 'qube_copy', arguments: { source: SOURCE, target: SINK, paths: [path] } })));
        named.push(...new Set(pushes));
        return text;
      };
      // the whole result, text and structured, for a push of NAME
      const answer = (name: string): string => {
        const result = { source: SOURCE, target: SINK, copied: 1, directory: `${incoming}/PUSH/`, files: [`${incoming}/PUSH/${name}`] };
        return JSON.stringify({ content: [{ type: 'text', text: JSON.stringify(result) }], structuredContent: result });
      };
      assert.equal(await tool('/root/report.txt'), answer('report.txt'));
      assert.equal(await tool('/root/report.txt'), answer('report.txt'));
      assert.equal(await tool('/root/bad\nname'), answer('bad\nname'));
      await halt();
      assert.equal(await tool('/root/report.txt'), answer('report.txt'));
    } finally {
      await client.close();
      runner.close();
    }
    // every push landed where its copy said, but the one whose name the sink refused
    assert.equal(new Set(named).size, 8);
    const landed = await pushesIn('report.txt');
    for (const [i, push] of named.entries()) assert.equal(landed.get(push), [2, 6].includes(i) ? null : 'report', push);
  });
});
