// A simulated qube's volume at rest: one file in a small archive format.
// The host only ever writes and copies these files whole; it never
// unpacks one, so nothing a qube names or links can become a host path.
// Unpacking happens inside the qube's sandbox, at start.
//
// Format: MAGIC, then records; each record: type (1 byte), path length
// (u16) and path (relative, '/'-separated), mode (u32), mtime in ms (f64),
// then for F the size (u64) and the bytes, for L and H a target length
// (u16) and target (a symbolic link's text; for H an earlier F's path).
// E ends the archive.
import { constants } from 'node:fs';
import type { Stats } from 'node:fs';
import { chmod, link, lstat, mkdir, open, readdir, readlink, rmdir, symlink, utimes } from 'node:fs/promises';
import { QmcpError } from '../../shared/errors.js';

const MAGIC = Buffer.from('QMCPVOL1');
const T_DIR = 0x44;
const T_FILE = 0x46;
const T_LINK = 0x4c;
const T_HARD = 0x48;
const T_END = 0x45;
const PIECE = 64 * 1024;
const MAX_PATH = 4096;
const SLASH = Buffer.from('/');

/** A directory to pack; `name` is its path in the archive (null: its entries are at the top). */
export interface PackRoot {
  readonly name: string | null;
  readonly dir: string;
}

export interface PackOptions {
  /**
   * Leave out a file with more links than the tree holds: something outside
   * the tree shares its inode (used when packing host directories).
   */
  readonly skipOutsideLinks?: boolean;
}

/** Writes the archive of `roots` through `sink`, which may apply backpressure. */
export async function pack(roots: readonly PackRoot[], sink: (chunk: Buffer) => Promise<void>, options: PackOptions = {}): Promise<void> {
  const out = new Batcher(sink);
  const inTree = options.skipOutsideLinks ? await countLinks(roots) : null;
  const seen = new Map<string, Buffer>();
  await out.push(MAGIC);
  for (const root of roots) {
    const dir = Buffer.from(root.dir);
    let info: Stats;
    try {
      info = await lstat(dir);
    } catch {
      continue;
    }
    const top = root.name === null ? null : Buffer.from(root.name);
    if (top !== null) {
      if (info.isSymbolicLink()) {
        await out.push(header(T_LINK, top, info), lengthPrefixed(await readlink(dir, { encoding: 'buffer' })));
        continue;
      }
      if (!info.isDirectory()) continue;
      await out.push(header(T_DIR, top, info));
    } else if (!info.isDirectory()) continue;
    await walk(dir, top, info.dev, out, seen, inTree);
  }
  await out.push(Buffer.from([T_END]));
  await out.flush();
}

async function walk(dir: Buffer, rel: Buffer | null, dev: number, out: Batcher, seen: Map<string, Buffer>, inTree: Map<string, number> | null): Promise<void> {
  let names: Buffer[];
  try {
    names = await readdir(dir, { encoding: 'buffer' });
  } catch {
    return;
  }
  for (const name of names) {
    const abs = Buffer.concat([dir, SLASH, name]);
    const path = rel === null ? name : Buffer.concat([rel, SLASH, name]);
    let info: Stats;
    try {
      info = await lstat(abs);
    } catch {
      continue;
    }
    // Another mount (a bind over a file of the tree) is not the volume's.
    if (info.dev !== dev) continue;
    if (info.isDirectory()) {
      await out.push(header(T_DIR, path, info));
      await walk(abs, path, dev, out, seen, inTree);
    } else if (info.isSymbolicLink()) {
      await out.push(header(T_LINK, path, info), lengthPrefixed(await readlink(abs, { encoding: 'buffer' })));
    } else if (info.isFile()) {
      const key = `${info.dev}:${info.ino}`;
      if (info.nlink > 1) {
        const first = seen.get(key);
        if (first !== undefined) {
          await out.push(header(T_HARD, path, info), lengthPrefixed(first));
          continue;
        }
        if (inTree !== null && (inTree.get(key) ?? 0) < info.nlink) continue;
      }
      if (await packFile(abs, path, info, out)) seen.set(key, path);
    }
    // sockets, fifos and devices are not kept
  }
}

