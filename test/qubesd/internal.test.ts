import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import { pathToFileURL } from 'node:url';
import fc from 'fast-check';
import { pyJson } from '../../src/sim/qubesd/internal.js';
import { weakenedFile } from '../../verify/weakened-module.js';
import type { TestHost } from './helpers.js';
import { rawCall, removeDir, startTestHost } from './helpers.js';

let h: TestHost;
before(async () => {
  h = await startTestHost();
});
after(async () => {
  await h.close();
  await removeDir(h.dir);
});

test('internal.GetSystemInfo answers on the internal socket only, in json.dumps format', async () => {
  const reply = (await rawCall(h.qubesd.internalSocketPath, 'internal.GetSystemInfo+ dom0 name dom0\0')).toString('latin1');
  assert.ok(reply.startsWith('0\0{"domains": {"dom0": {"internal": null, "tags": [], "type": "AdminVM", '), reply.slice(0, 120));
  const info = JSON.parse(reply.slice(2)) as { domains: Record<string, Record<string, unknown>> };
  assert.deepEqual(Object.keys(info.domains).slice(0, 2), ['dom0', 'dvm']);
  assert.deepEqual(info.domains['dvm'], {
    internal: null,
    tags: ['ai-managed', 'guivm-dom0', 'audiovm-dom0'],
    type: 'AppVM',
    template_for_dispvms: true,
    default_dispvm: 'dvm',
    icon: 'appvm-red',
    label: '0xcc0000',
    guivm: 'dom0',
    relayvm: null,
    transport_rpc: null,
    power_state: 'Halted',
    uuid: h.qubesd.app.get('dvm')?.uuid,
  });
  assert.equal(await h.call('internal.GetSystemInfo', 'dom0'), "2\0ProtocolError\0\0no such method: 'internal.GetSystemInfo'\0");
  assert.equal((await rawCall(h.qubesd.internalSocketPath, 'admin.vm.List+ dom0 name dom0\0')).toString('latin1'), "2\0ProtocolError\0\0no such method: 'admin.vm.List'\0");
});

/** Python's json.dumps of a string with ensure_ascii: every character outside space to tilde, and the quote and backslash, escaped. */
function dumpsString(s: string): string {
  return JSON.stringify(s).replace(/[\u007f-\uffff]/g, (c) => `\\u${c.charCodeAt(0).toString(16).padStart(4, '0')}`);
}

test('a string is written as json.dumps writes it, plain or escaped; weakened, a plain path that lets a quote through is caught', async () => {
  const strings = fc.oneof(fc.string({ maxLength: 30 }), fc.array(fc.integer({ min: 0, max: 0xffff }), { maxLength: 10 }).map((units) => String.fromCharCode(...units)), fc.constantFrom('a"b', 'a\\b', '\u007f', 'ai-box', ' ~!#[]', '\u2028', '\ud83d\ude00'));
  fc.assert(fc.property(strings, (s) => pyJson(s) === dumpsString(s)));
  const weak = weakenedFile('sim/qubesd/internal', 'const PLAIN = /^[ !#-[\\]-~]*$/;', 'const PLAIN = /^[ -~]*$/;');
  const weakJson = ((await import(pathToFileURL(weak).href)) as { pyJson: typeof pyJson }).pyJson;
  assert.notEqual(weakJson('a"b'), dumpsString('a"b'));
  assert.equal(weakJson('ai-box'), dumpsString('ai-box'));
});
