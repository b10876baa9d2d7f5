/**
 * qube_run's shaped output, its user, cwd and env, and paging with
 * qube_read_file, through MCP against the real in-qube services (run here
 * by the fake qrexec for the qube `ai-real`).
 */
import assert from 'node:assert/strict';
import { readFile, rm } from 'node:fs/promises';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import * as z from 'zod';
import { Client } from '@modelcontextprotocol/client';
import { InMemoryTransport, type CallToolResult } from '@modelcontextprotocol/server';
import { shapeStream } from '../../src/principal/output-shape.js';
import { QrexecRunner } from '../../src/principal/qrexec.js';
import { ok, TEXT_JSON_MAX } from '../../src/principal/results.js';
import { createServer } from '../../src/principal/server.js';
import { commandFields, DEFAULT_OUTPUT_LIMIT } from '../../src/principal/tools/inqube.js';
import { weakened } from '../plans/helpers.js';
import { makeFakeQrexec, type FakeQrexec } from './fake-qrexec.js';

const FIVE_MB = 5_000_000;
/** What a result carries besides the output itself: field names, numbers, the marker, the text summary. */
const CONSTANT = 4096;

type Run = Record<string, unknown> & { stdout: string; stdout_bytes: number; stdout_path: string | null; stdout_truncated: boolean };

