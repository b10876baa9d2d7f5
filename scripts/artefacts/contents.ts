/**
 * What goes into each release archive, read from the built checkout.
 * dom0: the installer's bundle plus the operator commands and a launcher
 * that loads only those, so dom0 runs on Node's standard library alone.
 * principal: the npm package as `npm pack` lays it out, with its production
 * dependencies vendored. qube: src/qube/install.sh and what it installs.
 */
import { spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, readdirSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, posix, relative, sep } from 'node:path';
import type { TarFile } from './tar.js';

/** Files under DIR, '/'-separated paths relative to BASE, sorted. */
function walk(base: string, dir: string, skip: (name: string) => boolean = () => false): string[] {
  const out: string[] = [];
  for (const entry of readdirSync(dir, { withFileTypes: true })) {
    if (skip(entry.name)) continue;
    const path = join(dir, entry.name);
    if (entry.isDirectory()) out.push(...walk(base, path, skip));
    else if (entry.isFile()) out.push(relative(base, path).split(sep).join('/'));
    else throw new Error(`release: not a regular file: ${path}`);
  }
  return out.sort();
}

/** A file as it is on disk: executable files keep 0755, the rest 0644. */
function fromDisk(base: string, path: string, as = path): TarFile {
  const full = join(base, path);
  return { path: as, content: readFileSync(full), mode: statSync(full).mode & 0o111 ? 0o755 : 0o644 };
}

/** Static import specifiers of a compiled module (the same patterns the bundle purity test reads). */
export function importSpecifiers(text: string): string[] {
  const found: string[] = [];
  const patterns = [/\bfrom\s*['"]([^'"]+)['"]/g, /\bimport\s*\(\s*['"]([^'"]+)['"]\s*\)/g, /^\s*import\s*['"]([^'"]+)['"]/gm];
  for (const re of patterns) for (const m of text.matchAll(re)) found.push(m[1] as string);
  return found;
}

/** The dom0 bundle as the installer copies it: package.json, then every .js of dom0 and shared. */
export function installerBundle(src: string): TarFile[] {
  const files: TarFile[] = [{ path: 'package.json', content: Buffer.from('{ "type": "module" }\n'), mode: 0o644 }];
  for (const part of ['dom0', 'shared']) {
    for (const p of walk(src, join(src, part))) if (p.endsWith('.js')) files.push({ path: p, content: readFileSync(join(src, p)), mode: 0o644 });
  }
  return files;
}

/** The dom0 launcher: src/cli/dom0-main.ts, which loads the operator commands only. */
export function dom0Launcher(): TarFile {
  const text = `#!/usr/bin/env node
import { main } from '../cli/dom0-main.js';

process.exitCode = await main(process.argv.slice(2));
`;
  return { path: 'bin/qmcp.js', content: Buffer.from(text), mode: 0o755 };
}

/**
 * The modules FROM loads, transitively, as paths relative to BASE; throws on
 * a bare specifier (dom0 has no node_modules) or a path leaving BASE.
 */
export function closure(base: string, from: readonly TarFile[], readable: (path: string) => Buffer | undefined): string[] {
  const seen = new Set<string>();
  const queue: { path: string; content: Buffer }[] = from.map((f) => ({ path: f.path, content: f.content }));
  while (queue.length > 0) {
    const { path, content } = queue.shift() as { path: string; content: Buffer };
    for (const spec of importSpecifiers(content.toString('utf8'))) {
      if (spec.startsWith('node:')) continue;
      if (!spec.startsWith('./') && !spec.startsWith('../')) throw new Error(`release: ${path} imports ${spec}, which dom0 cannot load`);
      const target = posix.normalize(posix.join(posix.dirname(path), spec));
      if (target.startsWith('../')) throw new Error(`release: ${path} reaches outside ${base}: ${spec}`);
      if (seen.has(target)) continue;
      const text = readable(target);
      if (!text) throw new Error(`release: ${path} imports ${spec}, which is not built`);
      seen.add(target);
      queue.push({ path: target, content: text });
    }
  }
  return [...seen].sort();
}

