import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdirSync, mkdtempSync, rmSync, unlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { approvalsDir } from '../../src/dom0/gate/store.js';
import { makeApprovalChannelCheck, storeFiles } from '../../verify/approval-channel/check.js';
import { envServiceMode } from '../../src/sim/host.js';
import { weakened } from '../plans/helpers.js';

const SEED = 2027;
/**
 * The dom0 services served by the resident process unless
 * QMCP_DOM0_SERVICE_MODE says otherwise: the channel is the store and who
 * reaches it, not how a service is started, and per call each of the
 * attacks on a dom0 service starts a Node process. The weakened build's
 * exposing services are executables in either mode.
 */
const serviceMode = envServiceMode() ?? 'resident';

test('nothing the principal or a sandbox qube can call reads or answers a waiting request, and each ends as the operator answers it', async () => {
  const r = await makeApprovalChannelCheck({ serviceMode }).run({ scale: 1 }, SEED);
  assert.deepEqual(r.failures, []);
  const figure = (label: string): number => Number(r.figures.find((f) => f.label === label)?.value ?? 0);
  const services = figure('service names tried');
  assert.ok(services >= 150, `${services} service names`);
  assert.ok(figure('calls from the principal') >= services + 50);
  assert.ok(figure('calls from sandbox qubes') >= services);
  assert.equal(figure('reads and writes of the store from inside sandbox qubes'), 28);
  assert.ok(figure('answered with the uniform refusal') >= 2 * services);
  assert.ok(figure('answered otherwise, with nothing of a live request') >= 10);
  assert.equal(figure('requests that did not ride on another’s approval'), 2);
});

test('a build with a dom0 service that lists the waiting requests, or one that answers them, is caught', async () => {
  const weak = makeApprovalChannelCheck({
    serviceMode,
    exposing: [
      { service: 'qmcp.Approvals', mode: 'list', policy: 'qmcp.Approvals * mcp-control @adminvm allow target=dom0\n' },
      { service: 'qmcp.List', mode: 'answer' },
    ],
  });
  const r = await weak.run({ scale: 1 }, SEED);
  const whats = JSON.stringify(r.failures.map((f) => f.what));
  assert.ok(r.failures.some((f) => /^qmcp\.Approvals from mcp-control answered with what only the store holds/.test(f.what)), `the listing service: ${whats}`);
  assert.ok(r.failures.some((f) => /^the approval store changed after qmcp\.List/.test(f.what)), `the answering service: ${whats}`);
  assert.ok(r.failures.some((f) => /^after qmcp\.List.* live requests no longer simply wait/.test(f.what)), whats);
});

test('a request the gate takes between listing and reading is gone from the store, not an error', async () => {
  const root = mkdtempSync(join(tmpdir(), 'qmcp-approval-store-'));
  try {
    const dir = approvalsDir(root);
    /** The store's files while the gate takes one request right after the listing (the barrier). */
    const racing = (files: typeof storeFiles): string => {
      mkdirSync(dir, { recursive: true });
      for (const id of ['aaaaaaaa', 'bbbbbbbb']) writeFileSync(join(dir, `${id}.json`), id);
      return files(root, (listed) => {
        if (listed === dir) unlinkSync(join(dir, 'aaaaaaaa.json'));
      });
    };
    const seen = racing(storeFiles);
    assert.ok(seen.includes('bbbbbbbb.json') && !seen.includes('aaaaaaaa.json'), seen);
    // weakened: a vanished file is an error, so the check breaks off
    const weak = ((await import(weakened('../verify/approval-channel/check.js', "if (err.code === 'ENOENT')", 'if (false)'))) as { storeFiles: typeof storeFiles }).storeFiles;
    assert.throws(() => racing(weak), /ENOENT/);
  } finally {
    rmSync(root, { recursive: true, force: true });
  }
});
