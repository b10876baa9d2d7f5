/**
 * The MCP server's memory with concurrent clients: `qmcp serve --sim --http`
 * as its own process, as deployed for several clients, and `clients` SDK
 * clients each listing and reading qubes at once. Memory is the server
 * process's own figures from /proc, so nothing of the bench is counted.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { Client, StreamableHTTPClientTransport } from '@modelcontextprotocol/client';
import { ok } from './latency.js';
import type { Row } from './stats.js';

const SECTION = 'server memory';
const BIN = join(import.meta.dirname, '..', '..', 'bin', 'qmcp.js');

/** Resident and peak resident memory of a process, in MiB, from /proc/PID/status. */
function memoryMiB(pid: number): { rss: number; peak: number } {
  const status = readFileSync(`/proc/${pid}/status`, 'utf8');
  const kib = (field: string): number => Number(new RegExp(`^${field}:\\s+(\\d+) kB`, 'm').exec(status)?.[1] ?? Number.NaN);
  return { rss: kib('VmRSS') / 1024, peak: kib('VmHWM') / 1024 };
}

/** Starts the server and resolves with the URL it prints once listening. */
function serve(dir: string, tokenFile: string): Promise<{ child: ChildProcess; url: URL }> {
  const child = spawn(process.execPath, [BIN, 'serve', '--sim', dir, '--http', '127.0.0.1:0', '--token-file', tokenFile], {
    stdio: ['ignore', 'ignore', 'pipe'],
  });
  return new Promise((resolve, reject) => {
    let err = '';
    child.stderr?.setEncoding('utf8').on('data', (chunk: string) => {
      err += chunk;
      const m = /listening on (http:\/\/\S+)/.exec(err);
      if (m?.[1] !== undefined) resolve({ child, url: new URL(m[1]) });
    });
    child.once('exit', (code) => reject(new Error(`qmcp serve exited ${String(code)}: ${err.trim()}`)));
  });
}

/** `clients` clients at once, each making `calls` rounds of a listing and an info read. */
export async function serverMemory(dir: string, clients: number, calls: number): Promise<Row[]> {
  const token = randomBytes(32).toString('hex');
  const tokenFile = join(dir, 'bench-token');
  writeFileSync(tokenFile, token + '\n', { mode: 0o600 });
  const { child, url } = await serve(dir, tokenFile);
  const pid = child.pid as number;
  const connected: Client[] = [];
  try {
    const idle = memoryMiB(pid);
    for (let i = 0; i < clients; i++) {
      const client = new Client({ name: `qmcp-bench-${i}`, version: '0' });
      await client.connect(new StreamableHTTPClientTransport(url, { requestInit: { headers: { Authorization: `Bearer ${token}` } } }));
      connected.push(client);
    }
    let peakRss = 0;
    await Promise.all(
      connected.map(async (client) => {
        for (let i = 0; i < calls; i++) {
          await ok(client, 'qube_list', {});
          await ok(client, 'qube_info', { qube: 'ai-full-box' });
          peakRss = Math.max(peakRss, memoryMiB(pid).rss);
        }
      }),
    );
    const after = memoryMiB(pid);
    const mib = (v: number): string => `${v.toFixed(1)} MiB`;
    return [
      { section: SECTION, what: 'qmcp serve --http, idle: resident', n: '1', median: mib(idle.rss), p95: '-' },
      { section: SECTION, what: `${clients} clients at once: resident, largest seen`, n: String(clients * calls * 2), median: mib(peakRss), p95: '-' },
      { section: SECTION, what: `${clients} clients at once: peak resident (VmHWM)`, n: '1', median: mib(after.peak), p95: '-' },
    ];
  } finally {
    await Promise.all(connected.map((c) => c.close()));
    child.kill('SIGTERM');
    await new Promise((done) => (child.exitCode === null ? child.once('exit', done) : done(undefined)));
  }
}
