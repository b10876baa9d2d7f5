// Creating and copying the writable part of a qube's root file system.
import { execFile } from 'node:child_process';
import { copyFile, lstat, mkdir, readdir, readlink, rename, rm, symlink, writeFile } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import { promisify } from 'node:util';
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

async function exists(path: string): Promise<boolean> {
  try {
    await lstat(path);
    return true;
  } catch {
    return false;
  }
}

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
 * Builds a fresh root layer for a template or standalone qube: empty system
 * directories, a minimal /etc, and the in-qube services installed with the
 * same script an operator runs in a real template.
 */
export async function seedRootLayer(root: string, name: string, servicesDir: string): Promise<void> {
  const staging = `${root}.seeding`;
  await rm(staging, { recursive: true, force: true });
  for (const [sub] of ROOT_LAYER_MOUNTS) await mkdir(join(staging, sub), { recursive: true });
  for (const sub of ['var/tmp', 'var/log', 'var/lib', 'var/cache', 'usr-local/bin', 'usr-local/sbin', 'usr-local/lib', 'usr-local/share']) {
    await mkdir(join(staging, sub), { recursive: true });
  }
  for (const entry of HOST_ETC_ALLOWLIST) await copyTree(join('/etc', entry), join(staging, 'etc', entry));
  await writeFile(join(staging, 'etc', 'passwd'), PASSWD);
  await writeFile(join(staging, 'etc', 'group'), GROUP);
  await nameRoot(staging, name);
  await writeFile(join(staging, 'etc', 'resolv.conf'), '');
  await installServices(staging, servicesDir);
  await rm(root, { recursive: true, force: true });
  await rename(staging, root);
}

/** A qube's own name in /etc/hostname and /etc/hosts, as Qubes sets them at each boot. */
export async function nameRoot(root: string, name: string): Promise<void> {
  await mkdir(join(root, 'etc'), { recursive: true });
  await writeFile(join(root, 'etc', 'hostname'), `${name}\n`);
  await writeFile(join(root, 'etc', 'hosts'), `127.0.0.1\tlocalhost\n127.0.1.1\t${name}\n::1\tlocalhost\n`);
}

/** Runs src/qube/install.sh against a root layer (usr-local is /usr/local). */
export async function installServices(root: string, servicesDir: string): Promise<void> {
  await run('/bin/sh', [join(servicesDir, 'install.sh'), '--simulated'], {
    env: { PATH: '/usr/bin:/bin', QMCP_INSTALL_ROOT: root, QMCP_INSTALL_USR_LOCAL: join(root, 'usr-local') },
  });
}

/** Replaces dst with a copy of src, keeping modes, links and times. */
export async function copyLayer(src: string, dst: string): Promise<void> {
  await rm(dst, { recursive: true, force: true });
  await mkdir(dirname(dst), { recursive: true });
  if (await exists(src)) await run('cp', ['-a', '--', src, dst]);
  else await mkdir(dst, { recursive: true });
}

/** Makes src the new dst in one rename, then drops the old dst. */
export async function commitLayer(src: string, dst: string): Promise<void> {
  const old = `${dst}.old`;
  await rm(old, { recursive: true, force: true });
  if (await exists(dst)) await rename(dst, old);
  await rename(src, dst);
  await rm(old, { recursive: true, force: true });
}
