/**
 * The action gate on operations the policy decides alone, on a simulated host
 * with the real install: a gated call waits in the operator's queue (Qubes'
 * dialog), offering what qrexec would offer; approved, it runs as an allowed
 * call does; denied, unanswered, or from a qube with no GUI qube, it is the
 * one refusal and nothing changes.
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { decodeCopyToReply, decodeReadFileReply, encodeCopyToRequest, encodeReadFileRequest, encodeWriteFileRequest } from '../../src/shared/inqube-protocol.js';
import type { GateAnswer } from '../../src/shared/model/index.js';
import { OPERATIONS } from '../../src/shared/model/index.js';
import type { PendingAsk } from '../../src/sim/qrexec/asks.js';
import { askControl } from '../../src/sim/qrexec/asks.js';
import { OPEN_GATE } from '../../src/sim/open-gate.js';
import { hangBoundMs } from '../../verify/hang-bound.js';
import { within } from '../principal/fake-qrexec.js';
import { PRINCIPAL, REFUSED, TIER_QUBES, startBoundary } from './helpers.js';
import type { Boundary } from './helpers.js';

/** The policy-layer operations the model's defaults gate. */
const GATED = OPERATIONS.filter((op) => op.layer === 'policy' && op.gate === 'ask');
/** The Admin API calls the policy decides that an operator may gate (none asks by default). */
const ADMIN = OPERATIONS.filter((op) => op.target === 'admin-api' && op.gate !== null);
const GATE: Record<string, GateAnswer> = { ...OPEN_GATE, ...Object.fromEntries([...GATED, ...ADMIN].map((op) => [op.id, 'ask' as const])) };

const EXEC = TIER_QUBES.exec;
const NET = TIER_QUBES.net;
const FULL = TIER_QUBES.full;

/** The questions waiting now. */
async function asks(b: Boundary): Promise<PendingAsk[]> {
  const r = await askControl(b.host.router.askSocket, { op: 'list' });
  assert.ok(r.ok);
  return r.asks ?? [];
}

/** The one question a call made, once it waits. */
async function question(b: Boundary, source: string, service: string): Promise<PendingAsk> {
  let found: PendingAsk | undefined;
  await within(60_000, async () => (found = (await asks(b)).find((q) => q.source === source && q.service === service)) !== undefined, `${service} from ${source} to wait`);
  return found as PendingAsk;
}

async function answer(b: Boundary, q: PendingAsk, target: string | null): Promise<void> {
  const r = await askControl(b.host.router.askSocket, target === null ? { op: 'deny', id: q.id } : { op: 'allow', id: q.id, target });
  assert.ok(r.ok, JSON.stringify(r));
}

