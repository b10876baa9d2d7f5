// What the noninterference check masks before it compares: only a job's
// id and start, the time of the agent's own removes, and a push's fresh
// directory, also inside a plan step's answer, and the beat lines a long
// in-qube command sends. Names, classes and sizes of tombstones are still
// compared.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { comparable, normaliseBeats, normalisePushes, normaliseRemovalTimes } from '../../verify/noninterference/check.js';

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

test("a push step of a plan compares alike inside the plan's status, and nothing else of the plan does", () => {
  const answer = (id: string, status = 'ok'): string => Buffer.from(`qmcp 1\nstatus ${status}\nexit 0\npush ${id}\nmessage \n\n`, 'latin1').toString('base64');
  const plan = (output: string, state = 'done', info = 'e30K'): string =>
    `${JSON.stringify({ plan: '3', state, steps: [{ operation: 'copy', qube: 'ai-tpl', argument: 'drop', state: 'done', status: 0, output }, { operation: 'info', argument: 'ai-read', state: 'done', status: 0, output: info }] })}\n`;
  const [x, y] = ['20261204T060847Z.5bcb4d68ace21df3', '20261204T060847Z.00968d7ba771b8ff'];
  assert.notEqual(plan(answer(x)), plan(answer(y)));
  assert.equal(comparable(plan(answer(x))), comparable(plan(answer(y))));
  // the step's other lines, the plan's state and the other steps' answers are compared
  assert.notEqual(comparable(plan(answer(x))), comparable(plan(answer(y, 'refused'))));
  assert.notEqual(comparable(plan(answer(x))), comparable(plan(answer(y), 'failed')));
  assert.notEqual(comparable(plan(answer(x))), comparable(plan(answer(y), 'done', 'e30KCg==')));
  // raw answers still masked as before
  assert.equal(comparable(Buffer.from(answer(x), 'base64').toString('latin1')), comparable(Buffer.from(answer(y), 'base64').toString('latin1')));
});

test("a command's beat lines (one a second it ran) compare alike, and only they", () => {
  const exec = (beats: number, body = 'root\n'): string => `qmcp 1\n${'beat\n'.repeat(beats)}status ok\nexit 0\nstdout_total ${body.length}\n\n${body}`;
  assert.notEqual(exec(0), exec(2));
  assert.equal(normaliseBeats(exec(0)), normaliseBeats(exec(2)));
  assert.equal(comparable(exec(1)), comparable(exec(3)));
  // a beat line of the command's own output, or anywhere but the reply's first header lines, is compared
  assert.notEqual(comparable(exec(0, 'beat\n')), comparable(exec(0, 'root\n')));
  assert.notEqual(normaliseBeats('qmcp 1\nstatus ok\nbeat\n'), normaliseBeats('qmcp 1\nstatus ok\n'));
  // inside a plan step's answer too
  const plan = (beats: number): string => `${JSON.stringify({ plan: '1', state: 'done', steps: [{ operation: 'run', output: Buffer.from(exec(beats), 'latin1').toString('base64') }] })}\n`;
  assert.equal(comparable(plan(0)), comparable(plan(2)));
});
