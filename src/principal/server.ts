/** Builds one MCP server instance: static info, instructions and tool list. */
import { McpServer } from '@modelcontextprotocol/server';
import type { QrexecRunner } from './qrexec.js';
import { registerTool } from './tool.js';
import { INSTRUCTIONS, SERVER_NAME } from './texts.js';
import { TOOLS } from './tools/index.js';

export const SERVER_VERSION = '0.1.0';

/** A fresh instance; every transport builds one per connection (stdio) or per request (HTTP). */
export function createServer(qrexec: QrexecRunner): McpServer {
  const server = new McpServer(
    { name: SERVER_NAME, version: SERVER_VERSION },
    { instructions: INSTRUCTIONS, capabilities: { tools: {} } },
  );
  for (const spec of TOOLS) registerTool(server, qrexec, spec);
  return server;
}
