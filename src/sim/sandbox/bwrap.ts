// Finding bubblewrap, and the error raised when it is not installed.
import { spawnSync } from 'node:child_process';
import { accessSync, constants } from 'node:fs';
import { delimiter, join } from 'node:path';
import { QmcpError } from '../../shared/errors.js';

export const BWRAP_MISSING_MESSAGE =
  'bubblewrap (bwrap) is not installed, and simulated qubes run inside it: ' +
  'install it with `apt-get install bubblewrap` (Debian, Ubuntu) or `dnf install bubblewrap` (Fedora)';

/** Raised when a qube would have to run something and cannot. */
export class SandboxError extends QmcpError {
  readonly code: string = 'ERR_QMCP_SANDBOX';

  constructor(message: string) {
    super(message);
  }
}

export class SandboxUnavailableError extends SandboxError {
  override readonly code: string = 'ERR_QMCP_SANDBOX_UNAVAILABLE';

  constructor(message: string = BWRAP_MISSING_MESSAGE) {
    super(message);
  }
}

/** What an installed bwrap can do, from its --help. */
export interface BwrapFeatures {
  /** --size for tmpfs (0.7.0): volume sizes. */
  readonly size: boolean;
  /** --disable-userns (0.8.0): no user namespaces inside a qube. */
  readonly disableUserns: boolean;
}

export function bwrapFeatures(bwrap: string): BwrapFeatures {
  const help = spawnSync(bwrap, ['--help'], { encoding: 'utf8', env: {} });
  const text = `${help.stdout ?? ''}${help.stderr ?? ''}`;
  return { size: text.includes('--size'), disableUserns: text.includes('--disable-userns') };
}

export function bwrapTooOldMessage(bwrap: string): string {
  return (
    `bubblewrap at ${bwrap} is too old: simulated qubes need bubblewrap 0.7.0 or newer, ` +
    'which can limit a qube\'s volumes to their sizes (`bwrap --version`; Debian 12, Ubuntu 24.04 and Fedora have it)'
  );
}

/** The absolute path of bwrap on PATH, or undefined. */
export function findBwrap(path: string = process.env['PATH'] ?? ''): string | undefined {
  for (const dir of path.split(delimiter)) {
    if (dir === '') continue;
    const candidate = join(dir, 'bwrap');
    try {
      accessSync(candidate, constants.X_OK);
      return candidate;
    } catch {
      // not in this directory
    }
  }
  return undefined;
}
