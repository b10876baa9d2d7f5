// Where a simulated qube's storage lives under the simulator's directory.
// A volume at rest is one archive file (archive.ts) that only the host
// writes; a running qube has its volumes in size-limited file systems of
// its own sandbox.
// DIR/qubes/NAME/private.img  private volume (/rw; /home is rw/home)
// DIR/qubes/NAME/root.img     root layer (TemplateVM, StandaloneVM)
// DIR/qubes/NAME/private, root, volatile, volatile-private: directories
//   of earlier versions, packed into the images at the next start.
import { join } from 'node:path';

export interface QubeLayout {
  readonly base: string;
  readonly privateImage: string;
  readonly rootImage: string;
  readonly private: string;
  readonly root: string;
  readonly volatile: string;
  readonly volatilePrivate: string;
}

// Qubes' own rule for VM names; it also keeps a name inside DIR/qubes.
const QUBE_NAME = /^[A-Za-z][A-Za-z0-9_.-]{0,30}$/;

export function qubeLayout(dir: string, name: string): QubeLayout {
  if (!QUBE_NAME.test(name)) throw new TypeError(`not a qube name: ${JSON.stringify(name)}`);
  const base = join(dir, 'qubes', name);
  return {
    base,
    privateImage: join(base, 'private.img'),
    rootImage: join(base, 'root.img'),
    private: join(base, 'private'),
    root: join(base, 'root'),
    volatile: join(base, 'volatile'),
    volatilePrivate: join(base, 'volatile-private'),
  };
}

/** Where the private volume is inside a qube. */
export const IN_QUBE_PRIVATE = '/rw';

/** The root layer's parts kept at rest: archive name → directory in the qube. */
export const ROOT_LAYER_MOUNTS: readonly (readonly [string, string])[] = [
  ['etc', '/etc'],
  ['var', '/var'],
  ['opt', '/opt'],
  ['root', '/root'],
  ['srv', '/srv'],
  ['usr-local', '/usr/local'],
];

/** Read-only host system directories (a symbolic link stays a link). */
export const HOST_SYSTEM_DIRS: readonly string[] = ['/usr', '/bin', '/sbin', '/lib', '/lib32', '/lib64', '/libx32'];
