// Finding bubblewrap, and the error raised when it is not installed.
import { accessSync, constants } from 'node:fs';
import { delimiter, join } from 'node:path';

export const BWRAP_MISSING_MESSAGE =
  'bubblewrap (bwrap) is not installed, and simulated qubes run inside it: ' +
  'install it with `apt-get install bubblewrap` (Debian, Ubuntu) or `dnf install bubblewrap` (Fedora)';

/** Raised when a qube would have to run something and cannot. */
export class SandboxError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'SandboxError';
  }
}

export class SandboxUnavailableError extends SandboxError {
  constructor() {
    super(BWRAP_MISSING_MESSAGE);
    this.name = 'SandboxUnavailableError';
  }
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
