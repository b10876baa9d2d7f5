// A qube's volumes at rest, on the host: seeding a template's root layer,
// and writing and copying images. The host never unpacks an image.
import { execFile } from 'node:child_process';
import { createHash } from 'node:crypto';
import { chmod, copyFile, lstat, mkdir, open, readdir, readFile, readlink, rename, rm, symlink, writeFile } from 'node:fs/promises';
import type { FileHandle } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import { promisify } from 'node:util';
import { pack } from './archive.js';
import type { PackRoot } from './archive.js';
import { ROOT_LAYER_MOUNTS } from './layout.js';

const run = promisify(execFile);

// Host /etc entries a template needs for programs from the host's /usr to
// work (dynamic linker, alternatives, name service, certificates). Nothing
// else of the host's configuration enters a qube.
const HOST_ETC_ALLOWLIST: readonly string[] = [
  'alternatives',
  'ld.so.cache',
  'ld.so.conf',
  'ld.so.conf.d',
  'nsswitch.conf',
  'os-release',
  'debian_version',
  'fedora-release',
  'redhat-release',
  'system-release',
  'profile',
  'profile.d',
  'shells',
  'localtime',
  'mime.types',
  'ca-certificates',
  'ca-certificates.conf',
  'ssl/certs/ca-certificates.crt',
  'ssl/openssl.cnf',
  'pki/tls/certs/ca-bundle.crt',
  'pki/tls/openssl.cnf',
  'pki/ca-trust/extracted/pem/tls-ca-bundle.pem',
  'protocols',
  'services',
];

const PASSWD = 'root:x:0:0:root:/root:/bin/sh\nuser:x:1000:1000:user:/home/user:/bin/sh\n';
const GROUP = 'root:x:0:\nqubes:x:98:user\nuser:x:1000:\n';

// Copies a tree, skipping what the host does not let us read.
async function copyTree(src: string, dst: string): Promise<void> {
  let info;
  try {
    info = await lstat(src);
  } catch {
    return;
  }
  await mkdir(dirname(dst), { recursive: true });
  try {
    if (info.isSymbolicLink()) await symlink(await readlink(src), dst);
    else if (info.isDirectory()) {
      await mkdir(dst, { mode: info.mode & 0o7777 });
      for (const entry of await readdir(src)) await copyTree(join(src, entry), join(dst, entry));
    } else if (info.isFile()) await copyFile(src, dst);
  } catch {
    // unreadable host entries are left out
  }
}

/**
 * Seeded images by the services they were built with. The host's /etc does
 * not change while a process runs, so every later seeding with the same
 * services writes the first one's bytes: each simulated host seeds its
 * templates, and copying the host's /etc (its alternatives are thousands of
 * links) is most of a host's start.
 */
const seeded = new Map<string, Promise<Buffer>>();

/** The services directory's files, names and contents: a changed or other directory is another seed. */
async function servicesKey(servicesDir: string): Promise<string> {
  const hash = createHash('sha256');
  const add = async (path: string): Promise<void> => {
    const info = await lstat(path);
    hash.update(`\0${path}\0${info.mode}\0`);
    if (info.isFile()) hash.update(await readFile(path));
    else if (info.isSymbolicLink()) hash.update(await readlink(path));
    else if (info.isDirectory()) for (const entry of (await readdir(path)).sort()) await add(join(path, entry));
  };
  await add(servicesDir);
  return hash.digest('hex');
}

/**
 * Builds a fresh root layer for a template or standalone qube, as its
 * image: empty system directories, a minimal /etc, and the in-qube services
 * installed with the same script an operator runs in a real template.
 */
export async function seedRootImage(image: string, servicesDir: string): Promise<void> {
  const key = await servicesKey(servicesDir);
  // another host's seeding that failed (its directory removed meanwhile) leaves this one to seed its own
  const bytes = await seeded.get(key)?.catch(() => null);
  if (bytes) {
    await replaceImage(image, async (handle) => void (await handle.write(bytes)));
    return;
  }
  const built = buildRootImage(image, servicesDir).then(() => readFile(image));
  seeded.set(key, built);
  built.catch(() => seeded.delete(key));
  await built;
}

async function buildRootImage(image: string, servicesDir: string): Promise<void> {
  const staging = `${image}.seeding`;
  await rm(staging, { recursive: true, force: true });
  try {
    for (const [sub] of ROOT_LAYER_MOUNTS) await mkdir(join(staging, sub), { recursive: true });
    for (const sub of ['var/tmp', 'var/log', 'var/lib', 'var/cache', 'usr-local/bin', 'usr-local/sbin', 'usr-local/lib', 'usr-local/share']) {
      await mkdir(join(staging, sub), { recursive: true });
    }
    await chmod(join(staging, 'var', 'tmp'), 0o1777);
    for (const entry of HOST_ETC_ALLOWLIST) await copyTree(join('/etc', entry), join(staging, 'etc', entry));
    await writeFile(join(staging, 'etc', 'passwd'), PASSWD);
    await writeFile(join(staging, 'etc', 'group'), GROUP);
    await writeFile(join(staging, 'etc', 'resolv.conf'), '');
    await installServices(staging, servicesDir);
    await writeImage(image, rootLayerRoots(staging));
  } finally {
    await rm(staging, { recursive: true, force: true });
  }
}

/** Runs src/qube/install.sh against a root layer (usr-local is /usr/local). */
export async function installServices(root: string, servicesDir: string): Promise<void> {
  await run('/bin/sh', [join(servicesDir, 'install.sh'), '--simulated'], {
    env: { PATH: '/usr/bin:/bin', QMCP_INSTALL_ROOT: root, QMCP_INSTALL_USR_LOCAL: join(root, 'usr-local') },
  });
}

/** A root layer directory's parts, as archive roots. */
export function rootLayerRoots(dir: string): PackRoot[] {
  return ROOT_LAYER_MOUNTS.map(([sub]) => ({ name: sub, dir: join(dir, sub) }));
}

/**
 * Packs host directories into an image, replacing it in one rename. A file
 * that shares its inode with something outside them is left out.
 */
export async function writeImage(image: string, roots: readonly PackRoot[]): Promise<void> {
  await replaceImage(image, (handle) => pack(roots, async (chunk) => void (await handle.write(chunk)), { skipOutsideLinks: true }));
}

/** Writes an image beside IMAGE, synced, and renames it into place. */
async function replaceImage(image: string, write: (handle: FileHandle) => Promise<void>): Promise<void> {
  const partial = `${image}.new`;
  const handle = await open(partial, 'w', 0o600);
  try {
    await write(handle);
    await handle.sync();
  } finally {
    await handle.close();
  }
  await rename(partial, image);
}

/** Copies an image, replacing the target in one rename. */
export async function copyImage(from: string, to: string): Promise<void> {
  const partial = `${to}.new`;
  await mkdir(dirname(to), { recursive: true });
  await copyFile(from, partial);
  await rename(partial, to);
}
