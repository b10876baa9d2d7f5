// The release archives: one command builds them, the same checkout gives
// the same bytes, and each holds exactly what its side needs.
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, readdirSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, posix, relative, sep } from 'node:path';
import { ARCHIVES, DEFAULT_EPOCH, archiveName, buildRelease } from '../../scripts/artefacts/build.js';
import { importSpecifiers, productionPackages, qubeInstalled } from '../../scripts/artefacts/contents.js';
import { BUNDLE_DIR, MANIFEST_PATH, installDom0 } from '../../src/dom0/install/index.js';
import { INQUBE_SERVICES, readTarGz, repo, run, sha256, version } from './helpers.js';
import type { TarEntry } from './helpers.js';

const tmp = mkdtempSync(join(tmpdir(), 'qmcp-release-test-'));
const outA = join(tmp, 'a');
const outB = join(tmp, 'b');
const archive = (kind: (typeof ARCHIVES)[number]): TarEntry[] => readTarGz(readFileSync(join(outA, archiveName(kind, version))));
/** Files of an archive by path below its top directory. */
function filesOf(kind: (typeof ARCHIVES)[number]): Map<string, TarEntry> {
  const top = `qmcp-${kind}-${version}/`;
  const map = new Map<string, TarEntry>();
  for (const e of archive(kind)) {
    if (e.type !== 'file') continue;
    assert.ok(e.path.startsWith(top), `${e.path} is outside ${top}`);
    map.set(e.path.slice(top.length), e);
  }
  return map;
}

function walk(dir: string): string[] {
  const out: string[] = [];
  for (const e of readdirSync(dir, { withFileTypes: true })) {
    const p = join(dir, e.name);
    if (e.isDirectory()) out.push(...walk(p));
    else out.push(p);
  }
  return out.sort();
}

let built: readonly string[] = [];
before(async () => {
  // with the packages where rpmbuild and dpkg-deb are installed: they are reproducible too
  built = (await buildRelease({ repo, out: outA, packages: true })).artefacts;
  await buildRelease({ repo, out: outB, packages: true });
});
after(() => rmSync(tmp, { recursive: true, force: true }));

test('two builds of the same checkout are byte-identical, each archive with its sha256sum line', () => {
  const names = readdirSync(outA).sort();
  assert.deepEqual(names, readdirSync(outB).sort());
  for (const k of ARCHIVES) assert.ok(built.includes(archiveName(k, version)), k);
  assert.deepEqual(names, built.flatMap((n) => [n, `${n}.sha256`]).sort());
  for (const n of names) assert.ok(readFileSync(join(outA, n)).equals(readFileSync(join(outB, n))), `${n} differs between builds`);
  for (const name of built) {
    assert.equal(readFileSync(join(outA, `${name}.sha256`), 'utf8'), `${sha256(readFileSync(join(outA, name)))}  ${name}\n`);
  }
});

test('archives are sorted, owned by 0:0, stamped with one mtime, and gzip carries no timestamp', () => {
  for (const k of ARCHIVES) {
    const data = readFileSync(join(outA, archiveName(k, version)));
    assert.equal(data.readUInt32LE(4), 0, `${k}: gzip mtime`);
    const entries = readTarGz(data);
    const paths = entries.map((e) => e.path);
    assert.deepEqual(paths, [...paths].sort((a, b) => (a < b ? -1 : a > b ? 1 : 0)), `${k}: entry order`);
    for (const e of entries) {
      assert.equal(e.uid, 0);
      assert.equal(e.gid, 0);
      assert.equal(e.mtime, DEFAULT_EPOCH, `${e.path} mtime`);
      assert.ok([0o644, 0o755].includes(e.mode), `${e.path} mode ${e.mode.toString(8)}`);
    }
  }
});

