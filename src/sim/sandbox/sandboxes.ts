// Simulated qubes as bubblewrap sandboxes: their power lifecycle, and
// running commands and qrexec services inside them.
import { spawn } from 'node:child_process';
import type { ChildProcess } from 'node:child_process';
import { existsSync, lstatSync, readlinkSync } from 'node:fs';
import { lstat, mkdir, rm } from 'node:fs/promises';
import { constants } from 'node:os';
import { join } from 'node:path';
import type { Readable, Writable } from 'node:stream';
import { BWRAP_MISSING_MESSAGE, findBwrap, SandboxError, SandboxUnavailableError } from './bwrap.js';
import { HOST_SYSTEM_DIRS, qubeLayout, ROOT_LAYER_MOUNTS } from './layout.js';
import { commitLayer, copyLayer, nameRoot, seedRootLayer } from './root-layer.js';

/** What the sandbox layer needs to know about a qube. */
export interface QubeShape {
  readonly klass: 'TemplateVM' | 'StandaloneVM' | 'AppVM' | 'DispVM' | 'AdminVM' | string;
  /** The template (for a DispVM, its disposable template). */
  readonly template?: string | null;
}

export interface SandboxOptions {
  /** The simulator's state directory. */
  readonly dir: string;
  /** Looks up a qube's class and template; undefined for an unknown qube. */
  readonly lookup: (name: string) => QubeShape | undefined;
  /** Share the host's network (demo only); no network otherwise. */
  readonly network?: boolean;
  /** The per-qube qrexec socket on the host; default DIR/qrexec/NAME.sock. */
  readonly qrexecSocket?: (name: string) => string;
  /**
   * Where qrexec-client-vm comes from: a package root holding
   * bin/qrexec-client-vm, package.json and dist/src/sim/qrexec/, which are
   * bound read-only under /run/qmcp so that the script's relative imports
   * resolve; default: this package.
   */
  readonly clientRoot?: string;
  /** The in-qube services (src/qube). */
  readonly servicesDir?: string;
  /** The bwrap executable; default: found on PATH. */
  readonly bwrap?: string | null;
}

/** Inside a qube: where its qrexec socket and the simulator's tools appear. */
export const QREXEC_SOCKET_IN_QUBE = '/run/qmcp/qrexec.sock';
export const TOOLS_DIR_IN_QUBE = '/run/qmcp/bin';
const IN_QUBE_PATH = `${TOOLS_DIR_IN_QUBE}:/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin`;

export interface SpawnInQubeOptions {
  readonly env?: Readonly<Record<string, string>>;
  readonly user?: string;
  readonly cwd?: string;
}

/** One call of a qrexec service whose target is a qube. */
export interface ServiceCall {
  readonly qube: string;
  readonly service: string;
  /** The argument after `+` ('' for none). */
  readonly argument: string;
  readonly source: string;
  readonly user?: string;
  readonly stdin: Readable | null;
  readonly stdout: Writable;
  readonly stderr: Writable;
}

/** What the qrexec router calls to run a service inside a qube. */
export interface QubeServiceHost {
  /** Resolves to the service's exit status; 127 when the qube has no such service. */
  run(call: ServiceCall): Promise<number>;
}

const ROOT_CAPABILITIES: readonly string[] = [
  'CAP_CHOWN',
  'CAP_DAC_OVERRIDE',
  'CAP_DAC_READ_SEARCH',
  'CAP_FOWNER',
  'CAP_FSETID',
  'CAP_KILL',
  'CAP_SETGID',
  'CAP_SETUID',
];

const SERVICE_NAME = /^[A-Za-z0-9_.-]+$/;
const ARGUMENT = /^[A-Za-z0-9+_.-]*$/;

export function defaultServicesDir(): string {
  return join(packageRoot(), 'src', 'qube');
}

/** A bwrap process and the host pid of its namespace's init, once known. */
interface Tracked {
  readonly child: ChildProcess;
  readonly init: Promise<number | undefined>;
}

function packageRoot(): string {
  // dist/src/sim/sandbox → the package root
  return join(import.meta.dirname, '..', '..', '..', '..');
}

// The drop-in client and what its imports need: nothing else of the host.
const CLIENT_ROOT_IN_QUBE = '/run/qmcp';
const CLIENT_PARTS: readonly string[] = ['bin/qrexec-client-vm', 'package.json', 'dist/src/sim/qrexec'];

interface RunningQube {
  readonly processes: Set<Tracked>;
  readonly rootDir: string;
  readonly privateDir: string;
}

