// The host's end of the link to a qube's agent, against an agent that
// breaks the rules: the qube's root can take the agent over.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { PassThrough } from 'node:stream';
import { AgentLink, QubeCommand } from '../../src/sim/sandbox/link.js';
import { CHUNK, encodeFrame, F, FrameReader, WINDOW } from '../../src/sim/sandbox/mux.js';
import type { Frame } from '../../src/sim/sandbox/mux.js';
import { saveImage } from '../../src/sim/sandbox/sandboxes.js';

interface FakeAgent {
  readonly link: AgentLink;
  readonly broken: string[];
  send(type: number, id: number, payload?: Buffer): void;
  /** Frames the host sent, as they come. */
  onFrame(fn: (frame: Frame) => void): void;
}

function fakeAgent(): FakeAgent {
  const toAgent = new PassThrough();
  const fromAgent = new PassThrough();
  const broken: string[] = [];
  const link = new AgentLink(toAgent, fromAgent, (reason) => broken.push(reason));
  const reader = new FrameReader();
  let handler: (frame: Frame) => void = () => undefined;
  // Asynchronous, as a pipe is.
  toAgent.on('data', (chunk: Buffer) => {
    for (const frame of reader.push(chunk)) setImmediate(() => handler(frame));
  });
  return {
    link,
    broken,
    send: (type, id, payload) => fromAgent.write(encodeFrame(type, id, payload)),
    onFrame: (fn) => (handler = fn),
  };
}

const exit = (code: number): Buffer => Buffer.from(JSON.stringify({ code, signal: null }));

test('an image that comes bigger than its bound is not kept, even if the agent says it finished', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'qmcp-link-'));
  try {
    const image = join(dir, 'private.img');
    writeFileSync(image, 'state at start');
    const agent = fakeAgent();
    const limit = 4 * CHUNK;
    let sent = 0;
    let flight = 0;
    let id = 0;
    const pump = (): void => {
      while (flight < WINDOW && sent < 2 * limit) {
        agent.send(F.OUT, id, Buffer.alloc(CHUNK, 1));
        sent += CHUNK;
        flight += CHUNK;
      }
      if (sent >= 2 * limit) agent.send(F.EXIT, id, exit(0));
    };
    agent.onFrame((frame) => {
      if (frame.type === F.OPEN) {
        id = frame.id;
        pump();
      } else if (frame.type === F.ACK_OUT) {
        flight -= frame.payload.readUInt32BE(0);
        if (sent < 2 * limit) pump();
      }
    });
    const problem = await saveImage(agent.link, 'private', image, limit);
    assert.match(problem ?? '', /more than/);
    assert.equal(readFileSync(image, 'utf8'), 'state at start');
    assert.deepEqual(agent.broken, []);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('an agent that sends past its credit is cut off, and its commands end as killed', async () => {
  const agent = fakeAgent();
  agent.onFrame((frame) => {
    if (frame.type !== F.OPEN) return;
    for (let sent = 0; sent <= WINDOW + 2 * CHUNK; sent += CHUNK) agent.send(F.OUT, frame.id, Buffer.alloc(CHUNK));
  });
  // Nobody reads the command's output, so no credit goes back.
  const command = new QubeCommand(agent.link.open({ kind: 'run', argv: ['x'], env: {}, cwd: '/' }));
  const [code, signal] = await new Promise<[number | null, string | null]>((resolve) => command.once('exit', (c: number | null, sig: string | null) => resolve([c, sig])));
  assert.equal(code, null);
  assert.equal(signal, 'SIGKILL');
  assert.match(agent.broken.join(), /overran its window/);
  assert.match(agent.link.broken ?? '', /overran/);
});

test('a malformed exit report reads as a failure; an oversized frame breaks the link', async () => {
  const agent = fakeAgent();
  agent.onFrame((frame) => {
    if (frame.type === F.OPEN) agent.send(F.EXIT, frame.id, Buffer.from('{"code": "0; rm -rf /", "signal": "SIGNOPE"}'));
  });
  const report = await agent.link.open({ kind: 'halt' }).exited;
  assert.equal(report.code, 125);
  assert.equal(report.signal, null);
  const raw = new PassThrough();
  const broken: string[] = [];
  const link = new AgentLink(new PassThrough(), raw, (reason) => broken.push(reason));
  const channel = link.open({ kind: 'halt' });
  // A header announcing a frame larger than any the host accepts.
  const header = Buffer.alloc(9);
  header.writeUInt32BE(0xffffffff, 0);
  raw.write(header);
  const info = await channel.exited;
  assert.equal(info.signal, 'SIGKILL');
  assert.match(broken.join(), /unreadable/);
});
