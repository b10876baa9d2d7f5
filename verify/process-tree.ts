/**
 * The processes a check's worker started, found through /proc by parent
 * link (a process that left the worker's group is still its descendant),
 * and killed whole.
 */
import { readdirSync, readFileSync } from 'node:fs';

/** pid -> [parent pid, state] of every process /proc shows, or an empty map where there is no /proc. */
function processTable(): Map<number, { readonly ppid: number; readonly state: string }> {
  const out = new Map<number, { ppid: number; state: string }>();
  let names: string[];
  try {
    names = readdirSync('/proc');
  } catch {
    return out;
  }
  for (const name of names) {
    if (!/^\d+$/.test(name)) continue;
    try {
      // the command name may hold spaces and parentheses: the fields start after the last ')'
      const stat = readFileSync(`/proc/${name}/stat`, 'utf8');
      const [state, ppid] = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
      out.set(Number(name), { ppid: Number(ppid), state: state ?? '' });
    } catch {
      // gone meanwhile
    }
  }
  return out;
}

/** Every live (not zombie) descendant of `pid`, at this moment. */
export function descendants(pid: number): number[] {
  const table = processTable();
  const children = new Map<number, number[]>();
  for (const [p, { ppid }] of table) children.set(ppid, [...(children.get(ppid) ?? []), p]);
  const out: number[] = [];
  const walk = (p: number): void => {
    for (const c of children.get(p) ?? []) {
      if (table.get(c)?.state !== 'Z') out.push(c);
      walk(c);
    }
  };
  walk(pid);
  return out;
}

/** Whether `pid` is a live process (a zombie is not). */
export function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
  } catch {
    return false;
  }
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    return stat.slice(stat.lastIndexOf(')') + 2, stat.lastIndexOf(')') + 3) !== 'Z';
  } catch {
    return true;
  }
}

function kill(pid: number): void {
  try {
    process.kill(pid, 'SIGKILL');
  } catch {
    // already gone
  }
}

/**
 * SIGKILLs the group `leader` leads and every descendant of it, found
 * first so that none is reparented away meanwhile; returns the pids it
 * killed.
 */
export function killTree(leader: number): number[] {
  const tree = [leader, ...descendants(leader)];
  kill(-leader);
  for (const pid of tree) kill(pid);
  return tree;
}
