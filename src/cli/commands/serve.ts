/**
 * `qmcp serve [--sim DIR [--principal NAME]] [--qrexec-client PATH]
 *   [--http HOST:PORT --token-file FILE [--allowed-host H]... [--allowed-origin O]...]`:
 * the MCP server, on stdio by default. Over HTTP, SIGHUP re-reads the token file.
 */
import { resolve } from 'node:path';
import type { Command } from '../command.js';
import { UsageError } from '../command.js';
import { parseCli } from '../args.js';
import { readTokenFile, TokenFileError } from '../../principal/http-guard.js';
import { QrexecRunner } from '../../principal/qrexec.js';
import { SIM_PRINCIPAL, simHostProblem, simRunner } from '../sim-principal.js';
import { isQubeName } from '../../shared/model/index.js';

const USAGE = `usage: qmcp serve [--sim DIR [--principal NAME] | --qrexec-client PATH]
                  [--http HOST:PORT --token-file FILE [--allowed-host H]... [--allowed-origin O]...]

Serves MCP as the principal qube: on stdio by default (stdout carries MCP
only; messages go to stderr), or Streamable HTTP on HOST:PORT with --http,
where each request must carry the bearer token in FILE (owner-only, at
least 128 bits; SIGHUP re-reads it), a Host naming the address served (or
an --allowed-host) and no Origin unless it is an --allowed-origin.
Every call goes through qrexec-client-vm (PATH, default found on PATH).
--sim DIR takes the principal's seat on the simulated host running at DIR
(the principal qube NAME, default ${SIM_PRINCIPAL}), and refuses to start
when none runs there or it has no qube NAME. Exit 0 stopped, 1 could not
start, 2 usage.`;

interface ServeArgs {
  sim?: string;
  principal?: string;
  client?: string;
  http?: { host: string; port: number };
  tokenFile?: string;
  allowedHosts: string[];
  allowedOrigins: string[];
}

function parseHostPort(v: string): { host: string; port: number } {
  const m = /^(\[[0-9a-fA-F:]+\]|[A-Za-z0-9.-]+):([0-9]{1,5})$/.exec(v);
  const port = Number(m?.[2]);
  if (!m || port > 65535) throw new UsageError('--http needs HOST:PORT, e.g. 127.0.0.1:8765');
  const host = (m[1] as string).replace(/^\[(.*)\]$/, '$1');
  return { host, port };
}

function parseArgs(args: string[]): ServeArgs {
  const { values, positionals } = parseCli(args, {
    sim: { type: 'string' },
    principal: { type: 'string' },
    'qrexec-client': { type: 'string' },
    http: { type: 'string' },
    'token-file': { type: 'string' },
    'allowed-host': { type: 'string', multiple: true },
    'allowed-origin': { type: 'string', multiple: true },
  });
  if (positionals.length > 0) throw new UsageError(`unknown argument: ${positionals[0] as string}`);
  const out: ServeArgs = { allowedHosts: values['allowed-host'] ?? [], allowedOrigins: values['allowed-origin'] ?? [] };
  if (values.sim !== undefined) out.sim = resolve(values.sim);
  if (values.principal !== undefined) {
    // on a real machine the principal is the qube the server runs in
    if (out.sim === undefined) throw new UsageError('--principal goes with --sim');
    if (!isQubeName(values.principal)) throw new UsageError(`--principal needs a qube name, not ${JSON.stringify(values.principal)}`);
    out.principal = values.principal;
  }
  if (values['qrexec-client'] !== undefined) out.client = values['qrexec-client'];
  if (values.http !== undefined) out.http = parseHostPort(values.http);
  if (values['token-file'] !== undefined) out.tokenFile = values['token-file'];
  if (out.sim !== undefined && out.client !== undefined) throw new UsageError('give --sim or --qrexec-client, not both');
  if (out.http !== undefined && out.tokenFile === undefined) throw new UsageError('--http needs --token-file FILE');
  if (out.http === undefined && (out.tokenFile !== undefined || out.allowedHosts.length > 0 || out.allowedOrigins.length > 0)) {
    throw new UsageError('--token-file, --allowed-host and --allowed-origin go with --http');
  }
  return out;
}

function runner(a: ServeArgs): QrexecRunner {
  if (a.sim !== undefined) return simRunner(a.sim, a.principal);
  return new QrexecRunner({ client: a.client ?? 'qrexec-client-vm' });
}

export const serveCommand: Command = {
  path: ['serve'],
  summary: 'serve the MCP server (stdio by default, or Streamable HTTP with --http)',
  usage: USAGE,
  async run(argv: string[]): Promise<number> {
    const a = parseArgs(argv);
    if (a.sim !== undefined) {
      const problem = await simHostProblem(a.sim, a.principal);
      if (problem !== undefined) {
        process.stderr.write(`qmcp serve: ${problem}\n`);
        return 1;
      }
    }
    const qrexec = runner(a);
    // the MCP server (its SDK and every tool) loads when it serves, so every other qmcp command starts without it
    const { runStdio } = await import('../../principal/stdio.js');
    const { startHttp } = await import('../../principal/http.js');
    if (a.http === undefined) {
      const status = await runStdio(qrexec);
      process.exit(status);
    }
    let token: string;
    try {
      token = readTokenFile(a.tokenFile as string);
    } catch (e) {
      if (e instanceof TokenFileError) {
        process.stderr.write(`qmcp serve: ${e.message}\n`);
        return 1;
      }
      throw e;
    }
    const http = await startHttp(qrexec, {
      host: a.http.host,
      port: a.http.port,
      token,
      allowedHosts: a.allowedHosts,
      allowedOrigins: a.allowedOrigins,
    });
    process.stderr.write(`qmcp serve: listening on http://${a.http.host.includes(':') ? `[${a.http.host}]` : a.http.host}:${http.port}/mcp\n`);
    // SIGHUP re-reads the token file; a bad new file keeps the old token
    const reload = (): void => {
      try {
        http.setToken(readTokenFile(a.tokenFile as string));
        process.stderr.write('qmcp serve: token reloaded\n');
      } catch (e) {
        const why = e instanceof TokenFileError ? e.message : 'cannot read the token file';
        process.stderr.write(`qmcp serve: token not reloaded, keeping the old one: ${why}\n`);
      }
    };
    process.on('SIGHUP', reload);
    await new Promise<void>((done) => {
      process.once('SIGTERM', done);
      process.once('SIGINT', done);
    });
    process.off('SIGHUP', reload);
    qrexec.close();
    await http.close();
    return 0;
  },
};
