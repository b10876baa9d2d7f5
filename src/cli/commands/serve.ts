/**
 * `qmcp serve [--sim DIR] [--qrexec-client PATH]
 *   [--http HOST:PORT --token-file FILE [--allowed-host H]... [--allowed-origin O]...]`:
 * the MCP server, on stdio by default. Over HTTP, SIGHUP re-reads the token file.
 */
import { resolve } from 'node:path';
import type { Command } from '../command.js';
import { UsageError } from '../command.js';
import { readTokenFile, TokenFileError } from '../../principal/http-guard.js';
import { startHttp } from '../../principal/http.js';
import { QrexecRunner } from '../../principal/qrexec.js';
import { runStdio } from '../../principal/stdio.js';
import { simRunner } from '../sim-principal.js';

interface ServeArgs {
  sim?: string;
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
  const out: ServeArgs = { allowedHosts: [], allowedOrigins: [] };
  for (let i = 0; i < args.length; i++) {
    const a = args[i] as string;
    const eq = a.indexOf('=');
    const flag = a.startsWith('--') && eq > 0 ? a.slice(0, eq) : a;
    const value = (): string => {
      if (eq > 0 && a.startsWith('--')) return a.slice(eq + 1);
      const v = args[++i];
      if (v === undefined) throw new UsageError(`${flag} needs a value`);
      return v;
    };
    if (flag === '--sim') out.sim = resolve(value());
    else if (flag === '--qrexec-client') out.client = value();
    else if (flag === '--http') out.http = parseHostPort(value());
    else if (flag === '--token-file') out.tokenFile = value();
    else if (flag === '--allowed-host') out.allowedHosts.push(value());
    else if (flag === '--allowed-origin') out.allowedOrigins.push(value());
    else throw new UsageError(`unknown argument: ${a}`);
  }
  if (out.sim !== undefined && out.client !== undefined) throw new UsageError('give --sim or --qrexec-client, not both');
  if (out.http !== undefined && out.tokenFile === undefined) throw new UsageError('--http needs --token-file FILE');
  if (out.http === undefined && (out.tokenFile !== undefined || out.allowedHosts.length > 0 || out.allowedOrigins.length > 0)) {
    throw new UsageError('--token-file, --allowed-host and --allowed-origin go with --http');
  }
  return out;
}

function runner(a: ServeArgs): QrexecRunner {
  if (a.sim !== undefined) return simRunner(a.sim);
  return new QrexecRunner({ client: a.client ?? 'qrexec-client-vm' });
}

export const serveCommand: Command = {
  path: ['serve'],
  summary: 'serve the MCP server (stdio by default, or Streamable HTTP with --http)',
  async run(argv: string[]): Promise<number> {
    const a = parseArgs(argv);
    const qrexec = runner(a);
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
