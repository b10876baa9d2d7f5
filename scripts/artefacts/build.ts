/** Builds every release artefact into one directory, each with a sha256sum-format .sha256 beside it. */
import { createHash } from 'node:crypto';
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { dom0Files, principalFiles, qubeFiles, qubeInstalled } from './contents.js';
import { buildDeb, buildRpm, hasTool } from './packages.js';
import { tarGz } from './tar.js';
import type { TarFile } from './tar.js';

export interface ReleaseOptions {
  readonly repo: string;
  readonly out: string;
  /** The one mtime of every archived file (seconds); default SOURCE_DATE_EPOCH, else 1980-01-01. */
  readonly mtime?: number;
  /** Also build the RPMs and the deb where rpmbuild and dpkg-deb are installed. */
  readonly packages?: boolean;
}

export interface ReleaseReport {
  readonly version: string;
  /** File names in OUT, each with a NAME.sha256 beside it. */
  readonly artefacts: readonly string[];
  /** Artefacts not built, with the reason. */
  readonly skipped: readonly string[];
}

export const ARCHIVES = ['dom0', 'principal', 'qube'] as const;
export type ArchiveName = (typeof ARCHIVES)[number];

export function archiveName(kind: ArchiveName, version: string): string {
  return `qmcp-${kind}-${version}.tar.gz`;
}

/** 1980-01-01T00:00:00Z: the usual fixed date of reproducible builds (rpm ignores an epoch of 0). */
export const DEFAULT_EPOCH = 315532800;

export function sourceDateEpoch(): number {
  const raw = process.env['SOURCE_DATE_EPOCH'];
  if (raw === undefined || raw === '') return DEFAULT_EPOCH;
  if (!/^[0-9]{1,11}$/.test(raw)) throw new Error(`release: SOURCE_DATE_EPOCH is not a number of seconds: ${raw}`);
  return Number(raw);
}

function writeWithHash(out: string, name: string, content: Buffer): void {
  writeFileSync(join(out, name), content);
  const hex = createHash('sha256').update(content).digest('hex');
  writeFileSync(join(out, `${name}.sha256`), `${hex}  ${name}\n`);
}

function under(top: string, files: readonly TarFile[]): TarFile[] {
  return files.map((f) => ({ ...f, path: `${top}/${f.path}` }));
}

export async function buildRelease(opts: ReleaseOptions): Promise<ReleaseReport> {
  const { repo, out } = opts;
  const mtime = opts.mtime ?? sourceDateEpoch();
  const version = (JSON.parse(readFileSync(join(repo, 'package.json'), 'utf8')) as { version: string }).version;
  mkdirSync(out, { recursive: true });
  const contents: Record<ArchiveName, TarFile[]> = {
    dom0: await dom0Files(repo),
    principal: principalFiles(repo),
    qube: qubeFiles(repo),
  };
  const artefacts: string[] = [];
  const skipped: string[] = [];
  for (const kind of ARCHIVES) {
    const name = archiveName(kind, version);
    writeWithHash(out, name, tarGz(under(`qmcp-${kind}-${version}`, contents[kind]), mtime));
    artefacts.push(name);
  }
  if (opts.packages) {
    const built: string[] = [];
    if (hasTool('rpmbuild')) {
      const staging = mkdtempSync(join(tmpdir(), 'qmcp-rpm-out-'));
      try {
        built.push(buildRpm(repo, 'qmcp-dom0.spec', join(out, archiveName('dom0', version)), version, mtime, staging));
        built.push(buildRpm(repo, 'qmcp-qube.spec', join(out, archiveName('qube', version)), version, mtime, staging));
        for (const name of built) writeWithHash(out, name, readFileSync(join(staging, name)));
      } finally {
        rmSync(staging, { recursive: true, force: true });
      }
    } else {
      skipped.push('RPMs: rpmbuild is not installed (Debian: apt-get install rpm)');
    }
    if (hasTool('dpkg-deb')) {
      const staging = mkdtempSync(join(tmpdir(), 'qmcp-deb-out-'));
      try {
        const name = buildDeb(repo, qubeInstalled(repo), version, mtime, staging);
        writeWithHash(out, name, readFileSync(join(staging, name)));
        built.push(name);
      } finally {
        rmSync(staging, { recursive: true, force: true });
      }
    } else {
      skipped.push('deb: dpkg-deb is not installed');
    }
    artefacts.push(...built);
  }
  return { version, artefacts, skipped };
}
