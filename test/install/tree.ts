/** A dom0 tree as install and uninstall must leave it: every entry's kind, mode, and content hash or link target. */
import { createHash } from 'node:crypto';
import { lstatSync, readFileSync, readdirSync, readlinkSync } from 'node:fs';
import { join, relative } from 'node:path';

export function walk(dir: string): Map<string, string> {
  const out = new Map<string, string>();
  const visit = (d: string): void => {
    for (const e of readdirSync(d, { withFileTypes: true }).sort((a, b) => (a.name < b.name ? -1 : 1))) {
      const p = join(d, e.name);
      const st = lstatSync(p);
      const mode = (st.mode & 0o7777).toString(8);
      if (st.isSymbolicLink()) out.set(relative(dir, p), `link ${readlinkSync(p)}`);
      else if (st.isSocket()) out.set(relative(dir, p), `socket ${mode}`);
      else if (st.isDirectory()) {
        out.set(relative(dir, p), `dir ${mode}`);
        visit(p);
      } else out.set(relative(dir, p), `file ${mode} ${createHash('sha256').update(readFileSync(p)).digest('hex')}`);
    }
  };
  visit(dir);
  return out;
}
