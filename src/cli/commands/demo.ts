/**
 * `qmcp demo [--dir DIR] [--port PORT]`: what `npm start` runs. The simulated
 * host with the demo fleet and qmcp installed into its dom0, and the MCP
 * server on Streamable HTTP (localhost, a bearer token) as its first
 * principal; the second agent's is one `qmcp serve` away.
 */
import { randomBytes } from 'node:crypto';
import { existsSync, writeFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseCli } from '../args.js';
import type { Command } from '../command.js';
import { UsageError } from '../command.js';
import { stopSignal } from '../stop-signal.js';
import { hostWarnings } from '../sim-notes.js';
import { demoDir, simRunner } from '../sim-principal.js';
import { readTokenFile } from '../../principal/http-guard.js';
import { gatedByLayer } from '../../shared/model/gate.js';
import { showDuration } from '../../shared/model/lease.js';
import { readPrincipalsFile } from '../../shared/model/principals.js';
import type { Settings } from '../../shared/model/settings.js';
import { settingsPath } from '../../shared/model/settings.js';
import type { CallVerdict } from '../../principal/tool.js';
import { DEMO_HOST_SETTINGS } from '../../sim/demo-settings.js';
import { loadFleet } from '../../sim/fleet.js';
import { dom0Root, startSimHost } from '../../sim/host.js';
import { StateFileError } from '../../sim/qubesd/index.js';

const HOST = '127.0.0.1';
const DEFAULT_PORT = 8765;

/**
 * The MCP Inspector the printed command runs. Pinned: unpinned, npm on Node
 * 20 takes the newest release whose engines admit Node 20, one too old to
 * know --header. It runs on the Node 22 that npx fetches beside it.
 */
export const INSPECTOR = '@modelcontextprotocol/inspector@2.12.0';

/** The demo's bearer token: made once, readable by its owner only. */
function demoToken(dir: string): { path: string; token: string } {
  const path = join(dir, 'mcp-token');
  if (!existsSync(path)) writeFileSync(path, randomBytes(32).toString('hex') + '\n', { mode: 0o600, flag: 'wx' });
  return { path, token: readTokenFile(path) };
}

function instructions(dir: string, url: string, tokenPath: string, token: string, socket: string): string {
  const qmcp = fileURLToPath(new URL('../../../../bin/qmcp.js', import.meta.url));
  const desktop = { mcpServers: { qmcp: { command: process.execPath, args: [qmcp, 'serve', '--sim', dir] } } };
  return [
    '',
    `MCP server (Streamable HTTP): ${url}   bearer token in ${tokenPath}`,
    '',
    'Claude Code:',
    `  claude mcp add --transport http qmcp ${url} --header "Authorization: Bearer ${token}"`,
    '',
    'Claude Desktop (claude_desktop_config.json; stdio, no token needed):',
    `  ${JSON.stringify(desktop)}`,
    '',
    'MCP Inspector (CLI mode; npx fetches it and the Node 22 it needs):',
    `  npx -y -p node@22 -p ${INSPECTOR} mcp-inspector --cli ${url} --transport http --header "Authorization: Bearer ${token}" --method tools/list`,
    '',
    'Ask the agent to list its qubes, create one from ai-debian-tpl, start it and run a command in it,',
    'then to look at vault: it cannot tell vault from a qube that does not exist.',
    'Each tool call is logged below: the tool, the qube names the agent sent, and ok, refused or error.',
    '',
    ...secondNotes(dir, qmcp, url, tokenPath),
    ...gateNotes(dir, qmcp, socket),
    ...leaseNotes(dir, qmcp, socket),
  ].join('\n');
}

/** The principals of the demo host, in the settings' order; the first is the one served here. */
function demoSettings(dir: string): Settings[] {
  return readPrincipalsFile(settingsPath(dom0Root(dir))).principals.list;
}

/** How to serve the other principals, each an agent with a world of its own (docs/principals.md). */
function secondNotes(dir: string, qmcp: string, url: string, tokenPath: string): string[] {
  const [first, ...others] = demoSettings(dir);
  if (first === undefined) return [];
  const port = Number(new URL(url).port) + 1;
  return others.flatMap((s) => [
    `A second agent, ${s.principal}, has a world of its own (${s.namePrefix}* qubes tagged ${s.tags.umbrella}); it and ${first.principal} cannot see or reach each other's qubes.`,
    '  serve it on stdio (Claude Desktop: the same entry with these args), or on HTTP beside this one with the same token:',
    `    ${process.execPath} ${qmcp} serve --sim ${dir} --principal ${s.principal}`,
    `    ${process.execPath} ${qmcp} serve --sim ${dir} --principal ${s.principal} --http ${HOST}:${port} --token-file ${tokenPath}`,
    '',
  ]);
}

