// The tool table in docs/mcp-server.md is generated from the tools, and
// every operation of the model has a tool.
import assert from 'node:assert/strict';
import { readFile } from 'node:fs/promises';
import { test } from 'node:test';
import { fileURLToPath } from 'node:url';
import { heartbeat } from '../../src/principal/tool.js';
import { TOOLS } from '../../src/principal/tools/index.js';
import { operation } from '../../src/shared/model/index.js';
import { composition } from '../../src/shared/model/compositions.js';
import { renderToolTable, spliceToolTable, toolCoverage } from '../../src/principal/tools/table.js';

const REGENERATE = 'regenerate: node dist/scripts/gen-tool-table.js';

/** Whether DOC's tool table is what the generator makes of TOOLS. */
function isCurrent(doc: string, tools = TOOLS): boolean {
  return spliceToolTable(doc, renderToolTable(tools)) === doc;
}

const doc = (): Promise<string> => readFile(fileURLToPath(new URL('../../../docs/mcp-server.md', import.meta.url)), 'utf8');

test('docs/mcp-server.md carries the tool table the generator prints', async () => {
  assert.ok(isCurrent(await doc()), REGENERATE);
});

test('the freshness check catches a stale table: a row edited, a tool renamed', async () => {
  const text = await doc();
  assert.equal(isCurrent(text.replace('| `qube_kill` | Kill a qube | `kill` | yes |', '| `qube_kill` | Kill a qube | `kill` | no |')), false);
  const renamed = TOOLS.map((t) => (t.name === 'qube_kill' ? { ...t, name: 'qube_stop_now' } : t));
  assert.equal(isCurrent(text, renamed), false);
});

test('every operation and composition of the model has a tool, and every tool an operation', () => {
  assert.deepEqual(toolCoverage(), []);
});

test('the coverage check names an operation without a tool and a tool without an operation', () => {
  const withoutKill = TOOLS.filter((t) => t.operation !== 'kill');
  assert.deepEqual(toolCoverage(withoutKill), ['kill: no tool']);
  assert.throws(() => renderToolTable(withoutKill), /kill: no tool/);
  const stray = TOOLS.map((t) => (t.name === 'qube_kill' ? { ...t, operation: 'halt' } : t));
  assert.deepEqual(toolCoverage(stray), ['kill: no tool', 'qube_kill: halt is no operation of the model']);
});

test('every tool whose operation the gate can hold sends progress, reads aside, as the model says', () => {
  const gateable = (id: string): boolean => (composition(id)?.operations ?? [id]).some((step) => operation(step).gate !== null);
  for (const t of TOOLS) assert.equal(heartbeat(t), t.long === true || gateable(t.operation), t.name);
  for (const name of ['qube_kill', 'qube_shutdown', 'firewall_set', 'qube_set_property']) {
    const t = TOOLS.find((x) => x.name === name);
    assert.ok(t && t.long !== true && heartbeat(t), `${name} waits for the operator without being long`);
  }
  assert.equal(heartbeat({ operation: 'state' }), false);
});
