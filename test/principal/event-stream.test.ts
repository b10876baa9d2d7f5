/** The per-stream ring and the cursor codec on their own. */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { CursorCodec } from '../../src/principal/events/cursor.js';
import { EventStream, type EventRow } from '../../src/principal/events/stream.js';

const row = (n: number): EventRow => ({ event: 'domain-start', qube: `ai-${n}`, class: 'AppVM', time: new Date(n).toISOString() });
const subjects = (rows: EventRow[]): string[] => rows.map((r) => r.qube);

test('a reader that falls behind the ring is told it missed events, then goes on from the oldest kept', () => {
  const s = new EventStream('00', 3, 0);
  s.append([row(1), row(2)], false);
  assert.deepEqual(s.read(0, 10), { events: [row(1), row(2)], next: 2, missed: false });
  s.append([row(3), row(4), row(5)], false);
  const behind = s.read(0, 10);
  assert.deepEqual([subjects(behind.events), behind.next, behind.missed], [['ai-3', 'ai-4', 'ai-5'], 5, true]);
  const caughtUp = s.read(2, 10);
  assert.deepEqual([subjects(caughtUp.events), caughtUp.missed], [['ai-3', 'ai-4', 'ai-5'], false]);
});

test('a failed or truncated window leaves a gap the next read reports once', () => {
  const s = new EventStream('00', 10, 0);
  s.append([row(1)], false);
  s.append([], true);
  s.append([row(2)], true);
  const r = s.read(1, 10);
  assert.deepEqual([subjects(r.events), r.next, r.missed], [['ai-2'], 4, true]);
  assert.equal(s.read(4, 10).missed, false);
});

test('reads are capped per poll and acknowledged items are dropped', () => {
  const s = new EventStream('00', 10, 0);
  s.append([row(1), row(2), row(3)], false);
  const r = s.read(0, 2);
  assert.deepEqual([subjects(r.events), r.next], [['ai-1', 'ai-2'], 2]);
  s.acknowledge(2);
  assert.deepEqual(subjects(s.read(2, 10).events), ['ai-3']);
  // a cursor older than what was acknowledged says so
  assert.equal(s.read(0, 10).missed, true);
});

test('a waiting reader wakes on new items and on close', async () => {
  const s = new EventStream('00', 10, 0);
  const signal = new AbortController().signal;
  const woken = s.waitForMore(0, 60_000, signal);
  s.append([row(1)], false);
  await woken;
  const closing = s.waitForMore(1, 60_000, signal);
  s.close();
  await closing;
  assert.equal(s.isClosed, true);
});

test('cursors round-trip and reject any edit or another key', () => {
  const codec = new CursorCodec();
  const stream = CursorCodec.newStreamId();
  const c = codec.encode({ stream, count: 42 });
  assert.match(c, /^[A-Za-z0-9_-]+$/);
  assert.deepEqual(codec.decode(c), { stream, count: 42 });
  const bytes = Buffer.from(c, 'base64url');
  for (let i = 0; i < bytes.length; i++) {
    const edited = Buffer.from(bytes);
    edited[i] = (edited[i] as number) ^ 1;
    assert.equal(codec.decode(edited.toString('base64url')), null, `byte ${i}`);
  }
  assert.equal(new CursorCodec().decode(c), null);
  assert.equal(codec.decode(''), null);
  assert.equal(codec.decode(c.slice(0, -1)), null);
});
