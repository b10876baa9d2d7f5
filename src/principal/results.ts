/**
 * The shapes of tool results. Every refusal is the one frozen REFUSAL object,
 * so a refusal looks the same whatever its cause; no error text from a child
 * process, qubesd or the SDK ever reaches a result.
 */
import type { CallToolResult } from '@modelcontextprotocol/server';
import { QmcpError } from '../shared/errors.js';

export const REFUSAL_TEXT =
  'AgentRefusal. The operation is not permitted, or the qube does not exist (these are deliberately indistinguishable).';

export const REFUSAL: CallToolResult = Object.freeze({
  content: Object.freeze([Object.freeze({ type: 'text', text: REFUSAL_TEXT })]),
  isError: true,
}) as CallToolResult;

/** Answer for a call that broke in a way the agent cannot act on (timeout, bad reply). */
export const FAILED_TEXT = 'The call did not complete (it timed out, or its reply was not understood). Nothing more is known; check the state before retrying.';

/** Bytes of JSON a success repeats whole as text; past it the text is the summary below. */
export const TEXT_JSON_MAX = 4096;

/** Strings longer than this are left out of a summary. */
const SUMMARY_STRING_MAX = 256;

/**
 * A success: the structured value, and as text the same JSON when it is
 * small, else a summary (the JSON with long strings replaced by a note), so
 * a large payload travels once, in structuredContent (docs/mcp-server.md).
 */
export function ok(value: Record<string, unknown>): CallToolResult {
  const json = JSON.stringify(value);
  const bytes = Buffer.byteLength(json);
  let text = json;
  if (bytes > TEXT_JSON_MAX) {
    text = JSON.stringify(summary(value));
    // many short strings (a long list) are no summary either
    if (Buffer.byteLength(text) > TEXT_JSON_MAX) text = `The result is ${bytes} bytes of JSON, in structuredContent.`;
  }
  return { content: [{ type: 'text', text }], structuredContent: value };
}

function summary(value: unknown): unknown {
  if (typeof value === 'string') {
    if (value.length <= SUMMARY_STRING_MAX) return value;
    return `[${Buffer.byteLength(value)} bytes, in structuredContent]`;
  }
  if (Array.isArray(value)) return value.map(summary);
  if (value !== null && typeof value === 'object') {
    return Object.fromEntries(Object.entries(value).map(([k, v]) => [k, summary(v)]));
  }
  return value;
}

/** An in-scope error the agent can act on; the text is ours, never a callee's. */
export function actionable(message: string): CallToolResult {
  return { content: [{ type: 'text', text: message }], isError: true };
}

/** Raised inside a handler to answer with the uniform refusal. */
export class AgentRefusal extends QmcpError {
  readonly code = 'ERR_QMCP_AGENT_REFUSED';

  constructor() {
    super('refused');
  }
}

/** Raised inside a handler to answer with an actionable message written by us. */
export class Actionable extends QmcpError {
  readonly code = 'ERR_QMCP_ACTIONABLE';

  constructor(message: string) {
    super(message);
  }
}

/** Raised when the call did not complete. */
export class Failed extends QmcpError {
  readonly code = 'ERR_QMCP_FAILED';

  constructor() {
    super('failed');
  }
}
