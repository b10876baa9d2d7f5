/**
 * Calls waiting for the operator: an in-memory queue, and a control socket
 * (one JSON line each way) through which `qmcp sim ask` lists and answers them.
 */
import { unlinkSync } from 'node:fs';
import type { Server, Socket } from 'node:net';
import { connect, createServer } from 'node:net';
import { checkSocketPath } from '../../shared/socket-path.js';

export interface PendingAsk {
  id: string;
  source: string;
  service: string;
  argument: string;
  target: string;
  targets: string[];
  defaultTarget: string | null;
  /** Milliseconds since the epoch. */
  since: number;
}

/** The operator's answer: a target to allow, or null for a refusal (also the timeout). */
export type AskAnswer = { target: string } | null;

export type AskControlRequest =
  | { op: 'list' }
  | { op: 'allow'; id: string; target?: string }
  | { op: 'deny'; id: string };

export type AskControlReply = { ok: true; asks?: PendingAsk[]; target?: string } | { ok: false; error: string };

interface Entry {
  ask: PendingAsk;
  resolve: (a: AskAnswer) => void;
  timer: NodeJS.Timeout;
}

export class AskQueue {
  private readonly pending = new Map<string, Entry>();
  private nextId = 1;

  constructor(private readonly timeoutMs: number) {}

  /** Queues a question and resolves when it is answered or times out (to a refusal). */
  add(q: Omit<PendingAsk, 'id' | 'since'>): Promise<AskAnswer> {
    const id = String(this.nextId++);
    return new Promise((resolve) => {
      const timer = setTimeout(() => this.settle(id, null), this.timeoutMs);
      this.pending.set(id, { ask: { ...q, id, since: Date.now() }, resolve, timer });
    });
  }

  list(): PendingAsk[] {
    return [...this.pending.values()].map((e) => e.ask);
  }

  /** Answers one question; returns an error message when it cannot. */
  answer(id: string, allow: boolean, target?: string): { ok: true; target?: string } | { ok: false; error: string } {
    const e = this.pending.get(id);
    if (!e) return { ok: false, error: `no pending request ${id}` };
    if (!allow) {
      this.settle(id, null);
      return { ok: true };
    }
    const chosen = target ?? e.ask.defaultTarget;
    if (chosen === null || chosen === undefined) {
      return { ok: false, error: `request ${id} has no default target; choose one with --target (${e.ask.targets.join(', ')})` };
    }
    if (!e.ask.targets.includes(chosen)) {
      return { ok: false, error: `${chosen} is not among the targets the policy offers: ${e.ask.targets.join(', ')}` };
    }
    this.settle(id, { target: chosen });
    return { ok: true, target: chosen };
  }

  /** Refuses everything still waiting. */
  close(): void {
    for (const id of [...this.pending.keys()]) this.settle(id, null);
  }

  private settle(id: string, a: AskAnswer): void {
    const e = this.pending.get(id);
    if (!e) return;
    this.pending.delete(id);
    clearTimeout(e.timer);
    e.resolve(a);
  }
}

const MAX_CONTROL_LINE = 4096;

function handleControl(queue: AskQueue, line: string): AskControlReply {
  let req: AskControlRequest;
  try {
    req = JSON.parse(line) as AskControlRequest;
  } catch {
    return { ok: false, error: 'malformed request' };
  }
  if (req.op === 'list') return { ok: true, asks: queue.list() };
  if ((req.op === 'allow' || req.op === 'deny') && typeof req.id === 'string') {
    const target = req.op === 'allow' && typeof req.target === 'string' ? req.target : undefined;
    return queue.answer(req.id, req.op === 'allow', target);
  }
  return { ok: false, error: 'unknown request' };
}

export function listenAskControl(path: string, queue: AskQueue): Promise<Server> {
  checkSocketPath(path);
  try {
    unlinkSync(path);
  } catch {
    // nothing stale to remove
  }
  const server = createServer((sock: Socket) => {
    let buf = '';
    sock.setEncoding('utf8');
    sock.on('data', (chunk: string) => {
      buf += chunk;
      const nl = buf.indexOf('\n');
      if (nl >= 0) {
        sock.end(JSON.stringify(handleControl(queue, buf.slice(0, nl))) + '\n');
        sock.removeAllListeners('data');
      } else if (buf.length > MAX_CONTROL_LINE) {
        sock.destroy();
      }
    });
    sock.on('error', () => undefined);
  });
  return new Promise((resolve, reject) => {
    server.once('error', reject);
    server.listen(path, () => resolve(server));
  });
}

/** The CLI's side: one request to the control socket of a running simulator. */
export function askControl(path: string, req: AskControlRequest): Promise<AskControlReply> {
  return new Promise((resolve, reject) => {
    let buf = '';
    const sock = connect(path, () => sock.write(JSON.stringify(req) + '\n'));
    sock.setEncoding('utf8');
    sock.on('data', (c: string) => (buf += c));
    sock.on('error', reject);
    sock.on('close', () => {
      try {
        resolve(JSON.parse(buf) as AskControlReply);
      } catch {
        reject(new Error('no answer from the simulator'));
      }
    });
  });
}
