/**
 * A qubesd socket proxy in front of the simulated qubesd: it reads each
 * whole request, lets a hook see it (and hold it, to freeze a pipeline
 * between two calls), and then forwards it, or fails it with a Qubes
 * exception reply, or drops it with no bytes, as a failing qubesd would.
 * It stands in front of qubesd's internal socket too (the system info the
 * dom0 services read the machine with), beside its own socket as qubesd's
 * is beside qubesd.sock.
 */
import { connect, createServer } from 'node:net';
import type { Server, Socket } from 'node:net';
import { internalSocketOf } from '../../src/dom0/qubesd.js';

/** forward; fail with an exception reply or drop with no bytes before qubesd acts; lose: qubesd acts, the reply is lost. */
export type Verdict = 'forward' | 'fail' | 'drop' | 'lose';

export interface ProxyCall {
  /** 1-based count of requests through this proxy. */
  readonly n: number;
  readonly method: string;
  readonly dest: string;
}

export interface QubesdProxy {
  readonly socketPath: string;
  /** Requests seen so far. */
  readonly calls: ProxyCall[];
  /** Decides each request's fate; may await (a hold). Default: forward. */
  decide: (call: ProxyCall) => Verdict | Promise<Verdict>;
  close(): Promise<void>;
}

const INJECTED = Buffer.concat([Buffer.from('2\0QubesException\0\0injected fault\0', 'latin1')]);

function header(req: Buffer): { method: string; dest: string } {
  const nul = req.indexOf(0);
  const fields = req.subarray(0, nul < 0 ? req.length : nul).toString('latin1').split(' ');
  return { method: (fields[0] ?? '').split('+')[0] ?? '', dest: fields[3] ?? '' };
}

export async function startProxy(upstream: string, socketPath: string): Promise<QubesdProxy> {
  const open = new Set<Socket>();
  const servers: Server[] = [];
  const proxy: QubesdProxy = {
    socketPath,
    calls: [],
    decide: () => 'forward',
    close: async () => {
      for (const s of open) s.destroy();
      await Promise.all(servers.map((server) => new Promise<void>((resolve) => server.close(() => resolve()))));
    },
  };
  servers.push(await relay(proxy, open, upstream, socketPath));
  servers.push(await relay(proxy, open, internalSocketOf(upstream), internalSocketOf(socketPath)));
  return proxy;
}

/** One socket of the proxy: each request seen and decided on, then forwarded to `upstream` or not. */
async function relay(proxy: QubesdProxy, open: Set<Socket>, upstream: string, socketPath: string): Promise<Server> {
  const server: Server = createServer({ allowHalfOpen: true }, (client) => {
    open.add(client);
    client.once('close', () => open.delete(client));
    client.on('error', () => client.destroy());
    const chunks: Buffer[] = [];
    client.on('data', (c: Buffer) => chunks.push(c));
    client.on('end', () => {
      const req = Buffer.concat(chunks);
      const call: ProxyCall = { n: proxy.calls.length + 1, ...header(req) };
      proxy.calls.push(call);
      void (async () => {
        let verdict: Verdict;
        try {
          verdict = await proxy.decide(call);
        } catch {
          verdict = 'drop';
        }
        if (client.destroyed) return;
        if (verdict === 'fail') {
          client.end(INJECTED);
          return;
        }
        if (verdict === 'drop') {
          client.destroy();
          return;
        }
        const up = connect(upstream, () => up.end(req));
        open.add(up);
        up.once('close', () => open.delete(up));
        const lose = verdict === 'lose';
        up.on('data', (c: Buffer) => {
          if (!lose) client.write(c);
        });
        up.on('end', () => (lose ? client.destroy() : client.end()));
        up.on('error', () => client.destroy());
        up.on('close', () => {
          if (!client.destroyed) client.end();
        });
        // Streaming calls (admin.Events) end when the client goes away.
        client.once('close', () => up.destroy());
      })();
    });
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(socketPath, () => resolve());
  });
  return server;
}
