// The self-test reads a dom0 service served by the resident process as it
// reads the per-call executable: the status from the reply's trailer, and
// the one refusal as the refusal. Anything else keeps its bytes, so two
// refusals that differ are still told apart.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { asExecutable, isRefusal, isRefusalAfterWait, REFUSED_STDERR, sameReply } from '../../src/principal/selftest/agent.js';
import { REFUSAL_REPLY, statusTrailer } from '../../src/shared/service-reply.js';

const reply = (status: number | null, stdout: string | Buffer, stderr = ''): { status: number | null; stdout: Buffer; stderr: Buffer } => ({
  status,
  stdout: Buffer.isBuffer(stdout) ? stdout : Buffer.from(stdout, 'latin1'),
  stderr: Buffer.from(stderr, 'latin1'),
});

test('a resident refusal reads as the refusal, after keepalives too; an answer keeps its stdout and status', () => {
  assert.ok(isRefusal(asExecutable(reply(0, REFUSAL_REPLY))));
  assert.ok(isRefusalAfterWait(asExecutable(reply(0, Buffer.concat([Buffer.from('\n\n'), REFUSAL_REPLY])))));
  const answer = asExecutable(reply(0, Buffer.concat([Buffer.from('{"qubes":[]}'), statusTrailer(0)])));
  assert.deepEqual([answer.status, answer.stdout.toString(), answer.stderr.length], [0, '{"qubes":[]}', 0]);
  const error = asExecutable(reply(0, Buffer.concat([Buffer.from('{"error":{}}'), statusTrailer(1)])));
  assert.equal(error.status, 1);
});

test('what is not the one refusal is left as it came: per-call replies, and a 126 trailer after other bytes', () => {
  const perCall = reply(126, '', REFUSED_STDERR);
  assert.ok(sameReply(asExecutable(perCall), perCall));
  const json = reply(0, '{"qubes":[]}');
  assert.ok(sameReply(asExecutable(json), json));
  const odd = reply(0, Buffer.concat([Buffer.from('x'), REFUSAL_REPLY]));
  assert.ok(sameReply(asExecutable(odd), odd));
  assert.ok(!isRefusal(asExecutable(odd)));
  // with stderr, it is not a socket service's reply
  const withErr = reply(0, REFUSAL_REPLY, 'e');
  assert.ok(sameReply(asExecutable(withErr), withErr));
});