/** Which calls wait for the operator on this host, and how to answer them (docs/action-gate.md). */
function gateNotes(dir: string, qmcp: string, socket: string): string[] {
  const root = dom0Root(dir);
  const cli = `${process.execPath} ${qmcp}`;
  const [first] = demoSettings(dir);
  if (first === undefined) return [];
  const { dialog, services } = gatedByLayer(first);
  const none = (ids: string[]): string => (ids.length > 0 ? ids.join(', ') : 'none');
  return [
    `The action gate: the agent's call waits until you answer it, in another terminal (the gate setting in ${settingsPath(root)}).`,
    `  asked by qmcp's dom0 services (${none(services)}): answer one at a time, or with list, show ID, allow ID, deny ID:`,
    `    ${cli} dom0 approvals watch --root ${root} --qubesd-socket ${socket}`,
    `  asked by Qubes' own dialog, the policy saying ask (${none(dialog)}): list them, then allow ID or deny ID:`,
    `    ${cli} sim ask --dir ${dir} list`,
    '  a plan the agent submits (plan_submit): review it whole, then approve ID (dom0 runs it) or deny ID:',
    `    ${cli} dom0 plans list|show ID|approve ID|deny ID --root ${root} --qubesd-socket ${socket}`,
    '',
  ];
}

/** How long what the agent creates lives on this host, and how to watch a lease run out (README's walk through). */
function leaseNotes(dir: string, qmcp: string, socket: string): string[] {
  const root = dom0Root(dir);
  const [first, ...others] = demoSettings(dir);
  const lease = first?.lease ?? null;
  if (lease === null || lease.defaultSeconds === null) return [];
  const theirs = others.flatMap((s) => (s.lease?.defaultSeconds == null ? [] : [`  ${s.principal}'s qubes live ${showDuration(s.lease.defaultSeconds)}, renewable up to ${showDuration(s.lease.maxSeconds)}.`]));
  return [
    `Leases: a qube the agent creates lives ${showDuration(lease.defaultSeconds)} (qube_info shows lease_expires), unless it renews it (qube_renew, up to ${showDuration(lease.maxSeconds)} from then).`,
    ...theirs,
    '  the reaper ends a lapsed one as a remove would, for every agent; to watch it now, run the reaper\'s lease step as if at a later time:',
    `    ${process.execPath} ${qmcp} dom0 leases expire --now ${LATER} --root ${root} --qubesd-socket ${socket}`,
    '',
  ];
}

/** A time past any lease the demo gives. */
export const LATER = '2099-01-01T00:00:00Z';

const USAGE = `usage: qmcp demo [--dir DIR] [--port PORT]

Runs the simulated Qubes host with the demo fleet in DIR (kept between
runs), installs qmcp into its dom0 and serves MCP over Streamable HTTP on
${HOST}:PORT (default ${DEFAULT_PORT}) with the bearer token it keeps in
DIR/mcp-token, and prints how to connect MCP clients. DIR defaults to
$QMCP_DEMO_DIR, else $XDG_STATE_HOME/qmcp/demo (~/.local/state/qmcp/demo).
Ctrl-C stops it. Exit 0 stopped, 1 could not start, 2 usage.`;

export const demoCommand: Command = {
  path: ['demo'],
  summary: 'run the demo: the simulated host, qmcp installed, and the MCP server on localhost (what npm start runs)',
  usage: USAGE,
  async run(argv: string[]): Promise<number> {
    const { values, positionals } = parseCli(argv, { dir: { type: 'string' }, port: { type: 'string' } }, USAGE);
    if (positionals.length > 0) throw new UsageError(`unexpected argument: ${positionals[0]}\n${USAGE}`);
    const portText = values.port ?? String(DEFAULT_PORT);
    if (!/^[0-9]{1,5}$/.test(portText) || Number(portText) > 65535) throw new UsageError(`--port wants a port number from 0 to 65535\n${USAGE}`);
    const port = Number(portText);
    const dir = resolve(values.dir ?? demoDir());
    const log = (line: string): void => console.log(`qmcp demo: ${line}`);
    const fresh = !existsSync(join(dir, 'state'));
    log(fresh ? `creating a simulated Qubes host in ${dir} with the demo fleet` : `resuming the simulated Qubes host in ${dir}`);
    let host;
    try {
      host = await startSimHost({ dir, fleet: loadFleet('demo'), install: true, initialSettings: DEMO_HOST_SETTINGS, log });
    } catch (e) {
      if (e instanceof StateFileError) {
        console.error(`qmcp demo: ${e.message}; move it aside or choose another --dir`);
        return 1;
      }
      throw e;
    }
    const { path: tokenPath, token } = demoToken(dir);
    const qrexec = simRunner(dir);
    // the MCP server loads when it serves, so every other qmcp command starts without it
    const { MCP_PATH, startHttp } = await import('../../principal/http.js');
    let http;
    try {
      // one line per call: the names are what the agent sent, already held to Qubes' name syntax
      const onCall = (tool: string, target: string, verdict: CallVerdict): void => log(['call', tool, target, verdict].filter((w) => w !== '').join(' '));
      http = await startHttp(qrexec, { host: HOST, port, token, onCall });
    } catch (e) {
      console.error(`qmcp demo: cannot listen on ${HOST}:${port} (${(e as NodeJS.ErrnoException).code ?? 'error'}); try --port`);
      await host.close();
      return 1;
    }
    // Handlers first: whoever reads the instructions may stop us at once.
    const stopped = stopSignal();
    console.log(instructions(dir, `http://${HOST}:${http.port}${MCP_PATH}`, tokenPath, token, host.qubesd.socketPath));
    for (const w of hostWarnings(host)) console.error(`qmcp demo: WARNING: ${w}\n`);
    log('Ctrl-C stops the demo; its state is kept for next time');
    const signal = await stopped;
    log(`${signal}: stopping`);
    qrexec.close();
    await http.close();
    await host.close();
    return 0;
  },
};
