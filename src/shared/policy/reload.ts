/**
 * The policy of a dom0 root as its files read now, parsed again only when
 * the file system answers one of the last load's questions (a listing, a
 * file's bytes, a path's kind or resolution) differently. The loader is
 * deterministic in those answers, so a reuse is the policy a fresh load
 * would make; no mtime is trusted.
 */
import { diskFs } from './fs.js';
import type { PolicyFs } from './fs.js';
import { loadPolicyFromRoot } from './index.js';
import type { Policy } from './types.js';

type Outcome = { readonly value: unknown } | { readonly error: unknown };

interface Question {
  readonly ask: () => unknown;
  readonly answer: Outcome;
}

function outcome(ask: () => unknown): Outcome {
  try {
    return { value: ask() };
  } catch (error) {
    return { error };
  }
}

function sameValue(a: unknown, b: unknown): boolean {
  if (a instanceof Uint8Array && b instanceof Uint8Array) return Buffer.compare(a, b) === 0;
  if (Array.isArray(a) && Array.isArray(b)) return a.length === b.length && a.every((x, i) => x === b[i]);
  return a === b;
}

function sameOutcome(a: Outcome, b: Outcome): boolean {
  if ('value' in a && 'value' in b) return sameValue(a.value, b.value);
  // a question that failed must fail alike (same error code and message)
  if ('error' in a && 'error' in b) return String(a.error) === String(b.error) && (a.error as NodeJS.ErrnoException)?.code === (b.error as NodeJS.ErrnoException)?.code;
  return false;
}

/** A file system that keeps every question asked of it and its answer. */
function recording(fs: PolicyFs, questions: Question[]): PolicyFs {
  const asked = <T>(ask: () => T): T => {
    const answer = outcome(ask);
    questions.push({ ask, answer });
    if ('error' in answer) throw answer.error;
    return answer.value as T;
  };
  return {
    list: (dir) => asked(() => fs.list(dir)),
    isFile: (path) => asked(() => fs.isFile(path)),
    isDir: (path) => asked(() => fs.isDir(path)),
    read: (path) => asked(() => fs.read(path)),
    resolve: (path) => asked(() => fs.resolve(path)),
  };
}

export class PolicyReloader {
  private last: { readonly questions: readonly Question[]; readonly result: Outcome } | null = null;

  constructor(
    private readonly root: string,
    private readonly fs: PolicyFs = diskFs,
  ) {}

  /** As loadPolicyFromRoot(root): the policy, or the PolicySyntaxError it throws. */
  load(): Policy {
    const last = this.last;
    const unchanged = last !== null && last.questions.every((q) => sameOutcome(outcome(q.ask), q.answer));
    const result = unchanged ? last.result : this.fresh();
    if ('error' in result) throw result.error;
    return result.value as Policy;
  }

  private fresh(): Outcome {
    const questions: Question[] = [];
    const result = outcome(() => loadPolicyFromRoot(this.root, recording(this.fs, questions)));
    this.last = { questions, result };
    return result;
  }
}
