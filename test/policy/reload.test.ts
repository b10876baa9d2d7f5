// The router's and qubesd's policy is parsed again only when its files
// answer differently: a file rewritten to the same size and mtime, added,
// removed, or broken is seen at the next call; unchanged files reuse the
// parsed policy.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdirSync, mkdtempSync, rmSync, statSync, unlinkSync, utimesSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { DomainInfo, SystemInfo } from '../../src/shared/policy/index.js';
import { PolicyReloader } from '../../src/shared/policy/reload.js';
import { weakened } from '../plans/helpers.js';

const vm = (over: Partial<DomainInfo> & { uuid: string }): DomainInfo => ({ tags: [], type: 'AppVM', template_for_dispvms: false, default_dispvm: null, power_state: 'Running', ...over });
const system: SystemInfo = {
  domains: {
    dom0: vm({ type: 'AdminVM', uuid: '00000000-0000-0000-0000-000000000000' }),
    work: vm({ uuid: '10000000-0000-4000-8000-000000000001' }),
    vault: vm({ uuid: '10000000-0000-4000-8000-000000000002' }),
  },
};

type Reloader = new (root: string) => { load(): ReturnType<PolicyReloader['load']> };

/** The action for work -> vault qubes.Filecopy under RELOADER's policy now; 'error' when it throws. */
function action(reloader: { load(): ReturnType<PolicyReloader['load']> }): string {
  try {
    return reloader.load().evaluate({ source: 'work', target: 'vault', service: 'qubes.Filecopy', argument: '' }, system).action;
  } catch (err) {
    return (err as Error).name;
  }
}

/** Writes TEXT over PATH keeping its size and times, as an edit within one mtime tick would leave it. */
function rewriteInPlace(path: string, text: string): void {
  const before = statSync(path);
  assert.equal(Buffer.byteLength(text), before.size);
  writeFileSync(path, text);
  utimesSync(path, before.atime, before.mtime);
}

async function follows(Make: Reloader): Promise<void> {
  const root = mkdtempSync(join(tmpdir(), 'qmcp-policy-reload-'));
  try {
    const dir = join(root, 'etc', 'qubes', 'policy.d');
    mkdirSync(dir, { recursive: true });
    const file = join(dir, '30-a.policy');
    writeFileSync(file, 'qubes.Filecopy * work vault allow\n');
    const r = new Make(root);
    assert.equal(action(r), 'allow');
    // nothing changed: the parsed policy is reused
    assert.equal(r.load(), r.load());
    rewriteInPlace(file, 'qubes.Filecopy * work vault deny \n');
    assert.equal(action(r), 'deny', 'a rewrite of the same size and mtime is seen');
    writeFileSync(join(dir, '20-b.policy'), 'qubes.Filecopy * work vault allow\n');
    assert.equal(action(r), 'allow', 'a new file before it is seen');
    unlinkSync(join(dir, '20-b.policy'));
    assert.equal(action(r), 'deny', 'a removed file is seen');
    writeFileSync(join(dir, '10-bad.policy'), 'qubes.Filecopy * work\n');
    assert.equal(action(r), 'PolicySyntaxError');
    assert.equal(action(r), 'PolicySyntaxError', 'a broken policy stays broken while its files do');
    unlinkSync(join(dir, '10-bad.policy'));
    // an included file is a file the policy read
    writeFileSync(join(root, 'inc'), 'qubes.Filecopy * work vault allow\n');
    writeFileSync(join(dir, '10-inc.policy'), `!include ${join(root, 'inc')}\n`);
    assert.equal(action(r), 'allow');
    rewriteInPlace(join(root, 'inc'), 'qubes.Filecopy * work vault deny \n');
    assert.equal(action(r), 'deny', 'an included file rewritten is seen');
    // a run directory appearing takes over a file of the same name
    const run = join(root, 'run', 'qubes', 'policy.d');
    mkdirSync(run, { recursive: true });
    writeFileSync(join(run, '10-inc.policy'), 'qubes.Filecopy * work vault allow\n');
    assert.equal(action(r), 'allow', 'a run directory is seen');
  } finally {
    rmSync(root, { recursive: true, force: true });
  }
}

test('the policy follows every change of its files, and is reused while they answer alike', async () => {
  await follows(PolicyReloader);
});

test('a reloader that asks again only which files there are, not what they hold, misses a rewrite: caught', async () => {
  const weak = weakened('shared/policy/reload.js', 'last.questions.every((q) => sameOutcome(outcome(q.ask), q.answer))', 'last.questions.every((q) => q.ask.toString().includes("fs.read") || sameOutcome(outcome(q.ask), q.answer))');
  const { PolicyReloader: Weak } = (await import(weak)) as { PolicyReloader: Reloader };
  await assert.rejects(follows(Weak), /a rewrite of the same size and mtime is seen/);
});