test("the dom0 archive is the installer's bundle plus the operator commands, and loads nothing from outside", async () => {
  const files = filesOf('dom0');
  const root = mkdtempSync(join(tmp, 'root-'));
  await installDom0({ root, qubesdSocket: join(root, 'qubesd.sock') });
  const manifest = JSON.parse(readFileSync(join(root, MANIFEST_PATH), 'utf8')) as { files: { path: string; sha256: string }[] };
  const bundle = manifest.files.filter((f) => f.path.startsWith(`${BUNDLE_DIR}/`));
  assert.ok(bundle.length > 10);
  for (const f of bundle) {
    const inArchive = files.get(f.path.slice(BUNDLE_DIR.length + 1));
    assert.ok(inArchive, `${f.path} is installed but not in the archive`);
    assert.equal(sha256(inArchive.content), f.sha256, `${f.path} differs from what install writes`);
  }
  // the rest: the launcher and exactly the CLI modules it loads
  const rest = [...files.keys()].filter((p) => !bundle.some((f) => f.path === `${BUNDLE_DIR}/${p}`));
  const reached = new Set<string>(['bin/qmcp.js']);
  const queue = ['bin/qmcp.js'];
  while (queue.length) {
    const from = queue.pop() as string;
    const entry = files.get(from);
    assert.ok(entry, `${from} is loaded but not in the archive`);
    for (const spec of importSpecifiers(entry.content.toString('utf8'))) {
      if (spec.startsWith('node:')) continue;
      assert.ok(spec.startsWith('./') || spec.startsWith('../'), `${from} imports ${spec}`);
      const target = posix.normalize(posix.join(posix.dirname(from), spec));
      assert.ok(files.has(target), `${from} imports ${spec}, which the archive lacks`);
      if (!reached.has(target)) {
        reached.add(target);
        queue.push(target);
      }
    }
  }
  assert.deepEqual(rest.sort(), [...reached].filter((p) => rest.includes(p)).sort(), 'archive files neither installed nor loaded by the launcher');
  assert.ok(rest.includes('cli/commands/dom0-install.js'));
  // bundle purity, over the whole archive
  for (const [path, e] of files) {
    if (!path.endsWith('.js')) continue;
    const text = e.content.toString('utf8');
    assert.deepEqual(text.match(/\brequire\s*\(|\bcreateRequire\b|\bimport\s*\(\s*[^'"\s]|process\.dlopen/g), null, `${path} loads code some other way`);
    for (const spec of importSpecifiers(text)) {
      if (spec.startsWith('node:')) continue;
      const target = posix.normalize(posix.join(posix.dirname(path), spec));
      assert.ok(!target.startsWith('../') && files.has(target), `${path} imports ${spec} from outside the archive`);
    }
  }
});

test('the dom0 archive runs on its own: its qmcp lists only operator commands and installs the same bundle', async () => {
  const dir = mkdtempSync(join(tmp, 'dom0-x-'));
  const untar = await run('tar', ['-xzf', join(outA, archiveName('dom0', version)), '-C', dir, '--strip-components=1']);
  assert.equal(untar.status, 0, untar.stderr);
  const help = await run(process.execPath, [join(dir, 'bin', 'qmcp.js'), '--help']);
  assert.equal(help.status, 0, help.stderr);
  assert.match(help.stdout, /qmcp dom0 install/);
  assert.doesNotMatch(help.stdout, /qmcp (serve|sim|demo)\b/);
  const root = join(tmp, 'dom0-x-root');
  const install = await run(process.execPath, [join(dir, 'bin', 'qmcp.js'), 'dom0', 'install', '--root', root, '--qubesd-socket', join(root, 'none.sock')]);
  assert.equal(install.status, 0, install.stdout + install.stderr);
  const installed = walk(join(root, BUNDLE_DIR)).map((p) => relative(join(root, BUNDLE_DIR), p).split(sep).join('/'));
  for (const p of installed) assert.ok(readFileSync(join(root, BUNDLE_DIR, p)).equals(readFileSync(join(dir, p))), p);
  assert.ok(installed.includes('dom0/service-main.js'));
});

test("the principal archive is npm pack's file list plus the production node_modules, and runs on its own", async () => {
  const files = filesOf('principal');
  const pack = await run('npm', ['pack', '--dry-run', '--json', '--ignore-scripts'], { cwd: repo });
  assert.equal(pack.status, 0, pack.stderr);
  const packed = (JSON.parse(pack.stdout) as { files: { path: string }[] }[])[0]?.files.map((f) => f.path).sort();
  const ours = [...files.keys()].filter((p) => !p.startsWith('node_modules/')).sort();
  assert.deepEqual(ours, packed);
  const packages = productionPackages(repo);
  assert.ok(packages.includes('node_modules/@modelcontextprotocol/server'));
  const vendored = new Set([...files.keys()].filter((p) => p.startsWith('node_modules/')));
  for (const p of packages) {
    const onDisk = walk(join(repo, p)).map((f) => relative(repo, f).split(sep).join('/')).filter((f) => !f.slice(p.length).includes('/node_modules/'));
    for (const f of onDisk) assert.ok(vendored.delete(f), `${f} is not vendored`);
  }
  assert.deepEqual([...vendored], [], 'vendored files of no production package');
  const dir = mkdtempSync(join(tmp, 'principal-x-'));
  const untar = await run('tar', ['-xzf', join(outA, archiveName('principal', version)), '-C', dir]);
  assert.equal(untar.status, 0, untar.stderr);
  const help = await run(process.execPath, [join(dir, `qmcp-principal-${version}`, 'bin', 'qmcp.js'), '--help']);
  assert.equal(help.status, 0, help.stderr);
  assert.match(help.stdout, /qmcp serve/);
});

test('the template archive is install.sh and exactly the services it installs', () => {
  const files = filesOf('qube');
  const installed = qubeInstalled(repo);
  // the job services and the port forward are one script, installed under each of their names
  const sourceOf = (path: string): string => (path.startsWith('etc/qubes-rpc/qmcp.Job') || path === 'etc/qubes-rpc/qmcp.PortForward' ? 'qmcp.Job' : posix.basename(path));
  assert.deepEqual([...files.keys()].sort(), ['install.sh', ...new Set(installed.map((f) => sourceOf(f.path)))].sort());
  for (const f of installed) {
    const e = files.get(sourceOf(f.path));
    assert.ok(e?.content.equals(f.content), f.path);
    assert.equal(e?.mode, 0o755);
  }
  assert.deepEqual(installed.map((f) => f.path).sort(), [...INQUBE_SERVICES].sort().map((s) => `etc/qubes-rpc/${s}`));
});
