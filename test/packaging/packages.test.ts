// The RPMs and the deb, built from the release archives, hold exactly what
// the installer and src/qube/install.sh install. Built once for this file.
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { archiveName, buildRelease } from '../../scripts/artefacts/build.js';
import { qubeInstalled } from '../../scripts/artefacts/contents.js';
import { hasTool } from '../../scripts/artefacts/packages.js';
import { readTarGz, repo, run, version } from './helpers.js';

const rpmReason = hasTool('rpmbuild') && hasTool('rpm') ? false : 'rpmbuild is not installed (Debian: apt-get install rpm)';
const debReason = hasTool('dpkg-deb') ? false : 'dpkg-deb is not installed';
const tmp = mkdtempSync(join(tmpdir(), 'qmcp-packages-test-'));
const out = join(tmp, 'release');
const dom0Rpm = join(out, `qmcp-dom0-${version}-1.noarch.rpm`);
const qubeRpm = join(out, `qmcp-qube-${version}-1.noarch.rpm`);
const deb = join(out, `qmcp-qube_${version}_all.deb`);
const installed = qubeInstalled(repo);

before(async () => {
  if (rpmReason && debReason) return;
  const report = await buildRelease({ repo, out, packages: true });
  if (!rpmReason) assert.ok(report.artefacts.includes(`qmcp-dom0-${version}-1.noarch.rpm`), report.skipped.join('; '));
});
after(() => rmSync(tmp, { recursive: true, force: true }));

async function lines(cmd: string, args: string[]): Promise<string[]> {
  const r = await run(cmd, args);
  assert.equal(r.status, 0, `${cmd} ${args.join(' ')}: ${r.stderr}`);
  return r.stdout.split('\n').filter((l) => l !== '');
}

test('the dom0 RPM holds the dom0 archive under /usr/lib/qmcp and the qmcp link, nothing else', { skip: rpmReason }, async () => {
  const top = `qmcp-dom0-${version}/`;
  const entries = readTarGz(readFileSync(join(out, archiveName('dom0', version)))).filter((e) => e.path.startsWith(top));
  const expected = ['/usr/bin/qmcp', '/usr/lib/qmcp', ...entries.map((e) => `/usr/lib/qmcp/${e.path.slice(top.length)}`)].sort();
  assert.deepEqual((await lines('rpm', ['-qlp', dom0Rpm])).sort(), expected);
  const link = (await lines('rpm', ['-qlpv', dom0Rpm])).find((l) => l.includes('/usr/bin/qmcp'));
  assert.match(link ?? '', /^l.* \/usr\/bin\/qmcp -> \/usr\/lib\/qmcp\/bin\/qmcp\.js$/);
});

test('the dom0 RPM requires Node 20 and runs no scriptlet (the operator installs the policy)', { skip: rpmReason }, async () => {
  assert.ok((await lines('rpm', ['-qpR', dom0Rpm])).includes('nodejs >= 1:20'));
  assert.deepEqual(await lines('rpm', ['-qp', '--scripts', dom0Rpm]), []);
});

test('the template RPM installs exactly what install.sh installs, as root, mode 0755', { skip: rpmReason }, async () => {
  const listed = await lines('rpm', ['-qlpv', qubeRpm]);
  assert.deepEqual(listed.map((l) => l.split(/\s+/).pop()).sort(), installed.map((f) => `/${f.path}`).sort());
  for (const l of listed) assert.match(l, /^-rwxr-xr-x\s+1\s+root\s+root\s/);
  assert.deepEqual(await lines('rpm', ['-qp', '--scripts', qubeRpm]), []);
});

test('the template deb installs exactly what install.sh installs, as root, mode 0755', { skip: debReason }, async () => {
  const listed = (await lines('dpkg-deb', ['-c', deb])).filter((l) => !l.startsWith('d'));
  assert.deepEqual(listed.map((l) => (l.split(/\s+/).pop() as string).replace(/^\./, '')).sort(), installed.map((f) => `/${f.path}`).sort());
  for (const l of listed) assert.match(l, /^-rwxr-xr-x root\/root /);
  assert.deepEqual(await lines('dpkg-deb', ['-f', deb, 'Package', 'Version', 'Architecture']), ['Package: qmcp-qube', `Version: ${version}`, 'Architecture: all']);
});
