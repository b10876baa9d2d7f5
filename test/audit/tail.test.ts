import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { appendFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import type { TailLine } from '../../src/dom0/audit/index.js';
import { formatTailJson, formatTailLine, quote, readTail } from '../../src/dom0/audit/index.js';
import { fill, open, tempRoot } from './helpers.js';

const HOSTILE = 'ai-\u001b[31mred\u001b[0m\r\n#99 fake\u202egnp.exe\u00e9\u{1f600}"\\\u0000\u007f\u009b';

test('quote leaves printable ASCII and escapes everything else', () => {
  assert.equal(quote('ai-work_1.x'), '"ai-work_1.x"');
  assert.equal(
    quote(HOSTILE),
    String.raw`"ai-\x1b[31mred\x1b[0m\x0d\x0a#99 fake\u{202e}gnp.exe\u{00e9}\u{1f600}\"\\\x00\x7f\u{009b}"`,
  );
});

test('tail shows agent strings escaped, in text and in JSON', async () => {
  const t = await tempRoot();
  try {
    const log = open(t.root);
    await fill(log, 1);
    await log.refusal({ principal: 'mcp-control', operation: 'qmcp.Start', qubes: [HOSTILE], keys: [HOSTILE], detail: HOSTILE });
    const lines = await readTail(t.root, 2);
    assert.deepEqual(lines.map((l) => l.entry?.seq), [2, 3]);
    assert.deepEqual(lines[1]?.entry?.qubes, [HOSTILE]);
    for (const l of lines) {
      for (const text of [formatTailLine(l), formatTailJson(l)]) {
        assert.match(text, /^[\x20-\x7e]*$/, text);
      }
      assert.deepEqual(JSON.parse(formatTailJson(l)), l.entry);
    }
    assert.ok(formatTailLine(lines[1] as TailLine).includes(`qubes=[${quote(HOSTILE)}]`));
  } finally {
    await t.done();
  }
});

test('tail reads back across rotated files and shows unreadable lines escaped', async () => {
  const t = await tempRoot();
  try {
    await fill(open(t.root, { maxFileBytes: 1000 }), 6);
    await appendFile(t.log, `{"junk":"\u001b[2J"}\n`);
    const lines = await readTail(t.root, 12);
    assert.equal(lines.length, 12);
    assert.deepEqual(lines.slice(0, 11).map((l) => l.entry?.seq), [2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12]);
    const last = lines[11];
    assert.equal(last?.entry, null);
    assert.match(formatTailLine(last as TailLine), /^\?\? .* unreadable \(not a JSON line\): .*\\x1b\[2J/);
    assert.equal((await readTail(t.root, 0)).length, 0);
  } finally {
    await t.done();
  }
});

/** Runs an audit command the way main does, mapping a usage error to status 2. */
function cli(args: string[], root: string): Promise<{ code: number | null; out: string }> {
  const url = pathToFileURL(join(import.meta.dirname, '..', '..', 'src', 'cli', 'commands', 'dom0-audit.js')).href;
  const cmd = pathToFileURL(join(import.meta.dirname, '..', '..', 'src', 'cli', 'command.js')).href;
  const script = `
const m = await import(${JSON.stringify(url)});
const { UsageError } = await import(${JSON.stringify(cmd)});
const [which, ...rest] = process.argv.slice(1);
const command = which === 'verify' ? m.auditVerifyCommand : m.auditTailCommand;
try { process.exitCode = await command.run(rest); }
catch (err) { if (err instanceof UsageError) process.exitCode = 2; else throw err; }
`;
  return new Promise((done, fail) => {
    const child = spawn(process.execPath, ['--input-type=module', '-e', script, ...args], { cwd: root, stdio: ['ignore', 'pipe', 'ignore'] });
    let out = '';
    child.stdout.on('data', (d: Buffer) => (out += d.toString('utf8')));
    child.on('error', fail);
    child.on('close', (code) => done({ code, out }));
  });
}

test('the CLI exits 0 on a valid chain, 1 on a broken one, 2 on bad usage', async () => {
  const t = await tempRoot();
  try {
    const log = open(t.root);
    await fill(log, 2);
    await log.refusal({ principal: 'mcp-control', operation: 'qmcp.Start', qubes: [HOSTILE] });
    const ok = await cli(['verify', '--root', t.root], t.root);
    assert.equal(ok.code, 0);
    assert.match(ok.out, /chain valid/);
    const json = await cli(['verify', '--root', t.root, '--json'], t.root);
    assert.equal(json.code, 0);
    assert.equal((JSON.parse(json.out) as { entries: number }).entries, 5);

    const tail = await cli(['tail', '--root', t.root, '-n', '1'], t.root);
    assert.equal(tail.code, 0);
    assert.match(tail.out, /^#5 .* refusal .*qubes=\["ai-\\x1b\[31m/);
    assert.match(tail.out, /^[\x20-\x7e\n]*$/);
    const tailJson = await cli(['tail', '--root', t.root, '--json'], t.root);
    assert.equal(tailJson.out.trim().split('\n').length, 5);

    await writeFile(t.log, '');
    const broken = await cli(['verify', '--root', t.root], t.root);
    assert.equal(broken.code, 1);
    assert.match(broken.out, /BROKEN[\s\S]*tail truncated/);

    assert.equal((await cli(['verify', '--root', t.root, '--bogus'], t.root)).code, 2);
    assert.equal((await cli(['verify', 'extra'], t.root)).code, 2);
    assert.equal((await cli(['tail', '--root', t.root, '-n', 'ten'], t.root)).code, 2);
  } finally {
    await t.done();
  }
});