/** The dom0 archive's files, relative to its top directory. */
export async function dom0Files(repo: string): Promise<TarFile[]> {
  const src = join(repo, 'dist', 'src');
  const bundle = installerBundle(src);
  const launcher = dom0Launcher();
  const held = new Set(bundle.map((f) => f.path));
  const read = (p: string): Buffer | undefined => (existsSync(join(src, p)) ? readFileSync(join(src, p)) : undefined);
  const cli = closure(src, [launcher], read).filter((p) => !held.has(p));
  for (const p of cli) {
    if (!p.startsWith('cli/')) throw new Error(`release: the dom0 commands load ${p}, which is neither the bundle nor the CLI`);
  }
  return [...bundle, ...cli.map((p) => ({ path: p, content: readFileSync(join(src, p)), mode: 0o644 })), launcher];
}

/** Production packages from the lockfile: what `npm ci --omit=dev` would install. */
export function productionPackages(repo: string): string[] {
  const lock = JSON.parse(readFileSync(join(repo, 'package-lock.json'), 'utf8')) as {
    packages: Record<string, { version?: string; dev?: boolean; devOptional?: boolean; optional?: boolean; link?: boolean }>;
  };
  const out: string[] = [];
  for (const [path, entry] of Object.entries(lock.packages)) {
    if (path === '' || entry.dev || entry.devOptional || entry.optional) continue;
    if (entry.link) throw new Error(`release: ${path} is a linked package; vendor it by hand`);
    const installed = JSON.parse(readFileSync(join(repo, path, 'package.json'), 'utf8')) as { version?: string };
    if (installed.version !== entry.version) {
      throw new Error(`release: ${path} is ${installed.version} but the lockfile says ${entry.version}; run npm ci`);
    }
    out.push(path);
  }
  return out.sort();
}

/** The principal archive's files: package.json, README and the package's "files", plus node_modules. */
export function principalFiles(repo: string): TarFile[] {
  const pkg = JSON.parse(readFileSync(join(repo, 'package.json'), 'utf8')) as { files: string[] };
  const paths = ['package.json', 'README.md'];
  for (const entry of pkg.files) {
    const full = join(repo, entry);
    if (statSync(full).isDirectory()) paths.push(...walk(repo, full));
    else paths.push(entry);
  }
  for (const p of productionPackages(repo)) {
    // a nested node_modules holds packages the lockfile lists on their own
    paths.push(...walk(repo, join(repo, p), (name) => name === 'node_modules'));
  }
  return [...new Set(paths)].sort().map((p) => fromDisk(repo, p));
}

/** What src/qube/install.sh installs into a template, learnt by running it into a temporary root. */
export function qubeInstalled(repo: string): TarFile[] {
  const root = mkdtempSync(join(tmpdir(), 'qmcp-qube-root-'));
  try {
    const run = spawnSync('sh', [join(repo, 'src', 'qube', 'install.sh')], {
      env: { ...process.env, QMCP_INSTALL_ROOT: root },
      encoding: 'utf8',
    });
    if (run.status !== 0) throw new Error(`release: src/qube/install.sh failed: ${run.stderr}`);
    return walk(root, root).map((p) => fromDisk(root, p));
  } finally {
    rmSync(root, { recursive: true, force: true });
  }
}

/** The template archive's files: install.sh and the scripts it copies (one script may be installed under several service names). */
export function qubeFiles(repo: string): TarFile[] {
  const qube = join(repo, 'src', 'qube');
  const sources = readdirSync(qube).filter((name) => name !== 'install.sh').map((name) => fromDisk(qube, name));
  const copied = new Set<string>();
  for (const f of qubeInstalled(repo)) {
    const source = sources.find((s) => s.path === posix.basename(f.path)) ?? sources.find((s) => s.content.equals(f.content));
    if (source === undefined) throw new Error(`release: install.sh installs ${f.path}, which no script of src/qube is`);
    copied.add(source.path);
  }
  return ['install.sh', ...copied].sort().map((name) => fromDisk(qube, name));
}
