/** The boundary's invariants (test/boundary/invariants.test.ts in the mode QMCP_DOM0_SERVICE_MODE names, resident.test.ts in resident mode). */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import type { Mode, Operation } from '../../src/shared/model/index.js';
import { OPERATIONS } from '../../src/shared/model/index.js';
import {
  ABSENT,
  HALTED,
  HYBRID,
  OUTSIDE,
  PRINCIPAL,
  REFUSED,
  SINK,
  TIER_QUBES,
  atLeast,
  effectiveTier,
  startBoundary,
} from './helpers.js';
import type { Boundary, Reply } from './helpers.js';
import { DEVICE_REFUSALS, DOM0_ADMIN, DOM0_ADMIN_SOURCES, NATIVE_DENIED, NATIVE_TARGETS, SANDBOX_DENIED, SANDBOX_SOURCES } from './refusal-cases.js';
import type { ServiceMode } from '../../src/dom0/install/manifest.js';

/** The table's operations the policy alone decides: native Admin API calls and in-qube services. */
const POLICY_OPS = OPERATIONS.filter((o) => o.layer === 'policy');
/** In-qube first, then reads, then the calls that pause or stop the qube. */
const ORDER = ['in-qube', 'admin-api'];
const STOPPING = ['admin.vm.Pause', 'admin.vm.Unpause', 'admin.vm.Shutdown', 'admin.vm.Kill'];
const SEQUENCE = [...POLICY_OPS].sort(
  (a, b) => ORDER.indexOf(a.target) - ORDER.indexOf(b.target) || STOPPING.indexOf(a.service) - STOPPING.indexOf(b.service),
);

/** How the principal addresses an operation on a qube. */
function principalCall(b: Boundary, op: Operation, qube: string): Promise<Reply> {
  if (op.target === 'dom0-service') return b.call(PRINCIPAL, '@adminvm', op.argumentIsQube ? `${op.service}+${qube}` : op.service);
  return b.call(PRINCIPAL, qube, op.service);
}

/** The call reached its handler: the in-qube service's framed reply, or qubesd's own reply (ok or error). */
function reached(r: Reply): boolean {
  return r.status === 0 && /^(qmcp 1\n|0\0|2\0)/.test(r.stdout);
}

