/**
 * Every file of a dom0 root but the volatile ones, with its hash: the
 * malformed check's "no dom0 file changed". A walk lists every directory
 * and reads every file, some fifty system calls, after every one of a
 * quarter of a million inputs; so the walk puts an inotify watch (fs.watch)
 * on each directory it lists, and a later look walks again only when a
 * watch saw a path that is not volatile change since. Every
 * FULL_WALK_EVERY-th look walks anyway, so a change a watch missed is still
 * found, a few inputs late; a watch that cannot be made or fails makes
 * every look a walk. No mtime is trusted: a watch reports each change.
 */
import { createHash } from 'node:crypto';
import { readdirSync, readFileSync, watch } from 'node:fs';
import type { FSWatcher } from 'node:fs';
import { join, relative } from 'node:path';
import { setImmediate as turn } from 'node:timers/promises';

/** What changes by design: the audit log and its locks, the witness, the call slots, lock files. */
const VOLATILE = [/^var\/log\/qmcp\//, /^var\/lib\/qmcp\/audit-witness$/, /^var\/lib\/qmcp\/slots(\/|$)/, /\.lock$/, /\.break$/];

/** Whether every path at `rel` (a directory's too, whatever is under it) changes by design. */
function volatile(rel: string, directory: boolean): boolean {
  return VOLATILE.some((re) => re.test(rel) || (directory && re.test(`${rel}/`)));
}

const FULL_WALK_EVERY = 16;

/**
 * Two turns of the event loop: a watch reports in the poll phase, so a
 * whole poll phase then follows every write made before.
 */
async function pollPhase(): Promise<void> {
  await turn();
  await turn();
}

export class Dom0Files {
  private readonly watches = new Map<string, FSWatcher>();
  /** A watch saw a path change that is not volatile, since the last walk began. */
  private dirty = true;
  /** A watch could not be made or failed: every look walks. */
  private blind = false;
  private looks = 0;
  private last: ReadonlyMap<string, string> = new Map();

  constructor(private readonly root: string) {}

  /** A fresh walk, watching each directory it lists. */
  walk(): ReadonlyMap<string, string> {
    // set before listing: a change during the walk makes the next look walk again
    this.dirty = false;
    const out = new Map<string, string>();
    const seen = new Set<string>();
    const visit = (dir: string): void => {
      seen.add(dir);
      this.watchDir(dir);
      for (const e of readdirSync(dir, { withFileTypes: true })) {
        const path = join(dir, e.name);
        const rel = relative(this.root, path);
        // a directory whose every path is volatile is not listed: the audit log's grows by a file a rotation
        if (volatile(rel, e.isDirectory())) continue;
        if (e.isDirectory()) visit(path);
        else out.set(rel, createHash('sha256').update(readFileSync(path)).digest('hex'));
      }
    };
    visit(this.root);
    for (const dir of this.watches.keys()) if (!seen.has(dir)) this.forget(dir);
    this.last = out;
    return out;
  }

  /** The files now: the last walk's when no watch has seen a change since (once each could report one). */
  async now(): Promise<ReadonlyMap<string, string>> {
    await pollPhase();
    if (this.dirty || this.blind || ++this.looks % FULL_WALK_EVERY === 0) return this.walk();
    return this.last;
  }

  close(): void {
    for (const w of this.watches.values()) w.close();
    this.watches.clear();
  }

  /** A watch follows its directory's inode: one removed or made again is watched afresh by the next walk. */
  private forget(dir: string): void {
    this.watches.get(dir)?.close();
    this.watches.delete(dir);
  }

  private watchDir(dir: string): void {
    if (this.watches.has(dir) || this.blind) return;
    try {
      const w = watch(dir, { persistent: false }, (_event, name) => {
        if (name === null) {
          this.dirty = true;
          return;
        }
        const path = join(dir, name);
        if (!volatile(relative(this.root, path), false)) this.dirty = true;
        this.forget(path);
      });
      w.on('error', () => {
        this.blind = true;
      });
      this.watches.set(dir, w);
    } catch {
      this.blind = true;
    }
  }
}
