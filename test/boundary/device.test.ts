import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { auditLogPath } from '../../src/dom0/audit/index.js';
import type { Fleet } from '../../src/sim/fleet.js';
import { BASE_SETTINGS, REFUSED, auditValid, call, json, startHost, testFleet } from '../services-write/helpers.js';
import type { Host } from '../services-write/helpers.js';

/** The write-test fleet plus a full-tier usb/block backend, and devices on outside and below-tier backends. */
function deviceFleet(): Fleet {
  const f = testFleet();
  f.qubes.push(
    { name: 'ai-usb', klass: 'AppVM', template: 'ai-tpl', label: 'red', tags: ['ai-managed', 'ai-full'], properties: { netvm: null } },
    { name: 'sys-usb', klass: 'AppVM', template: 'debian', label: 'red', properties: { netvm: null } },
  );
  f.devices = {
    block: { 'ai-usb': [{ port: 'sda', devid: 'disk1', description: 'stick' }], 'ai-execbox': [{ port: 'sdb', devid: 'disk2' }] },
    usb: { 'ai-usb': [{ port: '2-1', devid: '0x1234:0x5678', interfaces: 'u03**01' }], 'sys-usb': [{ port: '1-1', devid: '0xaaaa:0xbbbb', interfaces: 'u03**01' }] },
    pci: { 'ai-usb': [{ port: '00_1f.0', devid: '0x8086:0x1234' }] },
  };
  return f;
}

async function deviceHost(): Promise<Host> {
  const h = await startHost(BASE_SETTINGS, deviceFleet());
  for (const n of ['ai-usb', 'ai-box', 'ai-execbox', 'sys-usb', 'vault']) {
    const vm = h.vm(n);
    if (vm) vm.power = 'Running';
  }
  return h;
}

test('device attach and detach between full-tier qubes work and are audited by class, never by value', async () => {
  const h = await deviceHost();
  try {
    const r = await call(h, 'qmcp.DeviceAttach+ai-box', { class: 'block', backend: 'ai-usb', port: 'sda', options: { 'read-only': true } });
    assert.equal(r.status, 0, r.stderr);
    assert.deepEqual(json(r), { frontend: 'ai-box', class: 'block', backend: 'ai-usb', port: 'sda' });
    const a = h.vm('ai-box')?.attached['block']?.[0];
    assert.deepEqual(a && { backend: a.backend, port: a.port, mode: a.mode, options: a.options }, {
      backend: 'ai-usb',
      port: 'sda',
      mode: 'manual',
      options: { 'read-only': 'yes' },
    });
    assert.deepEqual(h.vm('ai-box')?.assigned['block'] ?? [], []);

    const u = await call(h, 'qmcp.DeviceAttach+ai-box', { class: 'usb', backend: 'ai-usb', port: '2-1', device_id: '0x1234:0x5678' });
    assert.equal(u.status, 0, u.stderr);
    // in scope: the agent may learn the device is taken
    const again = await call(h, 'qmcp.DeviceAttach+ai-box', { class: 'usb', backend: 'ai-usb', port: '2-1' });
    assert.notEqual(again.status, 0);
    assert.match(again.stdout + again.stderr, /device_in_use/);

    const d = await call(h, 'qmcp.DeviceDetach+ai-box', { class: 'block', backend: 'ai-usb', port: 'sda' });
    assert.equal(d.status, 0, d.stderr);
    assert.deepEqual(h.vm('ai-box')?.attached['block'] ?? [], []);

    const log = readFileSync(auditLogPath(h.root), 'utf8');
    assert.match(log, /device\.attach/);
    assert.match(log, /device\.detach/);
    assert.doesNotMatch(log, /read-only|0x1234/);
    assert.equal(await auditValid(h), true);
  } finally {
    await h.done();
  }
});

test('device attach: outside, below tier, pci, persistent, required and bad ids refuse exactly as an absent qube', async () => {
  const h = await deviceHost();
  try {
    const absent = await call(h, 'qmcp.DeviceAttach+nosuch', { class: 'block', backend: 'ai-usb', port: 'sda' });
    assert.deepEqual(absent, REFUSED);
    const cases: [string, string, unknown][] = [
      ['backend outside the umbrella', 'qmcp.DeviceAttach+ai-box', { class: 'usb', backend: 'sys-usb', port: '1-1' }],
      ['backend absent', 'qmcp.DeviceAttach+ai-box', { class: 'usb', backend: 'nosuch', port: '1-1' }],
      ['frontend below full', 'qmcp.DeviceAttach+ai-execbox', { class: 'block', backend: 'ai-usb', port: 'sda' }],
      ['backend below full', 'qmcp.DeviceAttach+ai-box', { class: 'block', backend: 'ai-execbox', port: 'sdb' }],
      ['frontend outside', 'qmcp.DeviceAttach+vault', { class: 'block', backend: 'ai-usb', port: 'sda' }],
      ['frontend dom0', 'qmcp.DeviceAttach+dom0', { class: 'block', backend: 'ai-usb', port: 'sda' }],
      ['pci class', 'qmcp.DeviceAttach+ai-box', { class: 'pci', backend: 'ai-usb', port: '00_1f.0' }],
      ['persistent option', 'qmcp.DeviceAttach+ai-box', { class: 'block', backend: 'ai-usb', port: 'sda', options: { persistent: true } }],
      ['required mode', 'qmcp.DeviceAttach+ai-box', { class: 'block', backend: 'ai-usb', port: 'sda', mode: 'required' }],
      ['option on usb', 'qmcp.DeviceAttach+ai-box', { class: 'usb', backend: 'ai-usb', port: '2-1', options: { 'read-only': true } }],
      ['string option value', 'qmcp.DeviceAttach+ai-box', { class: 'block', backend: 'ai-usb', port: 'sda', options: { 'read-only': 'yes' } }],
      ['port with argument separator', 'qmcp.DeviceAttach+ai-box', { class: 'block', backend: 'ai-usb', port: 'sda+x' }],
      ['port with quote', 'qmcp.DeviceAttach+ai-box', { class: 'block', backend: 'ai-usb', port: "sda'" }],
      ['device id with space', 'qmcp.DeviceAttach+ai-box', { class: 'block', backend: 'ai-usb', port: 'sda', device_id: 'a b' }],
      ['backend name invalid', 'qmcp.DeviceAttach+ai-box', { class: 'block', backend: '../x', port: 'sda' }],
      ['self as backend', 'qmcp.DeviceAttach+ai-usb', { class: 'block', backend: 'ai-usb', port: 'sda' }],
      ['not json', 'qmcp.DeviceAttach+ai-box', 'block ai-usb sda'],
      ['detach from outside backend', 'qmcp.DeviceDetach+ai-box', { class: 'usb', backend: 'sys-usb', port: '1-1' }],
      ['detach with options', 'qmcp.DeviceDetach+ai-box', { class: 'block', backend: 'ai-usb', port: 'sda', options: {} }],
      ['detach pci', 'qmcp.DeviceDetach+ai-box', { class: 'pci', backend: 'ai-usb', port: '00_1f.0' }],
    ];
    for (const [why, full, payload] of cases) assert.deepEqual(await call(h, full, payload), absent, why);
    for (const n of ['ai-box', 'ai-execbox', 'vault']) {
      const vm = h.vm(n);
      assert.deepEqual({ ...vm?.attached }, {}, n);
      assert.deepEqual({ ...vm?.assigned }, {}, n);
    }
    assert.equal(await auditValid(h), true);
  } finally {
    await h.done();
  }
});
