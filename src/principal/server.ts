/** Builds one MCP server instance: static info, instructions and tool list. */
import { McpServer } from '@modelcontextprotocol/server';
import type { QrexecRunner } from './qrexec.js';
import { registerTool, type CallObserver } from './tool.js';
import { INSTRUCTIONS, SERVER_NAME } from './texts.js';
import { TOOLS } from './tools/index.js';
import { registerQubeResources, type Listened } from './resources.js';

export const SERVER_VERSION = '0.1.0';

export interface ServerOptions {
  /** Told of every tool call and how it ended; reporting only. */
  readonly onCall?: CallObserver;
  /**
   * The instance serves one session (stdio), not one request (HTTP): it
   * takes resource subscriptions and sends resource notifications.
   */
  readonly live?: boolean;
  /** A 2026-07-28 session's listens, which stand for its resource subscriptions. */
  readonly listened?: Listened;
}

/** A fresh instance; every transport builds one per connection (stdio) or per request (HTTP). */
export function createServer(qrexec: QrexecRunner, options: ServerOptions = {}): McpServer {
  const live = options.live === true;
  const server = new McpServer(
    { name: SERVER_NAME, version: SERVER_VERSION },
    { instructions: INSTRUCTIONS, capabilities: { tools: {}, resources: { subscribe: live, listChanged: live } } },
  );
  for (const spec of TOOLS) registerTool(server, qrexec, spec, options.onCall);
  registerQubeResources(server, qrexec, live, options.listened);
  return server;
}