describe('shaped output and the command context, through MCP', () => {
  let fake: FakeQrexec;
  let client: Client;
  const saved: string[] = [];
  before(async () => {
    fake = await makeFakeQrexec();
    const [serverSide, clientSide] = InMemoryTransport.createLinkedPair();
    await createServer(new QrexecRunner({ client: fake.client, env: fake.env })).connect(serverSide);
    client = new Client({ name: 'test', version: '0' });
    await client.connect(clientSide);
  });
  after(async () => {
    await client.close();
    await fake.cleanup();
    for (const dir of saved) await rm(dir, { recursive: true, force: true });
  });

  const call = async (name: string, args: Record<string, unknown>): Promise<CallToolResult> =>
    (await client.callTool({ name, arguments: args })) as CallToolResult;
  const run = async (args: Record<string, unknown>): Promise<Run> => {
    const r = await call('qube_run', { qube: 'ai-real', ...args });
    assert.equal(r.isError, undefined, JSON.stringify(r.content));
    const s = r.structuredContent as Run;
    if (s.stdout_path !== null) saved.push(s.stdout_path.replace(/\/stdout$/, ''));
    return s;
  };

  it('sends a 5 MB output once, within the limit plus a constant, and the whole of it reads back in pages', async () => {
    const r = await call('qube_run', { qube: 'ai-real', shell: `head -c ${FIVE_MB} /dev/zero | tr '\\0' x` });
    const s = r.structuredContent as Run;
    assert.ok(s.stdout_path !== null);
    saved.push(s.stdout_path.replace(/\/stdout$/, ''));
    const sent = Buffer.byteLength(JSON.stringify(r));
    assert.ok(sent <= DEFAULT_OUTPUT_LIMIT + CONSTANT, `${sent} bytes sent`);
    assert.deepEqual([s.stdout_bytes, s.stdout_lines, s.stdout_truncated], [FIVE_MB, 1, true]);
    assert.match(s.stdout, new RegExp(`^x{${DEFAULT_OUTPUT_LIMIT / 2}}\\n\\[\\.\\.\\. ${FIVE_MB - DEFAULT_OUTPUT_LIMIT} bytes omitted; all of it is in ${s.stdout_path}, from byte ${DEFAULT_OUTPUT_LIMIT / 2} on`));
    assert.match(s.stdout, new RegExp(`\\.\\.\\.\\]\\nx{${DEFAULT_OUTPUT_LIMIT / 2}}$`));
    let total = 0;
    let pages = 0;
    for (let offset = 0, more = true; more; pages++) {
      const page = (await call('qube_read_file', { qube: 'ai-real', path: s.stdout_path, offset, length: 1024 * 1024 })).structuredContent as {
        size: number;
        length: number;
        truncated: boolean;
        content: string;
      };
      assert.equal(page.size, FIVE_MB);
      assert.ok(/^x*$/.test(page.content));
      total += page.length;
      offset += page.length;
      more = page.truncated;
    }
    assert.deepEqual([total, pages], [FIVE_MB, 5]);
  });

  it('splits no character at the cut, and says where the rest is', async () => {
    const s = await run({ shell: "i=0; while [ $i -lt 2000 ]; do printf 'é€'; i=$((i+1)); done", output_limit: 101 });
    assert.equal(s['stdout_encoding'], 'utf8');
    const [head, tail] = s.stdout.split(/\n\[\.\.\. \d+ bytes omitted[^\]]*\]\n/);
    assert.ok(head !== undefined && tail !== undefined && /^(é€)*é?$/.test(head) && /^€?(é€)*$/.test(tail), s.stdout);
    const omitted = Number(/\[\.\.\. (\d+) bytes/.exec(s.stdout)?.[1]);
    assert.equal(Buffer.byteLength(head) + omitted + Buffer.byteLength(tail), 2000 * 5);
  });

  it('runs as the default user in its home unless user and cwd say otherwise, with env', async () => {
    const s = await run({ shell: 'id -un; pwd; printf %s "$GREETING"', env: { GREETING: 'hi there' } });
    const [user, cwd, greeting] = s.stdout.split('\n');
    assert.equal(user, (await import('node:os')).userInfo().username);
    assert.ok(cwd !== undefined && cwd.length > 0);
    assert.equal(greeting, 'hi there');
    const there = await run({ argv: ['pwd'], cwd: '/', user: (await import('node:os')).userInfo().username });
    assert.equal(there.stdout, '/\n');
  });

  it('lists a directory and stats a path, within the entry limit', async () => {
    const dir = (await run({ argv: ['mktemp', '-d'] })).stdout.trim();
    saved.push(dir);
    await run({ argv: ['sh', '-c', 'cd "$1" && printf hello > a && mkdir d && ln -s a l && touch b c', 'sh', dir] });
    const listed = (await call('qube_list_dir', { qube: 'ai-real', path: dir, limit: 3 })).structuredContent as {
      total: number;
      truncated: boolean;
      entries: { basename: string; type: string; size: number; mtime: string }[];
    };
    assert.deepEqual([listed.total, listed.truncated], [5, true]);
    assert.deepEqual(listed.entries.map((e) => [e.basename, e.type]), [['a', 'file'], ['b', 'file'], ['c', 'file']]);
    assert.match(listed.entries[0]?.mtime ?? '', /^\d{4}-\d\d-\d\dT/);
    const link = (await call('qube_stat', { qube: 'ai-real', path: `${dir}/l` })).structuredContent as { type: string; link_target: string | null };
    assert.deepEqual([link.type, link.link_target], ['link', 'a']);
    const missing = await call('qube_list_dir', { qube: 'ai-real', path: `${dir}/none` });
    assert.deepEqual([missing.isError, (missing.content[0] as { text: string }).text], [true, 'No such file or directory inside the qube.']);
    const file = await call('qube_list_dir', { qube: 'ai-real', path: `${dir}/a` });
    assert.equal((file.content[0] as { text: string }).text, 'The path is not a directory.');
  });

  it('refuses malformed user, cwd and env before anything leaves', async () => {
    const log = join(fake.dir, 'calls.log');
    const before = await readFile(log, 'utf8').catch(() => '');
    for (const [klass, values] of Object.entries(MALFORMED)) {
      for (const value of values) {
        const r = await call('qube_run', { qube: 'ai-real', argv: ['true'], [klass]: value });
        assert.equal(r.isError, true, `${klass} ${JSON.stringify(value).slice(0, 60)}`);
      }
    }
    assert.equal(await readFile(log, 'utf8').catch(() => ''), before);
  });
});

/** One list per malformed class of the principal's shape check. */
const MALFORMED: Readonly<Record<string, readonly unknown[]>> = {
  user: ['Root', '-user', 'us/er', 'a'.repeat(33), '1user', '', 'ro ot'],
  cwd: ['relative', '', '/a\0b', `/${'a'.repeat(4096)}`],
  env: [{ '1A': 'x' }, { 'A-B': 'x' }, { '': 'x' }, { 'A B': 'x' }, { A: 'x\0y' }, { A: 'x'.repeat(32769) }, Object.fromEntries(Array.from({ length: 65 }, (_, i) => [`V${i}`, 'x']))],
};

