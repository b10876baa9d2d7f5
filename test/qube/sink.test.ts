/**
 * A push into a sink, end to end on a simulated host with the real install:
 * whatever the sink says or is (a name pushed twice, a name its receiver
 * refuses, halted), the agent sees one outcome, through a raw qrexec call
 * from the source qube, through qmcp.CopyTo from the principal and through
 * the MCP copy tool; and every push lands in a fresh directory of the sink.
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { readdir, readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { Client } from '@modelcontextprotocol/client';
import { InMemoryTransport } from '@modelcontextprotocol/server';
import { simRunner } from '../../src/cli/sim-principal.js';
import { createServer } from '../../src/principal/server.js';
import { encodeCopyToRequest, encodeWriteFileRequest } from '../../src/shared/inqube-protocol.js';
import { findBwrap } from '../../src/sim/sandbox/index.js';
import { qubeLayout } from '../../src/sim/sandbox/layout.js';
import { PRINCIPAL, REFUSED, SINK, TIER_QUBES, startBoundary } from '../boundary/helpers.js';
import type { Boundary } from '../boundary/helpers.js';

const SOURCE = TIER_QUBES.exec;
const b64 = (s: string): string => Buffer.from(s).toString('base64');
const push = (name: string, content: string): string => `qmcp-filecopy 1\nfile ${b64(name)} 644 ${content.length}\n${content}end\n`;
/** What a sink push always answers: no output, exit status 0. */
const SILENT = { status: 0, stdout: '', stderr: '' };

describe('a push into a sink', { skip: findBwrap() === undefined ? 'needs bwrap' : false }, () => {
  let b: Boundary;
  before(async () => {
    b = await startBoundary('least-privilege');
    await b.ensureRunning();
  });
  after(async () => {
    await b?.close();
  });

  const incoming = (): string => join(qubeLayout(b.host.dir, SINK).private, 'home', 'user', 'QubesIncoming', SOURCE);
  const halt = async (): Promise<void> => {
    await b.admin.call('admin.vm.Kill', SINK);
    assert.equal(b.power(SINK), 'Halted');
  };

  test('from the source qube: one answer whatever the sink said or was; every push in its own directory', async () => {
    const before = new Set(await readdir(incoming()).catch(() => []));
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
    const pushes = (await readdir(incoming())).filter((e) => !before.has(e) && !e.endsWith('.error'));
    assert.equal(pushes.length, replies.length);
    const notes: string[] = [];
    for (const p of pushes) {
      if ((await readdir(join(incoming(), p))).includes('note.txt')) notes.push(await readFile(join(incoming(), p, 'note.txt'), 'utf8'));
    }
    assert.deepEqual(notes.sort(), ['first', 'second', 'third']);
    // Qubes' own receiver, which answers the sender, is not reachable, running or halted
    assert.deepEqual(await b.call(SOURCE, SINK, 'qubes.Filecopy', push('note.txt', 'x')), REFUSED);
    await halt();
    assert.deepEqual(await b.call(SOURCE, SINK, 'qubes.Filecopy', push('note.txt', 'x')), REFUSED);
    assert.equal(b.power(SINK), 'Halted');
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
    const copy = (path: string): Promise<unknown> => b.call(PRINCIPAL, SOURCE, `qmcp.CopyTo+${SINK}`, encodeCopyToRequest({ paths: [path] }).toString('latin1'));
    const first = await copy('/root/report.txt');
    assert.deepEqual(first, { status: 0, stdout: 'qmcp 1\nstatus ok\nexit 0\nmessage \n\n', stderr: '' });
    assert.deepEqual(await copy('/root/report.txt'), first, 'the same name again');
    assert.deepEqual(await copy('/root/bad\nname'), first, 'a name the sink refuses');
    await halt();
    assert.deepEqual(await copy('/root/report.txt'), first, 'a halted sink');

    const runner = simRunner(b.host.dir);
    const [serverSide, clientSide] = InMemoryTransport.createLinkedPair();
    await createServer(runner).connect(serverSide);
    const client = new Client({ name: 'sink', version: '0' });
    await client.connect(clientSide);
    try {
      const tool = async (path: string): Promise<string> =>
        JSON.stringify(await client.callTool({ name: 'qube_copy', arguments: { source: SOURCE, target: SINK, paths: [path] } }));
      const answer = await tool('/root/report.txt');
      assert.deepEqual(JSON.parse(answer).structuredContent, { source: SOURCE, target: SINK, copied: 1 });
      assert.equal(await tool('/root/report.txt'), answer);
      assert.equal(await tool('/root/bad\nname'), answer);
      await halt();
      assert.equal(await tool('/root/report.txt'), answer);
    } finally {
      await client.close();
      runner.close();
    }
    const reports = (await readdir(incoming())).filter((e) => !e.endsWith('.error'));
    let landed = 0;
    for (const p of reports) if ((await readdir(join(incoming(), p))).includes('report.txt')) landed++;
    assert.ok(landed >= 6, `${landed} pushes of report.txt landed`);
  });
});
