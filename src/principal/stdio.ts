/**
 * Serves over stdin/stdout. When stdin ends (a dropped `ssh mcp-control qmcp
 * serve`) the server stops its children and exits: no orphaned server or
 * qrexec-client-vm is left behind.
 */
import { serveStdio } from '@modelcontextprotocol/server/stdio';
import type { QrexecRunner } from './qrexec.js';
import { createServer } from './server.js';

export function runStdio(qrexec: QrexecRunner): Promise<number> {
  return new Promise<number>((resolve) => {
    const handle = serveStdio(() => createServer(qrexec, { live: true }), {
      // out-of-band errors may carry callee text: keep them off the wire and out of logs
      onerror: () => undefined,
    });
    let done = false;
    const stop = (): void => {
      if (done) return;
      done = true;
      qrexec.close();
      handle.close().then(
        () => resolve(0),
        () => resolve(0),
      );
    };
    process.stdin.once('end', stop);
    process.stdin.once('close', stop);
    process.once('SIGTERM', stop);
    process.once('SIGINT', stop);
    process.once('SIGHUP', stop);
  });
}
