import assert from 'node:assert/strict';
import { test } from 'node:test';
import {
  encodeEvent,
  encodeException,
  encodeOk,
  EventStreamParser,
  FramingError,
  parseReply,
  parseRequest,
} from '../../src/shared/adminapi/wire.js';

test('parseRequest splits header, argument and payload as qubesd does', () => {
  const r = parseRequest(Buffer.from('admin.vm.property.Set+netvm dom0 name work\0sys-net'));
  assert.equal(r.method, 'admin.vm.property.Set');
  assert.equal(r.arg, 'netvm');
  assert.equal(r.src.toString(), 'dom0');
  assert.equal(r.dest.toString(), 'work');
  assert.equal(r.payload.toString(), 'sys-net');
  const k = parseRequest(Buffer.from('admin.vm.List+ mcp-control keyword adminvm\0'));
  assert.equal(k.dest.toString(), 'dom0');
  assert.equal(k.arg, '');
  const noPlus = parseRequest(Buffer.from('admin.vm.List dom0 name dom0\0'));
  assert.equal(noPlus.method, 'admin.vm.List');
  // only the first + splits; the rest stays in the argument
  assert.equal(parseRequest(Buffer.from('admin.vm.Shutdown+force+wait dom0 name x\0')).arg, 'force+wait');
  // a fourth space belongs to DEST
  assert.equal(parseRequest(Buffer.from('a+ dom0 name x y\0')).dest.toString(), 'x y');
});

test('parseRequest rejects what qubesd drops without a byte', () => {
  for (const bad of ['admin.vm.List+ dom0 name dom0', 'admin.vm.List+ dom0 name\0', 'a+ dom0 keyword default\0', 'a+ dom0 uuid x\0']) {
    assert.throws(() => parseRequest(Buffer.from(bad)), FramingError, bad);
  }
});

test('replies and events encode byte for byte', () => {
  assert.deepEqual(encodeOk(null), Buffer.from('0\0'));
  assert.deepEqual(encodeOk('x\n'), Buffer.from('0\0x\n'));
  assert.deepEqual(encodeException('QubesException', 'qubes-exception'), Buffer.from('2\0QubesException\0\0qubes-exception\0'));
  assert.deepEqual(encodeEvent({ subject: 'subject', event: 'event', kwargs: [['k', 'v']] }), Buffer.from('1\0subject\0event\0k\0v\0\0'));
  assert.deepEqual(encodeEvent({ subject: '', event: 'connection-established', kwargs: [] }), Buffer.from('1\0\0connection-established\0\0'));
});

test('parseReply and the incremental event parser', () => {
  assert.deepEqual(parseReply(Buffer.from('2\0QubesVMNotFoundError\0\0No such domain\0')), {
    ok: false,
    errorClass: 'QubesVMNotFoundError',
    traceback: '',
    message: 'No such domain',
  });
  assert.equal(parseReply(Buffer.alloc(0)), null);
  const p = new EventStreamParser();
  const bytes = Buffer.from('1\0\0connection-established\0\0' + '1\0work\0domain-tag-add:x\0tag\0x\0\0' + '1\0w\0e\0k\0\0\0');
  const got = [];
  // byte by byte: every split point must work
  for (const b of bytes) got.push(...p.push(Buffer.from([b])));
  assert.deepEqual(got, [
    { subject: '', event: 'connection-established', kwargs: [] },
    { subject: 'work', event: 'domain-tag-add:x', kwargs: [['tag', 'x']] },
    { subject: 'w', event: 'e', kwargs: [['k', '']] },
  ]);
  assert.equal(p.hasPartial, false);
});
