/** The operator's channel for a dom0 service: never stderr, which reaches the caller. */
import { spawn } from 'node:child_process';
import { appendFileSync, mkdirSync } from 'node:fs';
import { dirname, join } from 'node:path';

const JOURNAL_TAG = 'qmcp-service';

/** The operator's channel: the journal on a real dom0, a file under the simulated root. */
export function operatorLog(root: string): (message: string) => void {
  if (root === '/') {
    return (message) => {
      const line = `${message}\n`;
      const child = spawn('systemd-cat', ['-t', JOURNAL_TAG, '-p', 'info'], { stdio: ['pipe', 'ignore', 'ignore'] });
      child.on('error', () => {
        const fallback = spawn('logger', ['-t', JOURNAL_TAG, '--', message], { stdio: 'ignore' });
        fallback.on('error', () => undefined);
      });
      child.stdin.on('error', () => undefined);
      child.stdin.end(line);
    };
  }
  const path = join(root, 'var', 'log', 'qmcp', 'service.log');
  return (message) => {
    try {
      mkdirSync(dirname(path), { recursive: true, mode: 0o750 });
      appendFileSync(path, `${new Date().toISOString()} [${process.pid}] ${message}\n`, { mode: 0o640 });
    } catch {
      // the operator log is best effort; the audit log is the record
    }
  };
}
