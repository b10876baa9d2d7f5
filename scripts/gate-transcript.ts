/**
 * `node dist/scripts/gate-transcript.js`: runs the action gate's walk-through
 * (scripts/gate-walk.ts) on a fresh demo host and prints it as a readable
 * transcript, the agent's calls and results and the operator's commands and
 * output, for docs/action-gate.md ("A session").
 */
import type { Entry } from './gate-walk.js';
import { walkGate } from './gate-walk.js';

function render(e: Entry): string[] {
  if (e.who === 'operator') {
    return [`operator$ ${e.argv.join(' ')}`, ...e.stdout.trimEnd().split('\n').map((l) => `  ${l}`), e.status === 0 ? '' : `  (exit ${e.status})`].filter((l, i, all) => l !== '' || i === all.length - 1);
  }
  const listed = e.tool === 'qube_list' ? (e.result.structuredContent as { qubes: { qube: string }[] } | undefined)?.qubes : undefined;
  // a listing by its names: the rest of each row is in docs/mcp-server.md
  const result = listed !== undefined ? `qubes: ${listed.map((q) => q.qube).join(' ')}`
    : e.result.structuredContent !== undefined ? JSON.stringify(e.result.structuredContent)
    : e.result.content.map((c) => (c.type === 'text' ? c.text : `[${c.type}]`)).join(' ');
  const waited = e.progress > 0 ? ` (waited: ${e.progress} progress notifications)` : '';
  return [`agent> ${e.tool} ${JSON.stringify(e.args)}`, `  ${e.result.isError === true ? 'error: ' : ''}${result}${waited}`, ''];
}

const walk = await walkGate();
for (const e of walk.entries) for (const line of render(e)) console.log(line);
