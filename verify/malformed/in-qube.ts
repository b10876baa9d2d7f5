/**
 * The in-qube services' own checks of their requests. The policy lets any
 * request reach a sandbox qube; the service there refuses a malformed one
 * (`status error`, `bad_request` or `bad_version`) and runs nothing. Each
 * near miss below breaks one header key of an otherwise well-formed
 * request; the services run here, as POSIX sh, the way test/qube runs them.
 */
import { spawn } from 'node:child_process';
import { existsSync } from 'node:fs';
import { chmod, mkdir, mkdtemp, rm, symlink, writeFile } from 'node:fs/promises';
import { tmpdir, userInfo } from 'node:os';
import { join } from 'node:path';

/** The repository's src/qube, from dist/verify/malformed. */
export const QUBE_SERVICES = join(import.meta.dirname, '..', '..', '..', 'src', 'qube');

const b64 = (s: string): string => Buffer.from(s).toString('base64');
const COUNTS = ['-1', 'x', '1e3', '1234567890123456', ''];

/** Lines that break one key, by key. */
const BROKEN: Readonly<Record<string, readonly string[]>> = {
  user: ['Root', '-user', 'us/er', 'a'.repeat(33), '1user', ''],
  cwd: [b64('relative'), b64(''), b64('/a\0b'), b64(`/${'a'.repeat(4096)}`), '!!!'],
  env: [b64('NOEQUALS'), b64('=value'), b64('1A=x'), b64('A-B=x'), b64('A B=x'), b64('A=x\0y'), b64(`A=${'x'.repeat(32768)}`), '!!!'],
  timeout: COUNTS,
  limit: COUNTS,
  offset: COUNTS,
  path: ['!!!'],
  port: ['0', '08080', '65536', '123456', '-1', 'x', ''],
  local: ['1023', '80', '65536', '0', 'x', ''],
};

interface Service {
  readonly keys: readonly string[];
  /** The well-formed request's header lines, touching MARKER when it runs; the broken key's line goes after them. */
  readonly base: (marker: string) => string[];
  /** The script it is installed from, when another's (it acts on the name it is called by); its qrexec argument. */
  readonly script?: string;
  readonly argument?: string;
}

const SERVICES: Readonly<Record<string, Service>> = {
  'qmcp.Exec': {
    keys: ['user', 'cwd', 'env', 'timeout', 'limit'],
    base: (marker) => [`shell ${b64(`touch '${marker}'`)}`, 'timeout 0', `user ${userInfo().username}`],
  },
  'qmcp.ReadFile': { keys: ['limit', 'offset', 'path'], base: () => [`path ${b64('/etc/hostname')}`] },
  'qmcp.ListDir': { keys: ['limit', 'path'], base: () => [`path ${b64('/etc')}`] },
  'qmcp.Stat': { keys: ['path'], base: () => [`path ${b64('/etc/hostname')}`] },
  // what it runs first is qrexec-client-vm, which here touches the marker
  'qmcp.PortForward': { keys: ['port', 'local'], base: () => ['port 8080', 'local 9080'], script: 'qmcp.Job', argument: 'ai-peer' },
};

/** The in-qube services the check covers. */
export const IN_QUBE_SERVICES: readonly string[] = Object.keys(SERVICES);

export interface InQubeCase {
  readonly what: string;
  readonly request: Buffer;
}

/** Near misses of SERVICE's requests: each key broken, two of a repeated key, a version, no header end. */
function cases(service: Service, marker: string): InQubeCase[] {
  const base = service.base(marker);
  const out: InQubeCase[] = [];
  const message = (lines: readonly string[], version = '1'): Buffer => Buffer.from(`qmcp ${version}\n${lines.join('\n')}\n\n`);
  for (const key of service.keys) for (const value of BROKEN[key] ?? []) out.push({ what: `${key} ${value.slice(0, 40)}`, request: message([...base, `${key} ${value}`]) });
  if (service.keys.includes('env')) out.push({ what: '65 env entries', request: message([...base, ...Array.from({ length: 65 }, (_, i) => `env ${b64(`V${i}=x`)}`)]) });
  out.push({ what: 'version 2', request: message(base, '2') });
  out.push({ what: 'no header end', request: Buffer.from(`qmcp 1\n${base.join('\n')}\n`) });
  return out;
}

