import { test } from 'node:test';
import assert from 'node:assert/strict';
import { appendFileSync, mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { compiled, weakenedCopy } from '../../verify/weakened-module.js';
import { Dom0Files } from '../../verify/malformed/dom0-files.js';

type Files = typeof Dom0Files;

const real = compiled('../verify/malformed/dom0-files');
/** A look that trusts the watches before the loop has let them report. */
const unwaited = weakenedCopy(real, 'await pollPhase();', '');
/** Watches that never report: only the periodic walk is left. */
const deaf = weakenedCopy(real, 'if (!volatile(relative(this.root, path), false))', 'if (false)');

/** Watches that stay on a removed directory's inode when one of its name is made again. */
const stale = weakenedCopy(real, 'this.forget(path);', '');

async function load(path: string): Promise<Files> {
  return ((await import(pathToFileURL(path).href)) as { Dom0Files: Files }).Dom0Files;
}

function dom0(): string {
  const root = mkdtempSync(join(tmpdir(), 'qmcp-dom0-files-'));
  for (const dir of ['etc/qmcp', 'etc/qubes/policy.d', 'var/lib/qmcp/slots', 'var/log/qmcp']) mkdirSync(join(root, dir), { recursive: true });
  writeFileSync(join(root, 'etc/qmcp/settings.json'), '{}');
  writeFileSync(join(root, 'etc/qubes/policy.d/30-qmcp.policy'), '');
  return root;
}

/** Each change made just before a look, in the same turn of the loop: every look must see it; changes to volatile paths cost no walk. */
async function findings(Files: Files): Promise<string[]> {
  const root = dom0();
  const files = new Dom0Files(root);
  const f = new Files(root);
  const missed: string[] = [];
  try {
    let last = f.walk();
    assert.equal(last.size, 2);
    const changes: [string, () => void, (m: ReadonlyMap<string, string>) => boolean][] = [
      ['a new file', () => writeFileSync(join(root, 'etc/qmcp/leak'), 'x'), (m) => m.has('etc/qmcp/leak')],
      ['a file changed in place', () => appendFileSync(join(root, 'etc/qubes/policy.d/30-qmcp.policy'), '#'), (m) => m.get('etc/qubes/policy.d/30-qmcp.policy') !== last.get('etc/qubes/policy.d/30-qmcp.policy')],
      ['a new directory with a file', () => (mkdirSync(join(root, 'etc/qmcp/new')), writeFileSync(join(root, 'etc/qmcp/new/f'), '')), (m) => m.has('etc/qmcp/new/f')],
      ['a file in that new directory', () => writeFileSync(join(root, 'etc/qmcp/new/g'), ''), (m) => m.has('etc/qmcp/new/g')],
      ['a file removed', () => rmSync(join(root, 'etc/qmcp/leak')), (m) => !m.has('etc/qmcp/leak')],
      ['a directory made again', () => (rmSync(join(root, 'etc/qmcp/new'), { recursive: true }), mkdirSync(join(root, 'etc/qmcp/new'))), (m) => !m.has('etc/qmcp/new/f')],
      ['a file in the directory made again', () => writeFileSync(join(root, 'etc/qmcp/new/h'), ''), (m) => m.has('etc/qmcp/new/h')],
    ];
    for (const [what, change, seen] of changes) {
      change();
      const now = await f.now();
      if (!seen(now)) missed.push(what);
      last = now;
    }
    // the audit log, the witness and the call slots change at every call: no walk
    const walked = await f.now();
    for (let i = 0; i < 5; i++) {
      appendFileSync(join(root, 'var/log/qmcp/audit.log'), 'x\n');
      writeFileSync(join(root, 'var/lib/qmcp/audit-witness'), String(i));
      writeFileSync(join(root, `var/lib/qmcp/slots/s${i}`), '');
      writeFileSync(join(root, 'etc/qmcp/a.lock'), '');
      if ((await f.now()) !== walked) missed.push(`volatile change ${i} made a walk`);
    }
    if (JSON.stringify([...files.walk()].sort()) !== JSON.stringify([...walked].sort())) missed.push('the last look is not the files');
  } finally {
    f.close();
    rmSync(root, { recursive: true, force: true });
  }
  return missed;
}

test('a look sees every change made just before it, and walks for none of the volatile ones', async () => {
  assert.deepEqual(await findings(Dom0Files), []);
});

test('a look that does not let the watches report, watches that never do, and watches left on a removed directory miss changes', async () => {
  // the removal is of a file neither ever walked
  const missed = ['a new file', 'a file changed in place', 'a new directory with a file', 'a file in that new directory', 'a file in the directory made again', 'the last look is not the files'];
  assert.deepEqual(await findings(await load(unwaited)), missed);
  assert.deepEqual(await findings(await load(deaf)), missed);
  assert.deepEqual(await findings(await load(stale)), ['a file in the directory made again', 'the last look is not the files']);
});
