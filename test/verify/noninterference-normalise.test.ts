// What the noninterference check masks before it compares: only a job's
// id and start, and only the time of the agent's own removes. Names,
// classes and sizes of tombstones are still compared.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { normalisePushes, normaliseRemovalTimes } from '../../verify/noninterference/check.js';

const list = (name: string, at: string, bytes = 1): string => `${JSON.stringify({ tombstones: [{ name, klass: 'AppVM', removed: at, bytes }] })}\n`;

test('the time of a remove is masked, raw and inside an MCP result; nothing else of a tombstone is', () => {
  const a = list('ai-peer', '2026-12-03T07:36:37.000Z');
  assert.equal(normaliseRemovalTimes(a), normaliseRemovalTimes(list('ai-peer', '2026-12-03T07:36:36.000Z')));
  assert.notEqual(normaliseRemovalTimes(a), normaliseRemovalTimes(list('ai-other', '2026-12-03T07:36:37.000Z')));
  assert.notEqual(normaliseRemovalTimes(a), normaliseRemovalTimes(list('ai-peer', '2026-12-03T07:36:37.000Z', 2)));
  const mcp = (at: string): string => JSON.stringify({ content: [{ type: 'text', text: JSON.stringify({ tombstones: [{ qube: 'ai-peer', removed_at: at }] }) }], structuredContent: { tombstones: [{ qube: 'ai-peer', removed_at: at }] } });
  assert.equal(normaliseRemovalTimes(mcp('2026-12-03T07:36:37.000Z')), normaliseRemovalTimes(mcp('2026-12-03T07:36:36.000Z')));
  // a time under any other key is compared
  const other = (at: string): string => JSON.stringify({ started: at });
  assert.notEqual(normaliseRemovalTimes(other('2026-12-03T07:36:37.000Z')), normaliseRemovalTimes(other('2026-12-03T07:36:36.000Z')));
});

test('a sink push compares alike whatever fresh directory each machine chose, and only that', () => {
  const push = (id: string, status = 'ok'): string => `qmcp 1\nstatus ${status}\nexit 0\npush ${id}\nmessage \n\n`;
  assert.notEqual(push('20261203T230001Z.9b0227d17279b2b0'), push('20261203T230002Z.9e1468dbd32a6037'));
  assert.equal(normalisePushes(push('20261203T230001Z.9b0227d17279b2b0')), normalisePushes(push('20261203T230002Z.9e1468dbd32a6037')));
  assert.notEqual(normalisePushes(push('20261203T230001Z.9b0227d17279b2b0')), normalisePushes(push('20261203T230001Z.9b0227d17279b2b0', 'refused')));
  assert.notEqual(normalisePushes(push('20261203T230001Z.9b0227d17279b2b0')), normalisePushes(push('20261203T230001Z.9b0227d17279b2b0\nleak')));
});