/** Whether FIELDS refuse every malformed value of CLASS. */
function refusesAll(fields: typeof commandFields, klass: string): boolean {
  const schema = z.strictObject(fields);
  return (MALFORMED[klass] ?? []).every((value) => !schema.safeParse({ argv: ['true'], [klass]: value }).success);
}

describe("the principal's shape check", () => {
  it('refuses every malformed class', () => {
    for (const klass of Object.keys(MALFORMED)) assert.ok(refusesAll(commandFields, klass), klass);
  });

  it('without one of its checks is caught', async () => {
    const weakenings: [string, string][] = [
      ['user', ".regex(USER_NAME, 'a user name')"],
      ['cwd', ".regex(/^\\/[^\\0]*$/, 'an absolute path without NUL bytes')"],
      ['env', ".regex(ENV_NAME, 'a shell variable name')"],
      ['env', '.refine((e) => Object.keys(e).length <= EXEC_MAX_ENV, `at most ${EXEC_MAX_ENV} variables`)'],
    ];
    for (const [klass, guard] of weakenings) {
      const mod = (await import(weakened('principal/tools/inqube.js', guard, ''))) as { commandFields: typeof commandFields };
      assert.equal(refusesAll(mod.commandFields, klass), false, guard);
    }
  });
});

describe('a result travels once', () => {
  const big = { stdout: 'x'.repeat(FIVE_MB), exit_status: 0, stdout_path: '/tmp/qmcp-output.a/stdout' };
  const sent = (r: ReturnType<typeof ok>): number => Buffer.byteLength(JSON.stringify(r));

  it('repeats small JSON as text, and summarises large JSON', () => {
    const small = ok({ qube: 'ai-work', state: 'Running' });
    assert.deepEqual(JSON.parse((small.content[0] as { text: string }).text), small.structuredContent);
    const large = ok(big);
    assert.ok(sent(large) <= FIVE_MB + CONSTANT);
    const summary = JSON.parse((large.content[0] as { text: string }).text) as Record<string, unknown>;
    assert.deepEqual(summary, { stdout: `[${FIVE_MB} bytes, in structuredContent]`, exit_status: 0, stdout_path: '/tmp/qmcp-output.a/stdout' });
    const many = ok({ qubes: Array.from({ length: 1000 }, (_, i) => ({ qube: `ai-${i}` })) });
    assert.ok(Buffer.byteLength((many.content[0] as { text: string }).text) <= TEXT_JSON_MAX);
  });

  it('a result that repeats its JSON whole is caught', async () => {
    const mod = (await import(weakened('principal/results.js', 'if (bytes > TEXT_JSON_MAX) {', 'if (false) {'))) as { ok: typeof ok };
    assert.ok(sent(mod.ok(big)) > FIVE_MB + CONSTANT);
  });

  it('shapes the edges of a stream: at the limit whole, one over cut with the marker', () => {
    const whole = shapeStream({ head: Buffer.from('12345'), tail: Buffer.alloc(0), total: 5, lines: 1 }, null, 'stdout');
    assert.deepEqual([whole.text, whole.truncated, whole.path], ['12345', false, null]);
    const cut = shapeStream({ head: Buffer.from('123'), tail: Buffer.from('56'), total: 6, lines: 1 }, '/tmp/qmcp-output.b', 'stdout');
    assert.equal(cut.text, '123\n[... 1 bytes omitted; all of it is in /tmp/qmcp-output.b/stdout, from byte 3 on (qube_read_file with offset) ...]\n56');
    const binary = shapeStream({ head: Buffer.from([0xff, 0]), tail: Buffer.from([1, 0xfe]), total: 10, lines: 0 }, null, 'stderr');
    assert.deepEqual([binary.encoding, binary.text], ['base64', '/wA=\n[... 6 bytes omitted ...]\nAf4=']);
    const empty = shapeStream({ head: Buffer.alloc(0), tail: Buffer.alloc(0), total: 0, lines: 0 }, null, 'stdout');
    assert.deepEqual([empty.text, empty.truncated, empty.bytes], ['', false, 0]);
  });
});
