/** Carries out an uninstall plan under ROOT. */
import { lstatSync, readdirSync, rmSync, rmdirSync, unlinkSync } from 'node:fs';
import { join } from 'node:path';
import { writeAtomic } from './files.js';
import type { UninstallPlan } from './uninstall-plan.js';

function isDir(path: string): boolean {
  try {
    return lstatSync(path).isDirectory();
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return false;
    throw err;
  }
}

/** Takes the plan's steps, then removes its directories that are empty; returns why the others stay, for the operator. */
export function applyUninstall(root: string, plan: UninstallPlan): string[] {
  for (const step of plan.steps) {
    switch (step.do) {
      case 'remove':
        if (step.save) writeAtomic(join(root, step.save.copy), step.save.content, step.save.mode);
        unlinkSync(join(root, step.path));
        break;
      case 'restore':
        writeAtomic(join(root, step.path), step.content, step.mode);
        unlinkSync(join(root, step.backup));
        break;
      case 'remove-tree':
        rmSync(join(root, step.path), { recursive: true, force: true });
        break;
      default:
      // what the plan leaves, finds gone or cannot do changes nothing
    }
  }
  const left: string[] = [];
  for (const d of plan.dirs) {
    const path = join(root, d);
    if (!isDir(path)) continue;
    try {
      rmdirSync(path);
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'ENOTEMPTY' && (err as NodeJS.ErrnoException).code !== 'EEXIST') throw err;
      left.push(`${d}/: not empty (${readdirSync(path).slice(0, 5).join(', ')}); left in place`);
    }
  }
  return left;
}
