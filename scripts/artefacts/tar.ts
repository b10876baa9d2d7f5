/**
 * A reproducible .tar.gz writer: ustar entries in sorted order, one fixed
 * mtime, owner and group 0, and a gzip header without a timestamp, so the
 * same files give the same bytes on any machine.
 */
import { gzipSync } from 'node:zlib';

export interface TarFile {
  /** '/'-separated path inside the archive, no leading slash. */
  readonly path: string;
  readonly content: Buffer;
  /** 0o644 or 0o755. */
  readonly mode: number;
}

const BLOCK = 512;

function octal(value: number, width: number): string {
  // width includes the terminating NUL
  const text = value.toString(8);
  if (text.length > width - 1) throw new Error(`tar: ${value} does not fit in ${width - 1} octal digits`);
  return text.padStart(width - 1, '0') + '\0';
}

/** ustar keeps paths over 100 bytes by splitting them at a '/' into prefix and name. */
function splitPath(path: string): { name: string; prefix: string } {
  if (Buffer.byteLength(path) <= 100) return { name: path, prefix: '' };
  for (let i = path.indexOf('/'); i !== -1; i = path.indexOf('/', i + 1)) {
    const prefix = path.slice(0, i);
    const name = path.slice(i + 1);
    if (Buffer.byteLength(prefix) <= 155 && Buffer.byteLength(name) <= 100) return { name, prefix };
  }
  throw new Error(`tar: path too long for ustar: ${path}`);
}

function header(path: string, type: '0' | '5', mode: number, size: number, mtime: number): Buffer {
  const h = Buffer.alloc(BLOCK, 0);
  const { name, prefix } = splitPath(path);
  h.write(name, 0, 100, 'utf8');
  h.write(octal(mode, 8), 100, 'ascii');
  h.write(octal(0, 8), 108, 'ascii'); // uid
  h.write(octal(0, 8), 116, 'ascii'); // gid
  h.write(octal(size, 12), 124, 'ascii');
  h.write(octal(mtime, 12), 136, 'ascii');
  h.write('        ', 148, 'ascii'); // checksum counts as spaces while summed
  h.write(type, 156, 'ascii');
  h.write('ustar\0' + '00', 257, 'ascii');
  h.write('root', 265, 'ascii');
  h.write('root', 297, 'ascii');
  h.write(prefix, 345, 155, 'utf8');
  let sum = 0;
  for (const byte of h) sum += byte;
  h.write(sum.toString(8).padStart(6, '0') + '\0 ', 148, 'ascii');
  return h;
}

/** Directory entries for every parent of the files, so extraction makes them with fixed modes. */
function directories(files: readonly TarFile[]): string[] {
  const dirs = new Set<string>();
  for (const f of files) {
    const parts = f.path.split('/');
    for (let i = 1; i < parts.length; i++) dirs.add(parts.slice(0, i).join('/'));
  }
  return [...dirs];
}

function compare(a: string, b: string): number {
  return a < b ? -1 : a > b ? 1 : 0;
}

/** The uncompressed archive. */
export function tar(files: readonly TarFile[], mtime: number): Buffer {
  const seen = new Set<string>();
  for (const f of files) {
    if (f.path === '' || f.path.startsWith('/') || f.path.split('/').some((p) => p === '' || p === '.' || p === '..')) {
      throw new Error(`tar: bad path: ${f.path}`);
    }
    if (seen.has(f.path)) throw new Error(`tar: duplicate path: ${f.path}`);
    seen.add(f.path);
  }
  const entries: { path: string; file?: TarFile }[] = [
    ...directories(files).map((path) => ({ path })),
    ...files.map((file) => ({ path: file.path, file })),
  ];
  entries.sort((a, b) => compare(a.path, b.path));
  const chunks: Buffer[] = [];
  for (const e of entries) {
    if (!e.file) {
      chunks.push(header(`${e.path}/`, '5', 0o755, 0, mtime));
      continue;
    }
    chunks.push(header(e.path, '0', e.file.mode, e.file.content.length, mtime), e.file.content);
    const pad = (BLOCK - (e.file.content.length % BLOCK)) % BLOCK;
    if (pad) chunks.push(Buffer.alloc(pad, 0));
  }
  chunks.push(Buffer.alloc(BLOCK * 2, 0));
  return Buffer.concat(chunks);
}

/** gzip with zlib's own header: mtime 0, no file name. */
export function tarGz(files: readonly TarFile[], mtime: number): Buffer {
  return gzipSync(tar(files, mtime), { level: 9 });
}
