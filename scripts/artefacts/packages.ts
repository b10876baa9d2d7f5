/**
 * The RPMs (dom0, Fedora templates) and the deb (Debian templates), built
 * from the release archives with rpmbuild and dpkg-deb when they are
 * installed; the archives themselves need neither.
 */
import { spawnSync } from 'node:child_process';
import { chmodSync, copyFileSync, mkdirSync, mkdtempSync, readFileSync, readdirSync, rmSync, utimesSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import type { TarFile } from './tar.js';

export function hasTool(name: string): boolean {
  return spawnSync(name, ['--version'], { stdio: 'ignore' }).status === 0;
}

function run(cmd: string, args: string[], env: NodeJS.ProcessEnv): void {
  const r = spawnSync(cmd, args, { env, encoding: 'utf8' });
  if (r.status !== 0) throw new Error(`release: ${cmd} failed (${r.status ?? r.signal}):\n${r.stdout}${r.stderr}`);
}

/**
 * rpmbuild -bb on one spec with its source archive; returns the RPM's file
 * name in OUT. Build time and file times come from SOURCE_DATE_EPOCH.
 */
export function buildRpm(repo: string, spec: string, source: string, version: string, mtime: number, out: string): string {
  const top = mkdtempSync(join(tmpdir(), 'qmcp-rpmbuild-'));
  try {
    const env = { ...process.env, SOURCE_DATE_EPOCH: String(mtime) };
    run(
      'rpmbuild',
      [
        '-bb',
        '--quiet',
        '--define', `_topdir ${top}`,
        '--define', `_sourcedir ${dirname(source)}`,
        '--define', `qmcp_version ${version}`,
        '--define', 'use_source_date_epoch_as_buildtime 1',
        '--define', 'clamp_mtime_to_source_date_epoch 1',
        '--define', '_buildhost qmcp-release',
        join(repo, 'packaging', 'rpm', spec),
      ],
      env,
    );
    const dir = join(top, 'RPMS', 'noarch');
    const built = readdirSync(dir).filter((f) => f.endsWith('.rpm'));
    if (built.length !== 1) throw new Error(`release: rpmbuild made ${built.length} packages for ${spec}`);
    const name = built[0] as string;
    copyFileSync(join(dir, name), join(out, name));
    return name;
  } finally {
    rmSync(top, { recursive: true, force: true });
  }
}

/** dpkg-deb --build of the template services; returns the deb's file name in OUT. */
export function buildDeb(repo: string, installed: readonly TarFile[], version: string, mtime: number, out: string): string {
  const stage = mkdtempSync(join(tmpdir(), 'qmcp-deb-'));
  try {
    const control = readFileSync(join(repo, 'packaging', 'deb', 'control'), 'utf8').replace('@VERSION@', version);
    const files: { path: string; content: Buffer; mode: number }[] = [
      { path: 'DEBIAN/control', content: Buffer.from(control), mode: 0o644 },
      ...installed,
    ];
    for (const f of files) {
      const target = join(stage, f.path);
      mkdirSync(dirname(target), { recursive: true, mode: 0o755 });
      writeFileSync(target, f.content);
      chmodSync(target, f.mode);
    }
    chmodSync(stage, 0o755);
    const stamp = (dir: string): void => {
      for (const e of readdirSync(dir, { withFileTypes: true })) {
        const p = join(dir, e.name);
        if (e.isDirectory()) {
          chmodSync(p, 0o755);
          stamp(p);
        }
        utimesSync(p, mtime, mtime);
      }
    };
    stamp(stage);
    const name = `qmcp-qube_${version}_all.deb`;
    run('dpkg-deb', ['--root-owner-group', '-Zgzip', '--build', stage, join(out, name)], {
      ...process.env,
      SOURCE_DATE_EPOCH: String(mtime),
    });
    return name;
  } finally {
    rmSync(stage, { recursive: true, force: true });
  }
}
