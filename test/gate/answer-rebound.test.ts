/**
 * `qmcp dom0 approvals allow` of a request made under other settings: the
 * service would refuse it after the approval ('rebound'), so the operator
 * is told at once and no approval is recorded.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { AnswerRefused, answerApproval } from '../../src/dom0/operator/approvals.js';
import type { ApprovalOps } from '../../src/dom0/operator/approvals.js';
import { approvalsDir } from '../../src/dom0/gate/store.js';
import { REFUSED, call } from '../services-write/helpers.js';
import { startHost } from '../services-write/helpers.js';
import { ASKING, auditEntries, pendingRequest, weakenedFile } from './helpers.js';

type AnswerApproval = typeof answerApproval;

/** The operator's side with the rebound check taken out. */
async function weakenedAnswer(): Promise<AnswerApproval> {
  const path = weakenedFile('dom0/operator/approvals', "if (decision === 'allow') {", 'if (false) {');
  return ((await import(pathToFileURL(path).href)) as { answerApproval: AnswerApproval }).answerApproval;
}

test('allow of a request made under other settings is refused before it is recorded, saying why; the agent must ask again', async () => {
  const h = await startHost(ASKING);
  try {
    const ops = (): ApprovalOps => ({ root: h.root, qubesd: h.qubesd, now: () => new Date() });
    const waiting = call(h, 'qmcp.SetFeature+ai-box', { name: 'gui', value: '0' });
    const r = await pendingRequest(h.root);
    // installed again with another setting while the call waits
    h.writeSettings({ ...ASKING, featureAllowlist: ['menu-items', 'gui'] });
    await assert.rejects(answerApproval(ops(), r.id, 'allow', 'tester', 'cli'), (e: unknown) => {
      assert.ok(e instanceof AnswerRefused);
      assert.equal(e.reason, 'rebound');
      assert.match(e.message, /settings or the model changed since the request was made; the request is worthless: .*the agent must ask again/);
      return true;
    });
    assert.equal(existsSync(join(approvalsDir(h.root), `${r.id}.answer.json`)), false, 'no approval recorded');

    // weakened: the approval is recorded and reported as given, and the service refuses the call all the same
    await (await weakenedAnswer())(ops(), r.id, 'allow', 'tester', 'cli');
    const result = await waiting;
    assert.equal(result.status, REFUSED.status);
    const trail = (await auditEntries(h.root)).filter((e) => e.correlation === r.correlation && e.kind === 'answer').map((e) => e.detail);
    assert.deepEqual(trail, ['allow by tester via cli', 'rebound']);

    // under the settings it was made with, allow is recorded as before
    const again = call(h, 'qmcp.SetFeature+ai-box', { name: 'gui', value: '0' });
    await answerApproval(ops(), (await pendingRequest(h.root)).id, 'allow', 'tester', 'cli');
    assert.equal((await again).status, 0);

    // a deny is never refused for it: it only ends the request sooner
    const denied = call(h, 'qmcp.SetFeature+ai-box', { name: 'gui', value: '1' });
    const r3 = await pendingRequest(h.root);
    h.writeSettings({ ...ASKING, featureAllowlist: ['menu-items'] });
    await answerApproval(ops(), r3.id, 'deny', 'tester', 'cli');
    assert.equal((await denied).status, REFUSED.status);
  } finally {
    await h.done();
  }
});