async function packFile(abs: Buffer, path: Buffer, info: Stats, out: Batcher): Promise<boolean> {
  let handle;
  try {
    handle = await open(abs, constants.O_RDONLY | constants.O_NOFOLLOW | constants.O_NONBLOCK);
  } catch {
    return false;
  }
  try {
    const now = await handle.stat();
    if (!now.isFile() || now.ino !== info.ino || now.dev !== info.dev) return false;
    const size = now.size;
    const sizeField = Buffer.alloc(8);
    sizeField.writeBigUInt64BE(BigInt(size), 0);
    await out.push(header(T_FILE, path, now), sizeField);
    let done = 0;
    while (done < size) {
      const want = Math.min(PIECE, size - done);
      const buf = Buffer.alloc(want);
      const { bytesRead } = await handle.read(buf, 0, want, done);
      // A file that shrank meanwhile is padded to the size already written.
      if (bytesRead === 0) {
        await out.push(Buffer.alloc(size - done));
        break;
      }
      await out.push(buf.subarray(0, bytesRead));
      done += bytesRead;
    }
    return true;
  } finally {
    await handle.close();
  }
}

async function countLinks(roots: readonly PackRoot[]): Promise<Map<string, number>> {
  const counts = new Map<string, number>();
  const visit = async (dir: string, dev: number): Promise<void> => {
    let names: string[];
    try {
      names = await readdir(dir);
    } catch {
      return;
    }
    for (const name of names) {
      const abs = `${dir}/${name}`;
      let info: Stats;
      try {
        info = await lstat(abs);
      } catch {
        continue;
      }
      if (info.dev !== dev) continue;
      if (info.isDirectory()) await visit(abs, dev);
      else if (info.isFile()) counts.set(`${info.dev}:${info.ino}`, (counts.get(`${info.dev}:${info.ino}`) ?? 0) + 1);
    }
  };
  for (const root of roots) {
    try {
      const info = await lstat(root.dir);
      if (info.isDirectory()) await visit(root.dir, info.dev);
    } catch {
      // absent root
    }
  }
  return counts;
}

function header(type: number, path: Buffer, info: Stats): Buffer {
  const b = Buffer.alloc(1 + 2 + path.length + 4 + 8);
  b.writeUInt8(type, 0);
  b.writeUInt16BE(path.length, 1);
  path.copy(b, 3);
  b.writeUInt32BE(info.mode & 0o7777, 3 + path.length);
  b.writeDoubleBE(info.mtimeMs, 7 + path.length);
  return b;
}

function lengthPrefixed(text: Buffer): Buffer {
  const b = Buffer.alloc(2 + text.length);
  b.writeUInt16BE(text.length, 0);
  text.copy(b, 2);
  return b;
}

class Batcher {
  private parts: Buffer[] = [];
  private size = 0;
  constructor(private readonly sink: (chunk: Buffer) => Promise<void>) {}

  async push(...bufs: Buffer[]): Promise<void> {
    for (const b of bufs) {
      this.parts.push(b);
      this.size += b.length;
    }
    if (this.size >= PIECE) await this.flush();
  }

  async flush(): Promise<void> {
    if (this.size === 0) return;
    const chunk = Buffer.concat(this.parts);
    this.parts = [];
    this.size = 0;
    await this.sink(chunk);
  }
}

/** Bytes arriving in pieces, read back in exact amounts. */
export class ByteQueue {
  private parts: Buffer[] = [];
  private size = 0;
  private ended = false;
  private waiter: (() => void) | null = null;

  private owed = 0;

  /** `ack` learns, in batches, how many bytes reads took (the sender's credit). */
  constructor(private readonly ack: (n: number) => void = () => undefined) {}