export class QubeSandboxes implements QubeServiceHost {
  private readonly running = new Map<string, RunningQube>();
  private readonly starting = new Map<string, Promise<void>>();
  private readonly bwrap: string | undefined;
  private readonly servicesDir: string;

  constructor(private readonly options: SandboxOptions) {
    this.bwrap = options.bwrap === undefined ? findBwrap() : (options.bwrap ?? undefined);
    this.servicesDir = options.servicesDir ?? defaultServicesDir();
  }

  /** Whether bwrap is available, so that qubes can run anything. */
  get available(): boolean {
    return this.bwrap !== undefined;
  }

  isRunning(name: string): boolean {
    return this.running.has(name);
  }

  // Power hooks for the simulated qubesd.

  /** Prepares a qube's storage; concurrent starts of one qube share the work. */
  beforeStart(name: string): Promise<void> {
    if (this.running.has(name)) return Promise.resolve();
    let pending = this.starting.get(name);
    if (pending === undefined) {
      pending = this.prepare(name).finally(() => this.starting.delete(name));
      this.starting.set(name, pending);
    }
    return pending;
  }

  // Storage is prepared even without bwrap, so that power management works
  // everywhere; running anything inside is what needs it.
  private async prepare(name: string): Promise<void> {
    const shape = this.mustLookup(name);
    const layout = qubeLayout(this.options.dir, name);
    let rootDir = layout.root;
    let privateDir = layout.private;
    if (shape.klass === 'StandaloneVM') {
      await this.ensurePersistentRoot(name);
    } else if (shape.klass === 'TemplateVM') {
      // A template works on a copy that is committed when it stops, so that
      // qubes started meanwhile see its state as of its last shutdown.
      await this.ensurePersistentRoot(name);
      await copyLayer(layout.root, layout.volatile);
      rootDir = layout.volatile;
    } else {
      const template = this.rootTemplate(name, shape);
      await this.ensurePersistentRoot(template);
      await copyLayer(qubeLayout(this.options.dir, template).root, layout.volatile);
      rootDir = layout.volatile;
      if (shape.klass === 'DispVM' && shape.template) {
        // A disposable starts from its disposable template's private storage.
        await copyLayer(qubeLayout(this.options.dir, shape.template).private, layout.volatilePrivate);
        privateDir = layout.volatilePrivate;
      }
    }
    await mkdir(join(privateDir, 'home', 'user'), { recursive: true });
    await nameRoot(rootDir, name);
    this.running.set(name, { processes: new Set(), rootDir, privateDir });
  }

  async afterStop(name: string): Promise<void> {
    await this.starting.get(name)?.catch(() => undefined);
    const qube = this.running.get(name);
    this.running.delete(name);
    if (qube !== undefined) await killAll(qube.processes);
    const layout = qubeLayout(this.options.dir, name);
    if (qube !== undefined && this.options.lookup(name)?.klass === 'TemplateVM' && existsSync(layout.volatile)) {
      await commitLayer(layout.volatile, layout.root);
    }
    await rm(layout.volatile, { recursive: true, force: true });
    await rm(layout.volatilePrivate, { recursive: true, force: true });
  }

  async afterRemove(name: string): Promise<void> {
    await this.afterStop(name);
    await rm(qubeLayout(this.options.dir, name).base, { recursive: true, force: true });
  }

  /** Gives a new qube a copy of another's storage (clone). */
  async cloneStorage(source: string, target: string): Promise<void> {
    await this.afterVolumeClone(source, target, 'private');
    await this.afterVolumeClone(source, target, 'root');
  }

  /** Follows admin.vm.volume.CloneTo: the volume's content is copied, as qubesd copies the disk. */
  async afterVolumeClone(source: string, target: string, volume: string): Promise<void> {
    const from = qubeLayout(this.options.dir, source);
    const to = qubeLayout(this.options.dir, target);
    if (volume === 'private') await copyLayer(from.private, to.private);
    else if (volume === 'root' && existsSync(from.root)) await copyLayer(from.root, to.root);
  }

  /** Stops every running qube (simulator shutdown). */
  async stopAll(): Promise<void> {
    await Promise.all([...this.running.keys()].map((name) => this.afterStop(name)));
  }

  // Running things inside.

