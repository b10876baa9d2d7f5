/** Per-tool latency through the whole stack: MCP client, MCP server, router (no client process, as `serve --sim`), policy, dom0 or sandbox, qubesd. */
import { Client } from '@modelcontextprotocol/client';
import { InMemoryTransport, type CallToolResult } from '@modelcontextprotocol/server';
import { simRunner } from '../src/cli/sim-principal.js';
import { createServer } from '../src/principal/server.js';
import { latencyRow, sample, summarise, type Row, type Summary } from './stats.js';

const SECTION = 'tool latency';

/** Connects an SDK client to a fresh server in this process, as the principal of the host at `dir`. */
export async function connectPrincipal(dir: string): Promise<Client> {
  const [serverSide, clientSide] = InMemoryTransport.createLinkedPair();
  await createServer(simRunner(dir)).connect(serverSide);
  const client = new Client({ name: 'qmcp-bench', version: '0' });
  await client.connect(clientSide);
  return client;
}

/** A call that must succeed: a benchmark of refusals would measure the wrong path. */
export async function ok(client: Client, name: string, args: Record<string, unknown>): Promise<CallToolResult> {
  const r = (await client.callTool({ name, arguments: args })) as CallToolResult;
  if (r.isError) throw new Error(`${name} ${JSON.stringify(args)} failed: ${JSON.stringify(r.content)}`);
  return r;
}

/**
 * The demo host's qubes: `ai-full-box` runs commands and files, `ai-exec-box`
 * cycles through start and shutdown, creates come from `ai-debian-tpl`.
 */
export async function toolLatency(dir: string, calls: number, hasSandbox: boolean): Promise<Row[]> {
  const client = await connectPrincipal(dir);
  const rows: Row[] = [];
  const add = (what: string, s: Summary): void => void rows.push(latencyRow(SECTION, what, s));
  try {
    add('qube_list', await sample(calls, () => ok(client, 'qube_list', {})));
    add('qube_info', await sample(calls, () => ok(client, 'qube_info', { qube: 'ai-full-box' })));
    add('qube_state', await sample(calls, () => ok(client, 'qube_state', { qube: 'ai-full-box' })));
    if (!hasSandbox) return rows;

    const starts: number[] = [];
    const stops: number[] = [];
    for (let i = 0; i < calls; i++) {
      starts.push((await sample(1, () => ok(client, 'qube_start', { qube: 'ai-exec-box' }))).medianMs);
      stops.push((await sample(1, () => ok(client, 'qube_shutdown', { qube: 'ai-exec-box' }))).medianMs);
    }
    add('qube_start', summarise(starts));
    add('qube_shutdown', summarise(stops));

    await ok(client, 'qube_start', { qube: 'ai-full-box' });
    add('qube_run (true)', await sample(calls, () => ok(client, 'qube_run', { qube: 'ai-full-box', argv: ['true'] })));
    add(
      'qube_write_file (1 KiB)',
      await sample(calls, (i) => ok(client, 'qube_write_file', { qube: 'ai-full-box', path: `/root/bench-${i}`, content: 'x'.repeat(1024) })),
    );
    add('qube_read_file (1 KiB)', await sample(calls, (i) => ok(client, 'qube_read_file', { qube: 'ai-full-box', path: `/root/bench-${i}` })));
    // a large output is shaped in the qube and travels once: what the client receives is the figure
    let sent = 0;
    const fiveMb = { qube: 'ai-full-box', shell: "head -c 5000000 /dev/zero | tr '\\0' x" };
    add('qube_run (5 MB stdout)', await sample(calls, async () => void (sent = Buffer.byteLength(JSON.stringify(await ok(client, 'qube_run', fiveMb))))));
    rows.push({ section: SECTION, what: 'qube_run (5 MB stdout): bytes the client receives', n: String(calls), median: `${sent} B`, p95: '-' });
    await ok(client, 'qube_kill', { qube: 'ai-full-box' });

    const creates: number[] = [];
    const removes: number[] = [];
    for (let i = 0; i < calls; i++) {
      const name = `ai-bench-${i}`;
      creates.push((await sample(1, () => ok(client, 'qube_create', { name, template: 'ai-debian-tpl' }))).medianMs);
      removes.push((await sample(1, () => ok(client, 'qube_remove', { qube: name }))).medianMs);
    }
    add('qube_create', summarise(creates));
    add('qube_remove', summarise(removes));
    return rows;
  } finally {
    await client.close();
  }
}
