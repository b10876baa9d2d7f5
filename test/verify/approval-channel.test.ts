import { test } from 'node:test';
import assert from 'node:assert/strict';
import { approvalChannelCheck, makeApprovalChannelCheck } from '../../verify/approval-channel/check.js';

const SEED = 2027;

test('nothing the principal or a sandbox qube can call reads or answers a waiting request, and each ends as the operator answers it', async () => {
  const r = await approvalChannelCheck.run({ scale: 1 }, SEED);
  assert.deepEqual(r.failures, []);
  const figure = (label: string): number => Number(r.figures.find((f) => f.label === label)?.value ?? 0);
  const services = figure('service names tried');
  assert.ok(services >= 150, `${services} service names`);
  assert.ok(figure('calls from the principal') >= 2 * services);
  assert.ok(figure('calls from sandbox qubes') >= 2 * services);
  assert.equal(figure('reads and writes of the store from inside sandbox qubes'), 28);
  assert.ok(figure('answered with the uniform refusal') >= 3 * services);
  assert.ok(figure('answered otherwise, with nothing of a live request') >= 10);
  assert.equal(figure('requests that did not ride on another’s approval'), 2);
});

test('a build with a dom0 service that lists the waiting requests is caught', async () => {
  const weak = makeApprovalChannelCheck({ exposing: { service: 'qmcp.Approvals', mode: 'list', policy: 'qmcp.Approvals * mcp-control @adminvm allow target=dom0\n' } });
  const r = await weak.run({ scale: 1 }, SEED);
  const hit = r.failures[0];
  assert.ok(hit, 'the listing service was not caught');
  assert.match(hit.what, /^qmcp\.Approvals from mcp-control answered with what only the store holds/);
});

test('a build whose dom0 service answers the waiting requests is caught', async () => {
  const weak = makeApprovalChannelCheck({ exposing: { service: 'qmcp.List', mode: 'answer' } });
  const r = await weak.run({ scale: 1 }, SEED);
  assert.ok(r.failures.some((f) => /^the approval store changed after qmcp\.List/.test(f.what)), JSON.stringify(r.failures.slice(0, 2)));
  assert.ok(r.failures.some((f) => /live requests no longer simply wait: .*answered/.test(f.what)), JSON.stringify(r.failures.slice(0, 2)));
});
