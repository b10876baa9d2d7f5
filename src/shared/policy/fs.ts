import { readdirSync, readFileSync, realpathSync, statSync } from 'node:fs';
import { posix, resolve as resolvePath } from 'node:path';

/** The few file-system questions the policy loader asks. */
export interface PolicyFs {
  /** Names in a directory; throws when it cannot be listed. */
  list(dir: string): string[];
  /** A regular file, following symbolic links. */
  isFile(path: string): boolean;
  isDir(path: string): boolean;
  /** The file's bytes; throws when it cannot be read. */
  read(path: string): Uint8Array;
  /** An absolute, normalised path with symbolic links followed where they exist. */
  resolve(path: string): string;
}

function statOrNull(path: string): ReturnType<typeof statSync> | null {
  try {
    // a missing path is asked about on every load (the run directory): answered without an exception
    return statSync(path, { throwIfNoEntry: false }) ?? null;
  } catch {
    return null;
  }
}

/** The real file system. */
export const diskFs: PolicyFs = {
  list: (dir) => readdirSync(dir),
  isFile: (path) => statOrNull(path)?.isFile() ?? false,
  isDir: (path) => statOrNull(path)?.isDirectory() ?? false,
  read: (path) => readFileSync(path),
  resolve(path) {
    const absolute = resolvePath(path);
    try {
      // one realpath(3) call rather than an lstat of each component
      return realpathSync.native(absolute);
    } catch {
      return absolute;
    }
  },
};

/** Files held in memory under absolute POSIX paths; directories are implied by them. */
export function memoryFs(files: ReadonlyMap<string, string>): PolicyFs {
  const encoder = new TextEncoder();
  const isDir = (dir: string): boolean => {
    const prefix = dir.endsWith('/') ? dir : `${dir}/`;
    return [...files.keys()].some((p) => p.startsWith(prefix));
  };
  return {
    list(dir) {
      if (!isDir(dir)) throw new Error(`no such directory: ${dir}`);
      const prefix = dir.endsWith('/') ? dir : `${dir}/`;
      const names = new Set<string>();
      for (const p of files.keys()) {
        if (p.startsWith(prefix)) names.add(p.slice(prefix.length).split('/')[0] ?? '');
      }
      return [...names];
    },
    isFile: (path) => files.has(path),
    isDir,
    read(path) {
      const text = files.get(path);
      if (text === undefined) throw new Error(`no such file: ${path}`);
      return encoder.encode(text);
    },
    resolve: (path) => posix.resolve('/', path),
  };
}