  /** Starts argv inside a running qube, as root unless told otherwise. */
  spawn(name: string, argv: readonly string[], options: SpawnInQubeOptions = {}): ChildProcess {
    if (this.bwrap === undefined) throw new SandboxUnavailableError();
    const qube = this.running.get(name);
    if (qube === undefined) throw new SandboxError(`qube ${name} is not running`);
    if (argv.length === 0) throw new TypeError('argv must not be empty');
    const child = spawn(this.bwrap, ['--info-fd', '3', ...this.bwrapArgs(name, qube, options), '--', ...argv], {
      env: {},
      stdio: ['pipe', 'pipe', 'pipe', 'pipe'],
    });
    const entry: Tracked = { child, init: readInitPid(child) };
    qube.processes.add(entry);
    child.once('close', () => qube.processes.delete(entry));
    return child;
  }

  /**
   * Runs a service as qrexec would inside the qube. Without bwrap it writes
   * how to install it on stderr and resolves 125 (a qrexec failure).
   */
  async run(call: ServiceCall): Promise<number> {
    const qube = this.running.get(call.qube);
    if (qube === undefined) throw new SandboxError(`qube ${call.qube} is not running`);
    if (this.bwrap === undefined) {
      call.stdin?.resume();
      call.stderr.write(`${BWRAP_MISSING_MESSAGE}\n`);
      return 125;
    }
    if (!SERVICE_NAME.test(call.service) || call.service.startsWith('.') || !ARGUMENT.test(call.argument)) return 127;
    const rpcDir = join(qube.rootDir, 'etc', 'qubes-rpc');
    // As libqrexec: SERVICE+ARG (SERVICE+ for no argument), then SERVICE.
    const candidates = [`${call.service}+${call.argument}`, call.service];
    let found: string | undefined;
    for (const candidate of candidates) {
      if (await isServiceFile(join(rpcDir, candidate))) {
        found = candidate;
        break;
      }
    }
    if (found === undefined) return 127;
    const env: Record<string, string> = {
      QREXEC_SERVICE_FULL_NAME: `${call.service}+${call.argument}`,
      QREXEC_REMOTE_DOMAIN: call.source,
      QREXEC_SERVICE_ARGUMENT: call.argument,
      QREXEC_REQUESTED_TARGET_TYPE: '',
    };
    const argv = [`/etc/qubes-rpc/${found}`, ...(call.argument === '' ? [] : [call.argument])];
    const child = this.spawn(call.qube, argv, { env, user: call.user ?? 'root' });
    return await pipeAndWait(child, call);
  }

  // Internals.

  private mustLookup(name: string): QubeShape {
    const shape = this.options.lookup(name);
    if (shape === undefined) throw new SandboxError(`no such qube: ${name}`);
    return shape;
  }

  /** The TemplateVM or StandaloneVM whose root layer a qube starts from. */
  private rootTemplate(name: string, shape: QubeShape): string {
    let current = name;
    let currentShape = shape;
    for (let hops = 0; hops < 4; hops++) {
      if (currentShape.klass === 'TemplateVM' || currentShape.klass === 'StandaloneVM') return current;
      const next = currentShape.template;
      if (!next) break;
      current = next;
      currentShape = this.mustLookup(next);
    }
    throw new SandboxError(`qube ${name} has no template to start from`);
  }

  private async ensurePersistentRoot(name: string): Promise<void> {
    const root = qubeLayout(this.options.dir, name).root;
    if (!existsSync(root)) await seedRootLayer(root, name, this.servicesDir);
  }

