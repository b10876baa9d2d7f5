/**
 * `npm run build` while something runs from dist (the README's demo in one
 * shell, `npm test` in another): the running process finds every module at
 * every moment, files of deleted sources do not survive, and a failed compile
 * leaves dist as it was. Runs the repository's own build scripts on a small
 * project, so the check does not rebuild the checkout under the suite.
 */
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { copyFileSync, existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';

const repo = join(import.meta.dirname, '..', '..', '..');

// Imports a fresh copy of later.js every few milliseconds until stdin says stop.
const MAIN = `
let loads = 0;
let failures = 0;
let stop = false;
const seen = new Set<string>();
process.stdin.on('data', () => (stop = true));
console.log('ready');
while (!stop) {
  try {
    const m = await import(\`./later.js?\${loads}\`);
    if (!seen.has(m.later)) console.log(\`saw \${m.later}\`);
    seen.add(m.later);
  } catch (err) {
    failures++;
    if (failures === 1) console.log(\`failed \${(err as NodeJS.ErrnoException).code ?? String(err)}\`);
  }
  loads++;
  await new Promise((r) => setTimeout(r, 5));
}
console.log(JSON.stringify({ loads, failures }));
`;

function project(): string {
  const dir = mkdtempSync(join(tmpdir(), 'qmcp-build-'));
  const pkg = JSON.parse(readFileSync(join(repo, 'package.json'), 'utf8')) as { scripts: Record<string, string> };
  const scripts: Record<string, string> = {};
  for (const name of ['prebuild', 'build', 'postbuild']) if (pkg.scripts[name] !== undefined) scripts[name] = pkg.scripts[name];
  writeFileSync(join(dir, 'package.json'), JSON.stringify({ name: 'build-check', private: true, type: 'module', scripts }));
  if (existsSync(join(repo, 'scripts', 'build.js'))) {
    mkdirSync(join(dir, 'scripts'));
    copyFileSync(join(repo, 'scripts', 'build.js'), join(dir, 'scripts', 'build.js'));
  }
  symlinkSync(join(repo, 'node_modules'), join(dir, 'node_modules'));
  writeFileSync(
    join(dir, 'tsconfig.json'),
    JSON.stringify({
      compilerOptions: { target: 'ES2022', module: 'NodeNext', moduleResolution: 'NodeNext', strict: true, types: ['node'], skipLibCheck: true, outDir: 'dist', rootDir: '.' },
      include: ['src/**/*.ts'],
    }),
  );
  mkdirSync(join(dir, 'src'));
  writeFileSync(join(dir, 'src', 'main.ts'), MAIN);
  writeFileSync(join(dir, 'src', 'later.ts'), "export const later = 'v1';\n");
  writeFileSync(join(dir, 'src', 'gone.ts'), 'export const gone = 1;\n');
  return dir;
}

function build(dir: string): Promise<{ status: number | null; output: string }> {
  return new Promise((resolve, reject) => {
    const child = spawn('npm', ['run', 'build'], { cwd: dir, stdio: ['ignore', 'pipe', 'pipe'] });
    let output = '';
    child.stdout.on('data', (c: Buffer) => (output += c.toString()));
    child.stderr.on('data', (c: Buffer) => (output += c.toString()));
    child.on('error', reject);
    child.on('close', (status) => resolve({ status, output }));
  });
}

test('npm run build: a process loading modules from dist meanwhile never misses one; stale files go; a failed compile changes nothing', async () => {
  const dir = project();
  try {
    const first = await build(dir);
    assert.equal(first.status, 0, first.output);
    const live = spawn(process.execPath, [join(dir, 'dist', 'src', 'main.js')], { stdio: ['pipe', 'pipe', 'pipe'] });
    let out = '';
    const waiters: (() => void)[] = [];
    live.stdout.on('data', (c: Buffer) => {
      out += c.toString();
      for (const w of waiters.splice(0)) w();
    });
    live.stderr.on('data', (c: Buffer) => (out += c.toString()));
    const exited = new Promise<number | null>((r) => live.once('exit', (code) => r(code)));
    const until = (text: string): Promise<void> =>
      new Promise((resolve, reject) => {
        const look = (): void => {
          if (out.includes(text)) resolve();
          else if (live.exitCode !== null) reject(new Error(`runner exited:\n${out}`));
          else waiters.push(look);
        };
        void exited.then(() => setImmediate(look));
        look();
      });
    try {
      await until('saw v1');

      writeFileSync(join(dir, 'src', 'later.ts'), "export const later = 'v2';\n");
      rmSync(join(dir, 'src', 'gone.ts'));
      writeFileSync(join(dir, 'dist', 'src', 'orphan.js'), 'export {};\n');
      const second = await build(dir);
      assert.equal(second.status, 0, second.output);
      await until('saw v2');
      live.stdin.end('stop\n');
      assert.equal(await exited, 0, out);
      const summary = JSON.parse(out.trim().split('\n').at(-1) as string) as { loads: number; failures: number };
      assert.equal(summary.failures, 0, `imports failed during the rebuild:\n${out}`);
      assert.ok(summary.loads > 1);
    } finally {
      if (live.exitCode === null) live.kill('SIGKILL');
    }
    assert.equal(existsSync(join(dir, 'dist', 'src', 'gone.js')), false, 'the output of a deleted source survived');
    assert.equal(existsSync(join(dir, 'dist', 'src', 'orphan.js')), false, 'a file no source produces survived');

    writeFileSync(join(dir, 'src', 'later.ts'), 'export const later: number = "v3";\n');
    const broken = await build(dir);
    assert.notEqual(broken.status, 0);
    assert.match(readFileSync(join(dir, 'dist', 'src', 'later.js'), 'utf8'), /v2/);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});
