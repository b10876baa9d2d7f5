/**
 * Serves over stdin/stdout. When stdin ends (a dropped `ssh mcp-control qmcp
 * serve`) the server stops its children and exits: no orphaned server or
 * qrexec-client-vm is left behind.
 */
import type { Transport } from '@modelcontextprotocol/server';
import { serveStdio, StdioServerTransport, type StdioServerHandle } from '@modelcontextprotocol/server/stdio';
import { ListenWatch } from './listens.js';
import type { QrexecRunner } from './qrexec.js';
import { createServer } from './server.js';

/** Listens one session may hold open; past it, the SDK refuses another. */
const MAX_LISTENS = 16;

/** One session over WIRE (stdin/stdout by default), of either protocol era. */
export function serveSession(qrexec: QrexecRunner, wire: Transport = new StdioServerTransport()): StdioServerHandle {
  const watch = new ListenWatch(wire);
  return serveStdio(({ era }) => createServer(qrexec, { live: true, ...(era === 'modern' ? { listened: watch } : {}) }), {
    transport: watch,
    maxSubscriptions: MAX_LISTENS,
    // out-of-band errors may carry callee text: keep them off the wire and out of logs
    onerror: () => undefined,
  });
}

export function runStdio(qrexec: QrexecRunner): Promise<number> {
  return new Promise<number>((resolve) => {
    const handle = serveSession(qrexec);
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