/** Runs one request through the service script; its stdout. */
function runService(script: string, request: Buffer, cwd: string, env: Readonly<Record<string, string>> = {}): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    const shell = existsSync('/bin/dash') ? '/bin/dash' : '/bin/sh';
    const child = spawn(shell, [script], { cwd, env: { PATH: process.env['PATH'] ?? '/usr/bin:/bin', ...env }, stdio: ['pipe', 'pipe', 'ignore'] });
    const out: Buffer[] = [];
    child.stdout.on('data', (c: Buffer) => out.push(c));
    child.on('error', reject);
    child.on('close', () => resolve(Buffer.concat(out)));
    child.stdin.on('error', () => undefined);
    child.stdin.end(request);
  });
}

const REFUSED = /^qmcp 1\nstatus error\nerror (bad_request|bad_version)\n/;

export interface InQubeFinding {
  readonly service: string;
  readonly what: string;
  readonly problem: string;
}

/**
 * Every near miss of SERVICE, through the script in DIR: each must be
 * refused and run nothing. A control first: the well-formed request runs.
 */
export async function attackInQube(service: string, dir = QUBE_SERVICES): Promise<{ count: number; findings: InQubeFinding[] }> {
  const spec = SERVICES[service];
  if (spec === undefined) throw new Error(`no in-qube grammar for ${service}`);
  const scratch = await mkdtemp(join(tmpdir(), 'qmcp-malformed-qube-'));
  const marker = join(scratch, 'ran');
  const findings: InQubeFinding[] = [];
  try {
    let script = join(dir, service);
    const env: Record<string, string> = {};
    if (spec.script !== undefined) {
      // called by its own name, with a qrexec-client-vm that marks the call, and jobs kept here
      script = join(scratch, service);
      await symlink(join(dir, spec.script), script);
      const bin = join(scratch, 'bin');
      await mkdir(bin);
      await writeFile(join(bin, 'qrexec-client-vm'), `#!/bin/sh\ntouch '${marker}'\nexit 125\n`);
      await chmod(join(bin, 'qrexec-client-vm'), 0o755);
      // the job runs as the qube's default user: here, whoever runs the check
      await writeFile(join(bin, 'qubesdb-read'), `#!/bin/sh\necho '${userInfo().username}'\n`);
      await chmod(join(bin, 'qubesdb-read'), 0o755);
      Object.assign(env, { PATH: `${bin}:${process.env['PATH'] ?? '/usr/bin:/bin'}`, QMCP_JOBS_DIR: join(scratch, 'jobs'), QREXEC_SERVICE_ARGUMENT: spec.argument ?? '' });
    }
    const control = await runService(script, Buffer.from(`qmcp 1\n${spec.base(marker).join('\n')}\n\n`), scratch, env);
    if (!/^qmcp 1\n(beat\n)*status ok\n/.test(control.toString('latin1'))) findings.push({ service, what: 'control', problem: 'the well-formed request was not answered' });
    if ((service === 'qmcp.Exec' || spec.script !== undefined) && !existsSync(marker)) findings.push({ service, what: 'control', problem: 'the well-formed command did not run' });
    await rm(marker, { force: true });
    const all = cases(spec, marker);
    for (const c of all) {
      const reply = (await runService(script, c.request, scratch, env)).toString('latin1');
      if (!REFUSED.test(reply)) findings.push({ service, what: c.what, problem: `answered ${JSON.stringify(reply.slice(0, 120))} instead of bad_request` });
      if (existsSync(marker)) {
        findings.push({ service, what: c.what, problem: 'the command ran' });
        await rm(marker, { force: true });
      }
    }
    return { count: all.length, findings };
  } finally {
    await rm(scratch, { recursive: true, force: true });
  }
}