/** Every invariant check below, on a host whose dom0 services are served the given way. */
export function boundarySuite(serviceMode: ServiceMode): void {
  describe(`the trust boundary on a simulated host with the real install (${serviceMode} dom0 services)`, () => {
    let b: Boundary;
    before(async () => {
      b = await startBoundary('least-privilege', { serviceMode });
    });
    after(async () => {
      await b.close();
    });

    for (const mode of ['least-privilege', 'compat'] as const satisfies readonly Mode[]) {
      test(`(a) every policy-layer operation at every tier is allowed or refused as the table says (${mode})`, async () => {
        await b.setMode(mode);
        await b.ensureRunning();
        assert.ok(SEQUENCE.length >= 9);
        for (const op of SEQUENCE) {
          for (const qube of Object.values(TIER_QUBES)) {
            const allowed = atLeast(effectiveTier(qube, mode), op.tier);
            const r = await principalCall(b, op, qube);
            if (allowed) assert.ok(reached(r), `${op.service} on ${qube} (${mode}) should pass the boundary: ${JSON.stringify(r)}`);
            else assert.deepEqual(r, REFUSED, `${op.service} on ${qube} (${mode}) should be refused`);
          }
        }
      });
    }

    test('(b) absent, outside and below-tier qubes get byte-identical replies for every operation naming a qube', async () => {
      await b.setMode('least-privilege');
      await b.ensureRunning();
      const below: Record<string, string | undefined> = { read: undefined, exec: TIER_QUBES.read, net: TIER_QUBES.exec, full: TIER_QUBES.net };
      const ops = OPERATIONS.filter((o) => o.layer === 'policy' || o.argumentIsQube);
      assert.ok(ops.length > POLICY_OPS.length);
      for (const op of ops) {
        const absent = await principalCall(b, op, ABSENT);
        assert.deepEqual(absent, REFUSED, `${op.service} on an absent qube`);
        assert.deepEqual(await principalCall(b, op, OUTSIDE), absent, `${op.service} outside`);
        assert.deepEqual(await principalCall(b, op, 'dom0'), absent, `${op.service} on dom0`);
        const low = below[op.tier];
        if (low) assert.deepEqual(await principalCall(b, op, low), absent, `${op.service} below tier`);
      }
    });

    test('(b) device attach through the router: outside, absent, below-tier and pci refuse with the same bytes', async () => {
      await b.setMode('least-privilege');
      const attach = (frontend: string, payload: object): Promise<Reply> =>
        b.call(PRINCIPAL, '@adminvm', `qmcp.DeviceAttach+${frontend}`, JSON.stringify(payload));
      const absent = await attach(ABSENT, { class: 'block', backend: TIER_QUBES.full, port: 'xvdi' });
      assert.deepEqual(absent, REFUSED);
      for (const [frontend, payload] of DEVICE_REFUSALS) assert.deepEqual(await attach(frontend, payload), absent, `${frontend} ${JSON.stringify(payload)}`);
    });

    test('(c) calls from inside sandbox and sink qubes: only the copy and forward meshes, sink pushes and background services pass', async () => {
      await b.setMode('least-privilege');
      await b.ensureRunning();
      for (const source of SANDBOX_SOURCES) {
        for (const [target, service] of SANDBOX_DENIED) {
          if (target === source) continue;
          assert.deepEqual(await b.call(source, target, service), REFUSED, `${source} -> ${target} ${service}`);
        }
      }
      // the copy mesh among exec-capable qubes
      const mesh: [string, string][] = [
        [TIER_QUBES.exec, TIER_QUBES.full],
        [TIER_QUBES.full, TIER_QUBES.net],
        [TIER_QUBES.net, TIER_QUBES.exec],
      ];
      for (const [source, target] of mesh) {
        const r = await b.call(source, target, 'qubes.Filecopy');
        // the receiver ran inside the target and answered the empty stream as qfile-unpacker: EREMOTEIO
        assert.deepEqual(r, { status: 121, stdout: 'result 121 \n', stderr: '' }, `${source} -> ${target} qubes.Filecopy should pass`);
        assert.deepEqual(await b.call(source, target, 'qmcp.SinkPush'), REFUSED, `${source} -> ${target} qmcp.SinkPush`);
      }
      // pushes into a sink or a hybrid: the sink service, which answers nothing; never Qubes' receiver
      for (const [source, target] of [
        [TIER_QUBES.exec, SINK],
        [TIER_QUBES.full, SINK],
        [TIER_QUBES.full, HYBRID],
      ] as const) {
        assert.deepEqual(await b.call(source, target, 'qmcp.SinkPush'), { status: 0, stdout: '', stderr: '' }, `${source} -> ${target} qmcp.SinkPush`);
        assert.deepEqual(await b.call(source, target, 'qubes.Filecopy'), REFUSED, `${source} -> ${target} qubes.Filecopy`);
      }
      // a sink never copies anywhere, and an umbrella+sink hybrid is a sink
      for (const target of [TIER_QUBES.full, TIER_QUBES.exec, SINK, HYBRID]) {
        for (const service of ['qubes.Filecopy', 'qmcp.SinkPush']) {
          assert.deepEqual(await b.call(HYBRID, target, service), REFUSED, `hybrid -> ${target} ${service}`);
          if (target !== SINK) assert.deepEqual(await b.call(SINK, target, service), REFUSED, `sink -> ${target} ${service}`);
        }
      }
      // the forward mesh: exec-capable to exec-capable; the target's qrexec finds nothing on the port (125), the call was let through
      for (const [source, target] of mesh) {
        assert.deepEqual(await b.call(source, target, 'qubes.ConnectTCP+8080'), { status: 125, stdout: '', stderr: '' }, `${source} -> ${target} qubes.ConnectTCP`);
      }
      for (const source of [TIER_QUBES.read, SINK, HYBRID]) {
        assert.deepEqual(await b.call(source, TIER_QUBES.exec, 'qubes.ConnectTCP+8080'), REFUSED, `${source} -> exec qubes.ConnectTCP`);
      }
      // the background services of the table pass (dom0 has no handler here: 127, not a refusal)
      for (const source of [TIER_QUBES.read, SINK, HYBRID]) {
        assert.notDeepEqual(await b.call(source, 'dom0', 'qubes.FeaturesRequest'), REFUSED, `${source} qubes.FeaturesRequest`);
        // but not the one that marks a template up the qube's chain (test/boundary/notify-updates.test.ts)
        assert.deepEqual(await b.call(source, 'dom0', 'qubes.NotifyUpdates', '1'), REFUSED, `${source} qubes.NotifyUpdates`);
      }
      // nor may the principal reach a sink or a hybrid
      assert.deepEqual(await b.call(PRINCIPAL, HYBRID, 'qmcp.Exec'), REFUSED);
      assert.deepEqual(await b.call(PRINCIPAL, SINK, 'qmcp.ReadFile'), REFUSED);
    });

    test('(c) a call to a halted qube is refused and does not start it', async () => {
      await b.setMode('least-privilege');
      await b.ensureRunning();
      assert.equal(b.power(HALTED), 'Halted');
      assert.deepEqual(await b.call(PRINCIPAL, HALTED, 'qmcp.Exec'), REFUSED);
      assert.deepEqual(await b.call(TIER_QUBES.exec, HALTED, 'qubes.Filecopy'), REFUSED);
      assert.deepEqual(await b.call(TIER_QUBES.exec, HALTED, 'qubes.ConnectTCP+8080'), REFUSED);
      // a read through qubesd is allowed and starts nothing either
      assert.notDeepEqual(await b.call(PRINCIPAL, HALTED, 'admin.vm.CurrentState'), REFUSED);
      assert.equal(b.power(HALTED), 'Halted');
    });

    test('(d) tag, property and feature native calls are denied to the principal on every qube', async () => {
      await b.setMode('compat');
      for (const s of NATIVE_DENIED) {
        for (const qube of NATIVE_TARGETS) {
          assert.deepEqual(await b.call(PRINCIPAL, qube, s), REFUSED, `${s} on ${qube}`);
        }
      }
      const tags = b.host.qubesd.app.vms.get(TIER_QUBES.full)?.tags ?? [];
      // the qube keeps its own tags and the ones qubesd's GUI and audio extensions give it
      assert.deepEqual([...tags].sort(), ['ai-full', 'ai-managed', 'audiovm-dom0', 'guivm-dom0']);
    });

    test('(d) the native kill, shutdown and firewall set are refused on every qube like any ungranted Admin API call; only the dom0 services reach them', async () => {
      await b.setMode('compat');
      await b.ensureRunning();
      const rules = async (): Promise<string> => (await b.call(PRINCIPAL, TIER_QUBES.full, 'admin.vm.firewall.Get')).stdout;
      const before = await rules();
      for (const qube of [...Object.values(TIER_QUBES), OUTSIDE]) {
        const ungranted = await b.call(PRINCIPAL, qube, 'admin.vm.notes.Set', 'x');
        assert.deepEqual(ungranted, REFUSED, `admin.vm.notes.Set on ${qube}`);
        for (const [service, payload] of [['admin.vm.Kill', ''], ['admin.vm.Shutdown', ''], ['admin.vm.firewall.Set', 'action=drop\n']] as const) {
          assert.deepEqual(await b.call(PRINCIPAL, qube, service, payload), ungranted, `${service} on ${qube}`);
        }
      }
      assert.deepEqual([...Object.values(TIER_QUBES)].map((q) => b.power(q)), Object.values(TIER_QUBES).map(() => 'Running'));
      assert.equal(await rules(), before);
      // the same stop through its dom0 service passes the boundary
      const killed = await b.call(PRINCIPAL, '@adminvm', `qmcp.Kill+${TIER_QUBES.exec}`);
      assert.deepEqual([killed.status, JSON.parse(killed.stdout)], [0, { name: TIER_QUBES.exec }]);
      assert.equal(b.power(TIER_QUBES.exec), 'Halted');
      await b.ensureRunning();
    });

    test('(e) admin.* calls aimed at dom0 or @adminvm are denied, from the principal and from sandboxes', async () => {
      await b.setMode('compat');
      for (const source of DOM0_ADMIN_SOURCES) {
        for (const target of ['dom0', '@adminvm']) {
          for (const s of DOM0_ADMIN) assert.deepEqual(await b.call(source, target, s), REFUSED, `${source} -> ${target} ${s}`);
        }
      }
      assert.ok(b.host.qubesd.app.vms.has('dom0'));
    });
  });
}
