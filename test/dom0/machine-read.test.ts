/**
 * How the dom0 services read the machine: a qube the operator removes
 * between a scan's listing and its own reads is absent, not a failure; every
 * refusal and failure, whatever its cause, is in the audit log and the
 * operator's journal; large fleets are read without overflowing qubesd's
 * listen backlog.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, readFileSync, rmSync } from 'node:fs';
import { createServer } from 'node:net';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { readTail } from '../../src/dom0/audit/index.js';
import { Qubesd } from '../../src/dom0/qubesd.js';
import { startProxy } from '../../verify/faults/proxy.js';
import type { ProxyCall, Verdict } from '../../verify/faults/proxy.js';
import { BASE_SETTINGS, REFUSED, call, json, spawnCall, startHost, testFleet } from '../services-write/helpers.js';
import type { CallResult, Host } from '../services-write/helpers.js';

/** The Admin API reads a call makes about each qube it did not name: the snapshot, budget and dependency scans. */
const PER_QUBE_READS = new Set(['admin.vm.tag.List', 'admin.vm.property.Get', 'admin.vm.volume.List', 'admin.vm.volume.Info']);

/** An outside qube made for one call, to be removed by the "operator" in the middle of it. */
async function outsideQube(h: Host, n: number): Promise<string> {
  const name = `op-temp${n}`;
  await h.qubesd.call('admin.vm.Create.AppVM', 'dom0', 'debian', `name=${name} label=red`);
  return name;
}

test('an outside qube removed between a scan\'s listing and its reads changes no answer and refuses nothing', async () => {
  const h = await startHost({ ...BASE_SETTINGS, birthCeiling: 'full' });
  const proxy = await startProxy(h.sim.socketPath, join(h.root, 'proxy.sock'));
  const viaProxy = new Qubesd(proxy.socketPath);
  let serial = 0;
  try {
    // Each call: a fresh outside qube, removed the moment the call first reads it on its own.
    const racing = async (full: string, payload: unknown = ''): Promise<{ result: CallResult; removed: boolean }> => {
      const victim = await outsideQube(h, ++serial);
      let removed = false;
      proxy.decide = async (c: ProxyCall): Promise<Verdict> => {
        if (!removed && c.dest === victim && PER_QUBE_READS.has(c.method)) {
          removed = true;
          const vm = h.vm(victim);
          if (vm) await h.sim.app.remove(vm);
        }
        return 'forward';
      };
      const result = await call(h, full, payload, { qubesd: viaProxy });
      proxy.decide = () => 'forward';
      return { result, removed };
    };
    // A snapshot is one read (qubesd's system info, or only the qubes a call names: test/dom0/named-reads.test.ts);
    // the scans that read qube by qube are the writes': the budget's footprint scan and the remove's dependency scan.
    const created = await racing('qmcp.Create+', { name: 'ai-made', template: 'ai-tpl' });
    assert.ok(created.removed);
    assert.equal(created.result.status, 0, created.result.stdout + created.result.stderr);
    const removed = await racing('qmcp.Remove+ai-made');
    assert.ok(removed.removed);
    assert.equal(removed.result.status, 0, removed.result.stdout + removed.result.stderr);
    assert.deepEqual(json(removed.result), { name: 'ai-made', removed: true });
  } finally {
    await proxy.close();
    await h.done();
  }
});