  private bwrapArgs(name: string, qube: RunningQube, options: SpawnInQubeOptions): string[] {
    const user = options.user ?? 'root';
    // Every user is root inside: the sandbox's files all belong to uid 0.
    // Root keeps only file-ownership capabilities: CAP_SYS_ADMIN would let it
    // remount the read-only host directories writable (when the simulator
    // runs as root).
    const args = ['--unshare-all', '--unshare-user', '--die-with-parent', '--new-session', '--cap-drop', 'ALL'];
    for (const cap of ROOT_CAPABILITIES) args.push('--cap-add', cap);
    args.push('--uid', '0', '--gid', '0', '--hostname', name);
    if (this.options.network === true) args.push('--share-net');
    for (const dir of HOST_SYSTEM_DIRS) args.push(...hostDirArgs(dir));
    for (const [sub, mount] of ROOT_LAYER_MOUNTS) args.push('--bind', join(qube.rootDir, sub), mount);
    args.push('--bind', qube.privateDir, '/rw', '--bind', join(qube.privateDir, 'home'), '/home');
    // The demo's network needs the host's resolver; a qube without network keeps its own file.
    if (this.options.network === true) args.push('--ro-bind-try', '/etc/resolv.conf', '/etc/resolv.conf');
    args.push('--proc', '/proc', '--dev', '/dev', '--tmpfs', '/tmp', '--tmpfs', '/dev/shm', '--tmpfs', '/run');
    args.push('--ro-bind', process.execPath, `${TOOLS_DIR_IN_QUBE}/node`);
    const clientRoot = this.options.clientRoot ?? packageRoot();
    if (existsSync(join(clientRoot, 'bin', 'qrexec-client-vm'))) {
      for (const part of CLIENT_PARTS) args.push('--ro-bind-try', join(clientRoot, part), join(CLIENT_ROOT_IN_QUBE, part));
    }
    const socket = this.options.qrexecSocket?.(name) ?? join(this.options.dir, 'qrexec', `${name}.sock`);
    args.push('--bind-try', socket, QREXEC_SOCKET_IN_QUBE);
    const env: Record<string, string> = {
      PATH: IN_QUBE_PATH,
      HOME: user === 'root' ? '/root' : `/home/${user}`,
      USER: user,
      LOGNAME: user,
      SHELL: '/bin/sh',
      LANG: 'C.UTF-8',
      QMCP_QREXEC_SOCKET: QREXEC_SOCKET_IN_QUBE,
      QMCP_QUBE_NAME: name,
      ...options.env,
    };
    args.push('--clearenv');
    for (const [key, value] of Object.entries(env)) args.push('--setenv', key, value);
    args.push('--chdir', options.cwd ?? (user === 'root' ? '/root' : `/home/${user}`));
    return args;
  }
}

// A host system directory as a bwrap argument: merged-/usr hosts have links.
function hostDirArgs(dir: string): string[] {
  try {
    const info = lstatSync(dir);
    if (info.isSymbolicLink()) return ['--symlink', readlinkSync(dir), dir];
    return info.isDirectory() ? ['--ro-bind', dir, dir] : [];
  } catch {
    return [];
  }
}

async function isServiceFile(path: string): Promise<boolean> {
  try {
    const info = await lstat(path);
    return info.isFile() || info.isSymbolicLink();
  } catch {
    return false;
  }
}

// bwrap reports the namespace's init on --info-fd as JSON: {"child-pid": N}.
function readInitPid(child: ChildProcess): Promise<number | undefined> {
  return new Promise((resolve) => {
    const info = child.stdio[3] as Readable | null | undefined;
    if (info === null || info === undefined) return resolve(undefined);
    const chunks: Buffer[] = [];
    info.on('data', (c: Buffer) => chunks.push(c));
    info.on('error', () => resolve(undefined));
    info.on('close', () => {
      const match = /"child-pid"\s*:\s*([0-9]+)/.exec(Buffer.concat(chunks).toString());
      resolve(match?.[1] === undefined ? undefined : Number(match[1]));
    });
  });
}

// Killing a pid namespace's init makes the kernel kill and reap everything
// in it before bwrap sees init exit, so `close` means the qube's processes
// are gone.
async function killAll(processes: Set<Tracked>): Promise<void> {
  await Promise.all(
    [...processes].map(async ({ child, init }) => {
      const closed = new Promise<void>((resolve) => {
        if (child.exitCode !== null || child.signalCode !== null) resolve();
        else child.once('close', () => resolve());
      });
      const pid = await Promise.race([init, closed.then(() => undefined)]);
      try {
        if (pid !== undefined) process.kill(pid, 'SIGKILL');
        else child.kill('SIGKILL');
      } catch {
        child.kill('SIGKILL');
      }
      await closed;
    }),
  );
}

function pipeAndWait(child: ChildProcess, call: ServiceCall): Promise<number> {
  return new Promise((resolve, reject) => {
    const stdin = child.stdin;
    if (stdin !== null) {
      stdin.on('error', () => undefined);
      if (call.stdin === null) stdin.end();
      else call.stdin.pipe(stdin);
    }
    child.stdout?.pipe(call.stdout, { end: false });
    child.stderr?.pipe(call.stderr, { end: false });
    // the caller went away and qrexec shut the service's side: its writes fail from now on
    call.stdout.once('close', () => child.stdout?.destroy());
    call.stderr.once('close', () => child.stderr?.destroy());
    child.once('error', reject);
    child.once('close', (code, signal) => resolve(code ?? 128 + signalNumber(signal ?? 'SIGKILL')));
  });
}

function signalNumber(signal: NodeJS.Signals): number {
  return constants.signals[signal] ?? 9;
}
