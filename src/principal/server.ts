/** Builds one MCP server instance: static info, instructions and tool list. */
import { McpServer } from '@modelcontextprotocol/server';
import type { QrexecRunner } from './qrexec.js';
import { registerTool, type CallObserver } from './tool.js';
import { INSTRUCTIONS, SERVER_NAME } from './texts.js';
import { TOOLS } from './tools/index.js';

export const SERVER_VERSION = '0.1.0';

export interface ServerOptions {
  /** Told of every tool call and how it ended; reporting only. */
  readonly onCall?: CallObserver;
}

/** A fresh instance; every transport builds one per connection (stdio) or per request (HTTP). */
export function createServer(qrexec: QrexecRunner, options: ServerOptions = {}): McpServer {
  const server = new McpServer(
    { name: SERVER_NAME, version: SERVER_VERSION },
    { instructions: INSTRUCTIONS, capabilities: { tools: {} } },
  );
  for (const spec of TOOLS) registerTool(server, qrexec, spec, options.onCall);
  return server;
}