test('a refusal whose cause is a failed read is audited and journalled, for reads and writes alike', async () => {
  const h = await startHost();
  const proxy = await startProxy(h.sim.socketPath, join(h.root, 'proxy.sock'));
  const viaProxy = new Qubesd(proxy.socketPath);
  try {
    // qubesd fails the snapshot's read with a Qubes exception: its system info for a listing, its target's tags for a one-qube call
    proxy.decide = (c) => (c.method === 'internal.GetSystemInfo' || (c.method === 'admin.vm.tag.List' && c.dest === 'ai-box') ? 'fail' : 'forward');
    for (const full of ['qmcp.List', 'qmcp.Start+ai-box']) {
      const journal: string[] = [];
      const r = await call(h, full, '', { qubesd: viaProxy, journal });
      assert.deepEqual(r, REFUSED, full);
      const last = (await readTail(h.root, 1))[0]?.entry;
      assert.equal(last?.kind, 'refusal', `${full}: the refusal is the last audit entry`);
      assert.equal(last?.operation, full === 'qmcp.List' ? 'list' : 'start');
      assert.match(last?.detail ?? '', /QubesException/);
      assert.ok(journal.some((m) => /QubesException: injected fault/.test(m)), `${full}: the journal has the precise reason: ${journal.join(' | ')}`);
    }
    // a handler's own failure on a read: audited as a refusal with its class
    proxy.decide = (c) => (c.method === 'admin.vm.property.GetAll' ? 'fail' : 'forward');
    const journal: string[] = [];
    assert.deepEqual(await call(h, 'qmcp.Info+ai-box', '', { qubesd: viaProxy, journal }), REFUSED);
    const last = (await readTail(h.root, 1))[0]?.entry;
    assert.equal(last?.kind, 'refusal');
    assert.equal(last?.operation, 'info');
    assert.deepEqual(last?.qubes, ['ai-box']);
    assert.match(last?.detail ?? '', /QubesException/);
  } finally {
    await proxy.close();
    await h.done();
  }
});

test('a service process that cannot reach qubesd refuses, audits the refusal and says why in the service log', async () => {
  const h = await startHost();
  try {
    const r = await spawnCall(h, 'qmcp.List', '', { QMCP_QUBESD_SOCKET: join(h.root, 'no-qubesd.sock') });
    assert.deepEqual(r, REFUSED);
    const last = (await readTail(h.root, 1))[0]?.entry;
    assert.equal(last?.kind, 'refusal');
    assert.match(last?.detail ?? '', /ENOENT/);
    const serviceLog = join(h.root, 'var', 'log', 'qmcp', 'service.log');
    assert.ok(existsSync(serviceLog));
    assert.match(readFileSync(serviceLog, 'utf8'), /refused qmcp\.List from mcp-control: .*ENOENT/);
  } finally {
    await h.done();
  }
});

test('3,000 qubes: listing through concurrent service processes never overflows qubesd and is never refused', async () => {
  const fleet = testFleet();
  for (let i = 0; i < 3000; i++) fleet.qubes.push({ name: `op-${String(i).padStart(4, '0')}`, klass: 'AppVM', template: 'debian', label: 'gray' });
  const h = await startHost(BASE_SETTINGS, fleet);
  try {
    // two at once, each its own process as qrexec starts them: each reads every qube's tags
    const results = await Promise.all(Array.from({ length: 2 }, () => spawnCall(h, 'qmcp.List', '')));
    for (const r of results) {
      assert.equal(r.status, 0, r.stderr);
      const names = (json(r)['qubes'] as { name: string }[]).map((q) => q.name);
      assert.ok(names.includes('ai-box') && !names.some((n) => n.startsWith('op-')));
    }
    assert.equal(new Set(results.map((r) => r.stdout)).size, 1);
  } finally {
    await h.done();
  }
});

test('qubesd client: a connect qubesd never accepted is retried, and each retry is told to the operator', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'qmcp-retry-'));
  const path = join(dir, 'qubesd.sock');
  const server = createServer((sock) => sock.end(Buffer.from('0\0hello', 'latin1')));
  const journal: string[] = [];
  const replies: string[] = [];
  try {
    // Nothing listens yet: the first connect fails; the server starts listening when that is told.
    const listening = new Promise<void>((resolve) => {
      const log = (m: string): void => {
        journal.push(m);
        if (journal.length === 1) server.listen(path, () => resolve());
      };
      void new Qubesd(path, { log }).call('admin.vm.List', 'dom0').then((reply) => replies.push(reply));
    });
    await listening;
    // wait for the retried call to land, without a fixed window
    while (replies.length === 0) await new Promise((r) => setTimeout(r, 10));
    assert.deepEqual(replies, ['hello']);
    assert.match(journal[0] ?? '', /qubesd connect (ENOENT|ECONNREFUSED) for admin\.vm\.List; retry 1/);
  } finally {
    server.close();
    rmSync(dir, { recursive: true, force: true });
  }
});
