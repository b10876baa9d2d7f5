import { test } from 'node:test';
import assert from 'node:assert/strict';
import { isBusyQube } from '../../verify/noninterference/busy.js';
import { makeNoninterferenceCheck, noninterferenceCheck } from '../../verify/noninterference/check.js';

const SEED = 4242;

test('machines that differ only outside the agent’s world answer alike: raw qrexec, events, MCP', async () => {
  const r = await noninterferenceCheck.run({ scale: 1 }, SEED);
  assert.deepEqual(r.failures, []);
  const figure = (label: string): number => Number(r.figures.find((f) => f.label.startsWith(label))?.value ?? 0);
  assert.equal(figure('machines compared'), 4);
  assert.ok(figure('outside edits') >= 2);
  assert.ok(figure('raw calls compared') >= 40);
  assert.ok(figure('calls from sandbox qubes') >= 3);
  assert.ok(figure('calls to special targets') >= 3);
  assert.ok(figure('calls naming a qube the machines differ in') >= 5);
  assert.ok(figure('calls compared while the operator worked outside') >= 20);
  assert.ok(figure('operator actions outside during those calls') >= 10);
  assert.ok(figure('event windows compared') >= 1);
  assert.ok(figure('MCP results compared') >= 20);
});

test('a call path that answers one machine’s outside qubes differently is caught and shrunk', async () => {
  const weak = makeNoninterferenceCheck({
    rawOnly: true,
    shrinkRuns: 8,
    call: async (m, c, real) => {
      const o = await real(m, c);
      return m.label === 'B' && m.outside.includes(c.target) ? { ...o, stdout: `${o.stdout}x` } : o;
    },
  });
  const r = await weak.run({ scale: 1 }, SEED);
  const hit = r.failures[0];
  assert.ok(hit, 'the weakened call path was not caught');
  assert.match(hit.reproduction, /--seed 4242 --scale 1 --only noninterference/);
  assert.match(hit.reproduction, /machine B edits/);
  const shrunk = /shrunk calls \((\d+) of (\d+)\)/.exec(hit.reproduction);
  assert.ok(shrunk, hit.reproduction);
  assert.ok(Number(shrunk[1]) < Number(shrunk[2]) || Number(shrunk[2]) === 1, hit.reproduction);
});

test('a policy line that lets the principal read outside power states is caught', async () => {
  const weak = makeNoninterferenceCheck({
    rawOnly: true,
    shrinkRuns: 0,
    extraPolicy: 'admin.vm.CurrentState * mcp-control @anyvm allow target=dom0\nadmin.vm.firewall.Get * mcp-control @anyvm allow target=dom0\n',
  });
  const r = await weak.run({ scale: 1 }, SEED);
  const hit = r.failures.find((f) => /admin\.vm\.(CurrentState|firewall\.Get)/.test(f.what));
  assert.ok(hit, JSON.stringify(r.failures.slice(0, 2)));
});

test('dom0 services whose answers show what the operator is making while the agent calls are caught on the busy pair', async () => {
  const weak = makeNoninterferenceCheck({
    rawOnly: true,
    busyOnly: true,
    shrinkRuns: 0,
    call: async (m, c, real) => {
      const o = await real(m, c);
      if (c.target !== '@adminvm' || !c.service.startsWith('qmcp.')) return o;
      const busy = [...m.host.qubesd.app.vms.keys()].filter(isBusyQube);
      return busy.length ? { ...o, stdout: `${o.stdout}${busy.join(',')}` } : o;
    },
  });
  const r = await weak.run({ scale: 1 }, SEED);
  const hit = r.failures.find((f) => /qmcp\./.test(f.what));
  assert.ok(hit, JSON.stringify(r.failures.slice(0, 2)));
  assert.match(hit.reproduction, /B's operator busy outside during the calls/);
});