  push(chunk: Buffer): void {
    if (chunk.length === 0) return;
    this.parts.push(chunk);
    this.size += chunk.length;
    this.wake();
  }

  end(): void {
    this.ended = true;
    this.wake();
  }

  /** Exactly n bytes; throws at a premature end. */
  async read(n: number): Promise<Buffer> {
    const got: Buffer[] = [];
    let need = n;
    while (need > 0) {
      const piece = await this.readUpTo(need);
      got.push(piece);
      need -= piece.length;
    }
    return got.length === 1 ? (got[0] as Buffer) : Buffer.concat(got);
  }

  /** Between 1 and n bytes; throws at the end. */
  async readUpTo(n: number): Promise<Buffer> {
    while (this.size === 0) {
      if (this.ended) throw new ArchiveError('the archive ends early');
      this.settle();
      await new Promise<void>((resolve) => (this.waiter = resolve));
    }
    const first = this.parts[0] as Buffer;
    const piece = first.length <= n ? first : first.subarray(0, n);
    if (piece.length === first.length) this.parts.shift();
    else this.parts[0] = first.subarray(n);
    this.size -= piece.length;
    this.owed += piece.length;
    if (this.owed >= PIECE / 2) this.settle();
    return piece;
  }

  private settle(): void {
    if (this.owed === 0) return;
    const n = this.owed;
    this.owed = 0;
    this.ack(n);
  }

  private wake(): void {
    const w = this.waiter;
    this.waiter = null;
    w?.();
  }
}

export class ArchiveError extends QmcpError {
  readonly code = 'ERR_QMCP_SANDBOX_ARCHIVE';
}

export interface UnpackTarget {
  /** The directory the archive's top-level entries go into. */
  readonly dir?: string;
  /** Or: each top-level name's own existing directory (others are skipped). */
  readonly roots?: Readonly<Record<string, string>>;
}

/**
 * Unpacks inside a fresh tree: every entry's parent must be a directory this
 * unpacking made (or a target root), nothing is replaced, and nothing is
 * written through a link. Entries that cannot be made are skipped; running
 * out of space is an error.
 */
export async function unpack(source: ByteQueue, target: UnpackTarget): Promise<void> {
  if (!(await source.read(MAGIC.length)).equals(MAGIC)) throw new ArchiveError('not a volume archive');
  const dirs = new Map<string, Buffer>();
  if (target.dir !== undefined) dirs.set('', Buffer.from(target.dir));
  const files = new Map<string, Buffer>();
  const times: [Buffer, number, number][] = [];
  for (;;) {
    const type = (await source.read(1))[0];
    if (type === T_END) break;
    if (type !== T_DIR && type !== T_FILE && type !== T_LINK && type !== T_HARD) throw new ArchiveError(`unknown record ${String(type)}`);
    const path = await source.read((await source.read(2)).readUInt16BE(0));
    const fixed = await source.read(12);
    const mode = fixed.readUInt32BE(0) & 0o7777;
    const mtime = fixed.readDoubleBE(4);
    let size = 0;
    let text: Buffer | null = null;
    if (type === T_FILE) {
      const big = (await source.read(8)).readBigUInt64BE(0);
      if (big > BigInt(Number.MAX_SAFE_INTEGER)) throw new ArchiveError('file too large');
      size = Number(big);
    } else if (type === T_LINK || type === T_HARD) {
      text = await source.read((await source.read(2)).readUInt16BE(0));
    }
    const place = placeOf(path, dirs, target.roots);
    if (place === null) {
      await skip(source, size);
      continue;
    }
    const { abs, key, mapped } = place;
    if (mapped) {
      // The record of a target root itself: its mode, or a link the qube made of it.
      if (type === T_DIR) times.push([abs, mode, mtime]);
      else if (type === T_LINK && text !== null) await replaceRoot(abs, text, key, dirs);
      await skip(source, size);
      continue;
    }
    if (type === T_DIR) {
      if (await makeDir(abs)) {
        dirs.set(key, abs);
        times.push([abs, mode, mtime]);
      }
    } else if (type === T_FILE) {
      if (await writeFileFrom(source, abs, size, mode, mtime)) files.set(key, abs);
    } else if (type === T_LINK && text !== null) {
      try {
        await symlink(text, abs);
      } catch (e) {
        if (isNoSpace(e)) throw e;
      }
    } else if (type === T_HARD && text !== null) {
      const existing = files.get(text.toString('latin1'));
      if (existing !== undefined) {
        try {
          await link(existing, abs);
        } catch (e) {
          if (isNoSpace(e)) throw e;
        }
      }
    }
  }
  for (const [abs, mode, mtime] of times.reverse()) {
    try {
      await chmod(abs, mode);
      await utimes(abs, mtime / 1000, mtime / 1000);
    } catch {
      // a root replaced by a link keeps the link's own
    }
  }
}

