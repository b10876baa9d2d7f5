/** What a test's child process wrote, collected until it closes. */
import type { ChildProcessByStdio } from 'node:child_process';
import type { Readable, Writable } from 'node:stream';

export interface ChildOutput {
  /** Its exit status; -1 when a signal ended it. */
  status: number;
  stdout: string;
  stderr: string;
}

/** Collects CHILD's stdout and stderr until it closes; INPUT, when given, is its whole stdin. */
export function childOutput(child: ChildProcessByStdio<Writable | null, Readable, Readable>, input?: string): Promise<ChildOutput> {
  return new Promise((resolve, reject) => {
    const out: Buffer[] = [];
    const err: Buffer[] = [];
    child.stdout.on('data', (c: Buffer) => out.push(c));
    child.stderr.on('data', (c: Buffer) => err.push(c));
    child.on('error', reject);
    child.on('close', (code) => resolve({ status: code ?? -1, stdout: Buffer.concat(out).toString(), stderr: Buffer.concat(err).toString() }));
    if (input !== undefined) child.stdin?.end(input);
  });
}