describe('the gate on policy-decided operations', () => {
  let b: Boundary;
  before(async () => {
    // the test answers every question; the bound only ends a hang
    b = await startBoundary('least-privilege', { gate: GATE, askTimeoutMs: hangBoundMs(120_000) });
    await b.ensureRunning();
  });
  after(async () => {
    await b?.close();
  });

  test('the defaults gate copy, and no Admin API call the policy decides: kill, shutdown and firewall set ask in dom0 services', () => {
    assert.deepEqual(GATED.filter((op) => op.target === 'admin-api'), []);
    assert.deepEqual(ADMIN.map((op) => op.id).sort(), ['firewall.reload', 'pause', 'unpause']);
    assert.ok(GATED.some((op) => op.id === 'copy'));
  });

  for (const op of ADMIN) {
    test(`${op.id}: waits with dom0 its only choice; denied, it is the refusal and changes nothing`, async () => {
      const qube = TIER_QUBES[op.tier];
      const state = async (): Promise<unknown[]> => [b.power(qube), (await b.call(PRINCIPAL, qube, 'admin.vm.firewall.Get')).stdout];
      const before = await state();
      const call = b.call(PRINCIPAL, qube, op.service);
      const q = await question(b, PRINCIPAL, op.service);
      // qrexec offers dom0 alone; the dialog never shows the qube acted on
      assert.deepEqual([q.target, q.targets, q.defaultTarget], [qube, ['dom0'], null]);
      await answer(b, q, null);
      assert.deepEqual(await call, REFUSED);
      assert.deepEqual(await state(), before);
    });
  }

  test('approved, an Admin API call goes to qubesd for the qube named, as an allowed call does', async () => {
    const approve = async (service: string, qube: string): Promise<string> => {
      const call = b.call(PRINCIPAL, qube, service);
      await answer(b, await question(b, PRINCIPAL, service), 'dom0');
      const r = await call;
      assert.equal(r.status, 0, service);
      return r.stdout;
    };
    assert.equal(await approve('admin.vm.firewall.Reload', NET), '0\0');
    assert.equal(await approve('admin.vm.Pause', FULL), '0\0');
    assert.equal(b.power(FULL), 'Paused');
    assert.equal(await approve('admin.vm.Unpause', FULL), '0\0');
    assert.equal(b.power(FULL), 'Running');
  });

  test('copy: the call asks for the source qube, the copy inside it for the destination; approved, the file arrives', async () => {
    const write = await b.call(PRINCIPAL, EXEC, 'qmcp.WriteFile', encodeWriteFileRequest({ path: '/root/gated', content: 'across' }));
    assert.equal(write.status, 0);
    const call = b.call(PRINCIPAL, EXEC, `qmcp.CopyTo+${NET}`, encodeCopyToRequest({ paths: ['/root/gated'] }));
    const outer = await question(b, PRINCIPAL, 'qmcp.CopyTo');
    // the destination is the argument, shown; the source is the operator's choice among qubes it may copy from
    assert.deepEqual([outer.argument, outer.target, outer.defaultTarget], [NET, EXEC, null]);
    assert.deepEqual(outer.targets, [TIER_QUBES.exec, TIER_QUBES.full, TIER_QUBES.net].sort());
    await answer(b, outer, EXEC);
    const inner = await question(b, EXEC, 'qubes.Filecopy');
    assert.ok(inner.targets.includes(NET) && !inner.targets.includes(EXEC));
    await answer(b, inner, NET);
    const r = await call;
    assert.equal(r.status, 0);
    assert.deepEqual(decodeCopyToReply(Buffer.from(r.stdout, 'latin1')), { message: '' });
    const read = await b.call(PRINCIPAL, NET, 'qmcp.ReadFile', encodeReadFileRequest({ path: `/home/user/QubesIncoming/${EXEC}/gated` }));
    assert.equal(decodeReadFileReply(Buffer.from(read.stdout, 'latin1')).content.toString(), 'across');
  });

  test('copy: denied, it is the refusal and nothing arrives', async () => {
    assert.equal((await b.call(PRINCIPAL, EXEC, 'qmcp.WriteFile', encodeWriteFileRequest({ path: '/root/denied', content: 'x' }))).status, 0);
    const call = b.call(PRINCIPAL, EXEC, `qmcp.CopyTo+${NET}`, encodeCopyToRequest({ paths: ['/root/denied'] }));
    await answer(b, await question(b, PRINCIPAL, 'qmcp.CopyTo'), null);
    assert.deepEqual(await call, REFUSED);
    const read = await b.call(PRINCIPAL, NET, 'qmcp.ReadFile', encodeReadFileRequest({ path: `/home/user/QubesIncoming/${EXEC}/denied` }));
    assert.throws(() => decodeReadFileReply(Buffer.from(read.stdout, 'latin1')), { kind: 'not_found' });
    assert.deepEqual(await asks(b), []);
  });

  test('a caller without a GUI qube is refused at once, as qrexec refuses an ask it cannot show', async () => {
    await b.admin.call('admin.vm.property.Set', PRINCIPAL, 'guivm', '');
    try {
      const call = b.call(PRINCIPAL, FULL, 'admin.vm.Pause');
      let done = false;
      void call.then(() => (done = true));
      await within(60_000, async () => done || (await asks(b)).length > 0, 'the call to end or wait');
      const waiting = await asks(b);
      for (const q of waiting) await answer(b, q, null);
      assert.deepEqual(waiting, []);
      assert.deepEqual(await call, REFUSED);
      assert.equal(b.power(FULL), 'Running');
    } finally {
      await b.admin.call('admin.vm.property.Reset', PRINCIPAL, 'guivm');
    }
  });
});

describe('the gate on policy-decided operations, unanswered', () => {
  let b: Boundary;
  before(async () => {
    b = await startBoundary('least-privilege', { gate: GATE, askTimeoutMs: 50 });
    await b.ensureRunning();
  });
  after(async () => {
    await b?.close();
  });

  test('a question nobody answers lapses into the refusal, and nothing changes', async () => {
    const rules = (await b.call(PRINCIPAL, NET, 'admin.vm.firewall.Get')).stdout;
    for (const op of ADMIN) assert.deepEqual(await b.call(PRINCIPAL, TIER_QUBES[op.tier], op.service), REFUSED, op.id);
    assert.deepEqual(await b.call(PRINCIPAL, EXEC, `qmcp.CopyTo+${NET}`, encodeCopyToRequest({ paths: ['/etc/hostname'] })), REFUSED);
    assert.deepEqual([b.power(FULL), (await b.call(PRINCIPAL, NET, 'admin.vm.firewall.Get')).stdout], ['Running', rules]);
  });
});
