/**
 * The simulator's stand-in for systemd with the resident dom0 service: it
 * starts what the installed qmcp-dom0.service says (its Environment= and
 * ExecStart=), waits until every service socket is there, starts it again
 * when it dies (Restart=always), and stops it with SIGTERM.
 */
import { spawn } from 'node:child_process';
import type { ChildProcess } from 'node:child_process';
import { readFileSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { RESIDENT_SERVICE_UNIT } from '../dom0/install/index.js';
import { serviceNames } from '../dom0/install/names.js';

/** How long the service may take to bind its sockets before the host gives up starting. */
const START_MS = 120_000;
const RESTART_MS = 100;

export interface ResidentSupervisor {
  /** The running process's pid, null between a death and its restart. */
  pid(): number | null;
  /** How many times it has been started again after dying. */
  restarts(): number;
  /** Resolves once every service socket accepts again (after a start or a restart). */
  ready(): Promise<void>;
  close(): Promise<void>;
}

/** The unit's double-quoted words, unescaped. */
function words(value: string): string[] {
  return [...value.matchAll(/"((?:[^"\\]|\\.)*)"/g)].map((m) => (m[1] as string).replace(/\\(.)/g, '$1'));
}

function readUnit(root: string): { env: Record<string, string>; argv: string[] } | null {
  let text: string;
  try {
    text = readFileSync(join(root, RESIDENT_SERVICE_UNIT), 'utf8');
  } catch {
    return null;
  }
  const env: Record<string, string> = {};
  let argv: string[] = [];
  for (const line of text.split('\n')) {
    if (line.startsWith('Environment=')) {
      for (const w of words(line.slice('Environment='.length))) {
        const eq = w.indexOf('=');
        if (eq > 0) env[w.slice(0, eq)] = w.slice(eq + 1);
      }
    } else if (line.startsWith('ExecStart=')) argv = words(line.slice('ExecStart='.length));
  }
  return argv.length > 0 ? { env, argv } : null;
}

function socketsUp(root: string): boolean {
  return serviceNames().every((s) => {
    try {
      return statSync(join(root, 'etc', 'qubes-rpc', s)).isSocket();
    } catch {
      return false;
    }
  });
}

/** Starts the resident service if the install under `root` has its unit; null when it has none (per-call). */
export async function superviseResident(root: string, log: (line: string) => void): Promise<ResidentSupervisor | null> {
  const unit = readUnit(root);
  if (!unit) return null;
  const [command, ...args] = unit.argv as [string, ...string[]];
  let child: ChildProcess | null = null;
  let closing = false;
  let restarts = 0;
  let up: Promise<void> = Promise.resolve();

  const waitUp = async (c: ChildProcess): Promise<void> => {
    const deadline = Date.now() + START_MS;
    while (!socketsUp(root) || c.exitCode !== null) {
      if (c.exitCode !== null || c.signalCode !== null) throw new Error(`the resident dom0 service exited while starting (status ${c.exitCode ?? c.signalCode})`);
      if (Date.now() > deadline) throw new Error('the resident dom0 service did not bind its sockets');
      await sleep(20);
    }
  };
  const start = (): void => {
    const c = spawn(command, args, { env: { ...process.env, ...unit.env }, stdio: ['ignore', 'ignore', 'inherit'] });
    child = c;
    up = waitUp(c);
    up.catch(() => undefined);
    c.on('exit', (code, signal) => {
      child = null;
      if (closing) return;
      restarts++;
      log(`resident dom0 service exited (${code ?? signal}); starting it again`);
      setTimeout(() => {
        if (!closing) start();
      }, RESTART_MS);
    });
  };
  start();
  await up;
  log(`resident dom0 service serving ${serviceNames().length} sockets (pid ${child ? (child as ChildProcess).pid : '?'})`);
  return {
    pid: () => child?.pid ?? null,
    restarts: () => restarts,
    ready: async () => {
      while (!child) await sleep(20);
      await up;
    },
    close: async () => {
      closing = true;
      const c = child;
      if (!c || c.exitCode !== null || c.signalCode !== null) return;
      await new Promise<void>((resolve) => {
        c.once('exit', () => resolve());
        c.kill('SIGTERM');
      });
    },
  };
}
