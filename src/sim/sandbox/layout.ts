// Where a simulated qube's storage lives under the simulator's directory:
// DIR/qubes/NAME/private   persistent private storage (/rw; /home is rw/home)
// DIR/qubes/NAME/root      persistent root layer (TemplateVM, StandaloneVM)
// DIR/qubes/NAME/volatile  root layer of a running AppVM or DispVM
// DIR/qubes/NAME/volatile-private  private storage of a running DispVM
import { join } from 'node:path';

export interface QubeLayout {
  readonly base: string;
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
    private: join(base, 'private'),
    root: join(base, 'root'),
    volatile: join(base, 'volatile'),
    volatilePrivate: join(base, 'volatile-private'),
  };
}

/** Writable system directories: root-layer subdirectory → mount point. */
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