function placeOf(path: Buffer, dirs: Map<string, Buffer>, roots: Readonly<Record<string, string>> | undefined): { abs: Buffer; key: string; mapped: boolean } | null {
  if (path.length === 0 || path.length > MAX_PATH || path.includes(0)) return null;
  const parts: Buffer[] = [];
  let start = 0;
  for (let i = 0; i <= path.length; i++) {
    if (i === path.length || path[i] === 0x2f) {
      const part = path.subarray(start, i);
      const name = part.toString('latin1');
      if (part.length === 0 || part.length > 255 || name === '.' || name === '..') return null;
      parts.push(part);
      start = i + 1;
    }
  }
  const key = path.toString('latin1');
  if (roots !== undefined && parts.length === 1) {
    const root = roots[key];
    if (root === undefined) return null;
    if (!dirs.has(key)) dirs.set(key, Buffer.from(root));
    return { abs: dirs.get(key) as Buffer, key, mapped: true };
  }
  const parentKey = parts.length === 1 ? '' : path.subarray(0, path.length - (parts[parts.length - 1] as Buffer).length - 1).toString('latin1');
  const parent = dirs.get(parentKey);
  if (parent === undefined) return null;
  return { abs: Buffer.concat([parent, SLASH, parts[parts.length - 1] as Buffer]), key, mapped: false };
}

// A root the qube had replaced by a link becomes that link again, inside the qube.
async function replaceRoot(abs: Buffer, text: Buffer, key: string, dirs: Map<string, Buffer>): Promise<void> {
  try {
    await rmdir(abs);
    await symlink(text, abs);
    dirs.delete(key);
  } catch {
    // not empty, or a mount point: it stays a directory
  }
}

async function makeDir(abs: Buffer): Promise<boolean> {
  try {
    await mkdir(abs, 0o700);
    return true;
  } catch (e) {
    if (isNoSpace(e)) throw e;
    try {
      const info = await lstat(abs);
      return info.isDirectory();
    } catch {
      return false;
    }
  }
}

async function writeFileFrom(source: ByteQueue, abs: Buffer, size: number, mode: number, mtime: number): Promise<boolean> {
  let handle;
  try {
    handle = await open(abs, constants.O_WRONLY | constants.O_CREAT | constants.O_EXCL | constants.O_NOFOLLOW, 0o600);
  } catch (e) {
    if (isNoSpace(e)) throw e;
    await skip(source, size);
    return false;
  }
  try {
    let left = size;
    while (left > 0) {
      const piece = await source.readUpTo(Math.min(left, PIECE));
      await handle.write(piece);
      left -= piece.length;
    }
    await handle.chmod(mode);
    await handle.utimes(mtime / 1000, mtime / 1000);
    return true;
  } finally {
    await handle.close();
  }
}

async function skip(source: ByteQueue, size: number): Promise<void> {
  let left = size;
  while (left > 0) left -= (await source.readUpTo(Math.min(left, PIECE))).length;
}

function isNoSpace(e: unknown): boolean {
  const code = (e as NodeJS.ErrnoException | null)?.code;
  return code === 'ENOSPC' || code === 'EDQUOT';
}
