// Simulated qubes as bubblewrap sandboxes: their power lifecycle, and
// running commands and qrexec services inside them.
//
// A running qube is one long-lived bwrap whose namespaces live from its
// first use to shutdown. Its volumes are size-limited tmpfs mounts of that
// sandbox (the root file system, /rw), so writes past a volume's size fail
// with ENOSPC inside the qube. No host directory is bound writable into it:
// when the sandbox comes, the host streams each volume's image, as it was at
// the qube's start, to the agent inside (agent.ts), which unpacks it; at
// shutdown the agent packs it and the host writes the bytes, counted against
// the volume's size, into a new image. A qube nothing ran in has no sandbox:
// its shutdown leaves its images as they were.
import { spawn } from 'node:child_process';
import type { ChildProcess } from 'node:child_process';
import { existsSync, lstatSync, readdirSync, readlinkSync } from 'node:fs';
import { mkdir, open, rename, rm } from 'node:fs/promises';
import type { FileHandle } from 'node:fs/promises';
import { constants } from 'node:os';
import { join } from 'node:path';
import type { Readable, Writable } from 'node:stream';
import { BWRAP_MISSING_MESSAGE, bwrapFeatures, bwrapTooOldMessage, findBwrap, SandboxError, SandboxUnavailableError } from './bwrap.js';
import { HOST_SYSTEM_DIRS, qubeLayout, ROOT_LAYER_MOUNTS } from './layout.js';
import { AgentLink, QubeCommand } from './link.js';
import type { Channel, QubeProcess } from './link.js';
import type { ExitInfo, OpenRequest } from './mux.js';
import { copyImage, rootLayerRoots, seedRootImage, writeImage } from './root-layer.js';

/** What the sandbox layer needs to know about a qube. */
export interface QubeShape {
  readonly klass: 'TemplateVM' | 'StandaloneVM' | 'AppVM' | 'DispVM' | 'AdminVM' | string;
  /** The template (for a DispVM, its disposable template). */
  readonly template?: string | null;
  /** Volume sizes in bytes, as qubesd reports them. */
  readonly volumes?: Readonly<Partial<Record<'root' | 'private' | 'volatile', number>>>;
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
  /** Makes sure that socket is there before a sandbox binds it (a bind of a missing socket leaves the qube without qrexec). */
  readonly qrexecReady?: (name: string) => Promise<void>;
  /**
   * Where qrexec-client-vm comes from: a package root holding
   * bin/qrexec-client-vm (and bin/qvm-connect-tcp), package.json and dist/src/sim/qrexec/, which are
   * bound read-only under /run/qmcp so that the script's relative imports
   * resolve; default: this package.
   */
  readonly clientRoot?: string;
  /** The in-qube services (src/qube). */
  readonly servicesDir?: string;
  /** The bwrap executable; default: found on PATH. */
  readonly bwrap?: string | null;
  /** Lines for the operator (a qube's storage that could not be saved, an agent that broke). */
  readonly log?: (line: string) => void;
}

/** Inside a qube: where its qrexec socket and the simulator's tools appear. */
export const QREXEC_SOCKET_IN_QUBE = '/run/qmcp/qrexec.sock';
export const TOOLS_DIR_IN_QUBE = '/run/qmcp/bin';
const IN_QUBE_PATH = `${TOOLS_DIR_IN_QUBE}:/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin`;
// The agent and what its imports need: this directory and a package.json.
const AGENT_DIR_IN_QUBE = '/run/qmcp-agent';
/** This folder and the shared module it imports, at their places under the compiled src/. */
const AGENT_CODE = 'sim/sandbox';
const AGENT_SHARED = 'shared/errors.js';
/** The compiled sim/sandbox folder, where the agent is. */
const AGENT_FROM = import.meta.dirname;

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

const GiB = 1024 ** 3;
// qubesd's defaults, for a qube whose sizes the lookup does not give.
const DEFAULT_ROOT_BYTES = 10 * GiB;
const DEFAULT_PRIVATE_BYTES = 2 * GiB;
const SHM_BYTES = 64 * 1024 * 1024;
// An agent that sends nothing for this long while the qube stops is given up.
const STOP_IDLE_MS = 120_000;

/** The most an image of a volume of `size` bytes may hold: the data, and room for names and modes. */
export function imageLimit(size: number): number {
  return size + Math.ceil(size / 8) + 1024 * 1024;
}

export function defaultServicesDir(): string {
  return join(packageRoot(), 'src', 'qube');
}

function packageRoot(): string {
  // dist/src/sim/sandbox → the package root
  return join(AGENT_FROM, '..', '..', '..', '..');
}

// The drop-in clients and what their imports need: nothing else of the host.
const CLIENT_ROOT_IN_QUBE = '/run/qmcp';
const CLIENT_PARTS: readonly string[] = ['bin/qrexec-client-vm', 'bin/qvm-connect-tcp', 'package.json', 'dist/src/sim/qrexec'];

export type Volume = 'private' | 'root';

interface RunningQube {
  /** What its sandbox is made of; null when bwrap is missing: the qube is up, but runs nothing. */
  readonly plan: SandboxPlan | null;
  /** The volumes kept at shutdown, with their images and size bounds. */
  readonly keep: readonly { readonly volume: Volume; readonly image: string; readonly size: number }[];
  /** The sandbox's coming, from the first use on: every use shares it. */
  coming: Promise<Sandbox> | null;
  /** The sandbox once its bwrap is spawned, so that a stop can kill it while it comes. */
  spawned: Sandbox | null;
  /** The sandbox once it came with its volumes. */
  up: Sandbox | null;
}

interface SandboxPlan {
  readonly rootSize: number;
  readonly privateSize: number;
  // Opened at start: an image replaced later (a template's stop saves its
  // root) leaves the qube with the contents it started with.
  readonly rootImage: FileHandle | null;
  readonly privateImage: FileHandle | null;
}

interface Sandbox {
  readonly bwrap: ChildProcess;
  /** The end of what bwrap and the agent wrote on stderr. */
  readonly said: () => string;
  readonly link: AgentLink;
  readonly init: Promise<number | undefined>;
  readonly closed: Promise<void>;
}

export class QubeSandboxes implements QubeServiceHost {
  private readonly running = new Map<string, RunningQube>();
  private readonly starting = new Map<string, Promise<void>>();
  private readonly images = new Map<string, Promise<string | null>>();
  private readonly bwrap: string | undefined;
  private readonly disableUserns: boolean;
  /** Why qubes run nothing, when they cannot. */
  readonly unavailableReason: string | null;
  private readonly servicesDir: string;

  constructor(private readonly options: SandboxOptions) {
    const found = options.bwrap === undefined ? findBwrap() : (options.bwrap ?? undefined);
    const features = found === undefined ? null : bwrapFeatures(found);
    this.bwrap = features?.size ? found : undefined;
    this.disableUserns = features?.disableUserns ?? false;
    this.unavailableReason = found === undefined ? BWRAP_MISSING_MESSAGE : features?.size ? null : bwrapTooOldMessage(found);
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

  /** Starts a qube: its volumes as they are now, for its sandbox to come with; concurrent starts of one qube share the work. */
  beforeStart(name: string): Promise<void> {
    if (this.running.has(name)) return Promise.resolve();
    let pending = this.starting.get(name);
    if (pending === undefined) {
      pending = this.prepare(name).finally(() => this.starting.delete(name));
      this.starting.set(name, pending);
    }
    return pending;
  }

  private async prepare(name: string): Promise<void> {
    const shape = this.mustLookup(name);
    const layout = qubeLayout(this.options.dir, name);
    await mkdir(layout.base, { recursive: true });
    // Working copies of earlier versions are never used again.
    await rm(layout.volatile, { recursive: true, force: true });
    await rm(layout.volatilePrivate, { recursive: true, force: true });
    const persistentRoot = shape.klass === 'TemplateVM' || shape.klass === 'StandaloneVM';
    const rootFrom = persistentRoot ? name : this.rootTemplate(name, shape);
    const rootImage = await this.rootImage(rootFrom);
    // A disposable starts from its disposable template's private volume, and keeps nothing.
    const dispTemplate = shape.klass === 'DispVM' && shape.template ? shape.template : null;
    const privateImage = await this.privateImage(dispTemplate ?? name);
    const privateSize =
      (dispTemplate === null ? undefined : this.options.lookup(dispTemplate)?.volumes?.private) ?? shape.volumes?.private ?? DEFAULT_PRIVATE_BYTES;
    const rootSize = (rootFrom === name ? shape : this.options.lookup(rootFrom))?.volumes?.root ?? DEFAULT_ROOT_BYTES;
    const keep: RunningQube['keep'] =
      shape.klass === 'DispVM'
        ? []
        : [
            { volume: 'private', image: layout.privateImage, size: privateSize },
            ...(persistentRoot ? [{ volume: 'root' as const, image: layout.rootImage, size: rootSize }] : []),
          ];
    // Power management works without bwrap; running anything needs it.
    const plan = this.bwrap === undefined ? null : { rootSize, privateSize, ...(await openImages(name, rootImage, privateImage)) };
    this.running.set(name, { plan, keep, coming: null, spawned: null, up: null });
  }

  /** The qube's sandbox, brought up with its volumes at the first call. */
  private sandboxOf(name: string, qube: RunningQube): Promise<Sandbox> {
    if (qube.plan === null || this.bwrap === undefined) return Promise.reject(new SandboxUnavailableError(this.unavailableReason ?? undefined));
    qube.coming ??= this.bringUp(this.bwrap, name, qube, qube.plan);
    return qube.coming;
  }

  private async bringUp(bwrap: string, name: string, qube: RunningQube, plan: SandboxPlan): Promise<Sandbox> {
    // without the hook bwrap starts in this turn (a stop meanwhile is seen once the sandbox is up, below)
    const ready = this.options.qrexecReady;
    if (ready !== undefined) {
      await ready(name).catch(async (e: unknown) => {
        await closeImages(plan);
        throw new SandboxError(`qube ${name} did not start: its qrexec socket: ${e instanceof Error ? e.message : String(e)}`);
      });
    }
    const sandbox = this.startSandbox(bwrap, name, plan.rootSize, plan.privateSize);
    qube.spawned = sandbox;
    try {
      await sandbox.link.ready;
      if (plan.rootImage !== null) await this.load(sandbox, name, 'root', plan.rootImage);
      if (plan.privateImage !== null) await this.load(sandbox, name, 'private', plan.privateImage);
      const booted = await sandbox.link.open({ kind: 'boot', name }).exited;
      if (booted.code !== 0) this.log(`qube ${name}: setting its name at start failed: ${booted.message ?? 'no reason given'}`);
      // a stop while it came killed it
      if (this.running.get(name) !== qube) throw new SandboxError(`qube ${name} is not running`);
    } catch (e) {
      await killSandbox(sandbox);
      if (this.running.get(name) !== qube) throw new SandboxError(`qube ${name} is not running`);
      if (e instanceof SandboxError) throw e;
      const said = sandbox.said();
      throw new SandboxError(`qube ${name} did not start: ${e instanceof Error ? e.message : String(e)}${said === '' ? '' : `: ${said}`}`);
    } finally {
      await closeImages(plan);
    }
    qube.up = sandbox;
    return sandbox;
  }

  async afterStop(name: string): Promise<void> {
    await this.starting.get(name)?.catch(() => undefined);
    const qube = this.running.get(name);
    this.running.delete(name);
    if (qube === undefined) return;
    if (qube.up !== null) await this.save(name, qube, qube.up);
    if (qube.spawned !== null) await killSandbox(qube.spawned);
    // a sandbox still coming fails now that it is killed, and closes the images itself
    if (qube.coming !== null) await qube.coming.catch(() => undefined);
    else if (qube.plan !== null) await closeImages(qube.plan);
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

  /** Follows admin.vm.volume.CloneTo: the volume's image is copied, as qubesd copies the disk. */
  async afterVolumeClone(source: string, target: string, volume: string): Promise<void> {
    if (volume !== 'private' && volume !== 'root') return;
    const to = qubeLayout(this.options.dir, target);
    const targetImage = volume === 'private' ? to.privateImage : to.rootImage;
    const from = volume === 'private' ? await this.privateImage(source) : await this.persistentRootImage(source);
    if (volume === 'root' && from === null) return;
    if (from === null) await rm(targetImage, { force: true });
    else await copyImage(from, targetImage);
  }

  // Revisions (qubesd's commit and revert): a revision of a volume is a copy of its image beside it.

  private revisionImage(name: string, volume: string, id: string): string | null {
    const layout = qubeLayout(this.options.dir, name);
    const image = volume === 'private' ? layout.privateImage : volume === 'root' ? layout.rootImage : null;
    return image === null ? null : `${image}.revision-${id}`;
  }

  /** Keeps the volume's image as revision `id`; called before a stop saves the new content over it. */
  async keepRevision(name: string, volume: string, id: string): Promise<void> {
    const to = this.revisionImage(name, volume, id);
    if (to === null) return;
    const from = volume === 'private' ? await this.privateImage(name) : await this.persistentRootImage(name);
    // a volume never started holds no image: its revision is empty too
    if (from === null) await rm(to, { force: true });
    else await copyImage(from, to);
  }

  async dropRevision(name: string, volume: string, id: string): Promise<void> {
    const path = this.revisionImage(name, volume, id);
    if (path !== null) await rm(path, { force: true });
  }

  /** Makes revision `id` the volume's image, in one rename. */
  async useRevision(name: string, volume: string, id: string): Promise<void> {
    const from = this.revisionImage(name, volume, id);
    if (from === null) return;
    const layout = qubeLayout(this.options.dir, name);
    const image = volume === 'private' ? layout.privateImage : layout.rootImage;
    if (existsSync(from)) await rename(from, image);
    else await rm(image, { force: true });
  }

  /** Stops every running qube (simulator shutdown), saving their volumes. */
  async stopAll(): Promise<void> {
    await Promise.all([...new Set([...this.running.keys(), ...this.starting.keys()])].map((name) => this.afterStop(name)));
  }

  // Running things inside.

  /** Starts argv inside a running qube, as root unless told otherwise; a sandbox that cannot come makes the command emit 'error'. */
  spawn(name: string, argv: readonly string[], options: SpawnInQubeOptions = {}): QubeProcess {
    if (argv.length === 0) throw new TypeError('argv must not be empty');
    return new QubeCommand(this.open(name, { kind: 'run', argv, ...this.commandContext(name, options) }));
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
      call.stderr.write(`${this.unavailableReason ?? BWRAP_MISSING_MESSAGE}\n`);
      return 125;
    }
    if (!SERVICE_NAME.test(call.service) || call.service.startsWith('.') || !ARGUMENT.test(call.argument)) return 127;
    const env: Record<string, string> = {
      QREXEC_SERVICE_FULL_NAME: `${call.service}+${call.argument}`,
      QREXEC_REMOTE_DOMAIN: call.source,
      QREXEC_SERVICE_ARGUMENT: call.argument,
      QREXEC_REQUESTED_TARGET_TYPE: '',
    };
    // As libqrexec: SERVICE+ARG (SERVICE+ for no argument), then SERVICE.
    const service = { dir: '/etc/qubes-rpc', candidates: [`${call.service}+${call.argument}`, call.service], argument: call.argument };
    const request: OpenRequest = { kind: 'run', argv: ['/bin/false'], service, ...this.commandContext(call.qube, { env, user: call.user ?? 'root' }) };
    return await pipeAndWait(new QubeCommand(await this.open(call.qube, request)), call);
  }

  // Internals.

  /** A channel to the qube's agent: at once when its sandbox is up, else once it came. */
  private open(name: string, request: OpenRequest): Channel | Promise<Channel> {
    if (this.bwrap === undefined) throw new SandboxUnavailableError(this.unavailableReason ?? undefined);
    const qube = this.running.get(name);
    if (qube === undefined) throw new SandboxError(`qube ${name} is not running`);
    if (qube.plan === null) throw new SandboxUnavailableError(this.unavailableReason ?? undefined);
    if (qube.up !== null) return openOn(name, qube.up, request);
    return this.sandboxOf(name, qube).then((sandbox) => openOn(name, sandbox, request));
  }

  private commandContext(name: string, options: SpawnInQubeOptions): { env: Record<string, string>; cwd: string } {
    // Every user is root inside: the sandbox's files all belong to uid 0.
    const user = options.user ?? 'root';
    const home = user === 'root' ? '/root' : `/home/${user}`;
    const env: Record<string, string> = {
      PATH: IN_QUBE_PATH,
      HOME: home,
      USER: user,
      LOGNAME: user,
      SHELL: '/bin/sh',
      LANG: 'C.UTF-8',
      QMCP_QREXEC_SOCKET: QREXEC_SOCKET_IN_QUBE,
      QMCP_QUBE_NAME: name,
      ...options.env,
    };
    return { env, cwd: options.cwd ?? home };
  }

  private log(line: string): void {
    this.options.log?.(line);
  }

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

  /** A template's or standalone's root image, seeded at its first start. */
  private async rootImage(name: string): Promise<string> {
    const image = await this.persistentRootImage(name);
    if (image !== null) return image;
    return (await this.once(`${name}/seed`, async () => {
      const path = qubeLayout(this.options.dir, name).rootImage;
      if (!existsSync(path)) {
        await mkdir(qubeLayout(this.options.dir, name).base, { recursive: true });
        await seedRootImage(path, this.servicesDir);
      }
      return path;
    })) as string;
  }

  private persistentRootImage(name: string): Promise<string | null> {
    const layout = qubeLayout(this.options.dir, name);
    return this.imageOf(`${name}/root`, layout.rootImage, layout.root, rootLayerRoots(layout.root));
  }

  private privateImage(name: string): Promise<string | null> {
    const layout = qubeLayout(this.options.dir, name);
    return this.imageOf(`${name}/private`, layout.privateImage, layout.private, [{ name: null, dir: layout.private }]);
  }

  // The image of a volume, packing the directory an earlier version kept
  // instead (it may hold anything a qube left there: links are kept as
  // links, and files linked from outside it are left out).
  private imageOf(key: string, image: string, legacy: string, roots: Parameters<typeof writeImage>[1]): Promise<string | null> {
    if (existsSync(image)) return Promise.resolve(image);
    return this.once(key, async () => {
      if (existsSync(image)) return image;
      if (!existsSync(legacy)) return null;
      await writeImage(image, roots);
      await rm(legacy, { recursive: true, force: true });
      this.log(`qube storage ${legacy} packed into ${image}`);
      return image;
    });
  }

  private once(key: string, work: () => Promise<string | null>): Promise<string | null> {
    let pending = this.images.get(key);
    if (pending === undefined) {
      pending = work().finally(() => this.images.delete(key));
      this.images.set(key, pending);
    }
    return pending;
  }

  private startSandbox(bwrap: string, name: string, rootSize: number, privateSize: number): Sandbox {
    const child = spawn(bwrap, ['--info-fd', '3', ...this.bwrapArgs(name, rootSize, privateSize)], {
      env: {},
      stdio: ['pipe', 'pipe', 'pipe', 'pipe'],
    });
    const stdin = child.stdin;
    const stdout = child.stdout;
    if (stdin === null || stdout === null) throw new SandboxError('cannot talk to the sandbox');
    const closed = new Promise<void>((resolve) => {
      if (child.exitCode !== null || child.signalCode !== null) resolve();
      else child.once('close', () => resolve());
    });
    // What the agent or bwrap says on stderr, kept short, for the reason of a failed start.
    let diagnostics = '';
    child.stderr?.on('data', (c: Buffer) => (diagnostics = (diagnostics + c.toString('utf8')).slice(-2000)));
    child.on('error', () => undefined);
    const sandbox: Sandbox = {
      bwrap: child,
      said: () => diagnostics.trim(),
      init: readInitPid(child),
      closed,
      link: new AgentLink(stdin, stdout, (reason) => {
        const said = sandbox.said();
        this.log(`qube ${name}: ${reason}${said === '' ? '' : `: ${said}`}`);
        void killSandbox(sandbox);
      }),
    };
    return sandbox;
  }

  private async load(sandbox: Sandbox, name: string, volume: Volume, image: FileHandle): Promise<void> {
    const channel = sandbox.link.open({ kind: 'import', volume });
    const buf = Buffer.alloc(64 * 1024);
    for (let at = 0; !channel.done; ) {
      const { bytesRead } = await image.read(buf, 0, buf.length, at);
      if (bytesRead === 0) break;
      at += bytesRead;
      await channel.write(Buffer.from(buf.subarray(0, bytesRead)));
    }
    channel.end();
    const info = await channel.exited;
    if (info.code !== 0) {
      const why = info.message ?? 'no reason given';
      throw new SandboxError(`qube ${name} did not start: its ${volume} volume could not be loaded (${why})`);
    }
  }

  // Shutdown: every process ends, then each kept volume is packed inside
  // and written to a new image, which replaces the old one only if the
  // whole of it came, within the volume's bound.
  private async save(name: string, qube: RunningQube, sandbox: Sandbox): Promise<void> {
    if (sandbox.link.broken !== null) {
      if (qube.keep.length > 0) this.log(`qube ${name}: its volumes keep their state from its start (${sandbox.link.broken})`);
      return;
    }
    const halted = await idle(sandbox.link.open({ kind: 'halt' }));
    if (halted.code !== 0) this.log(`qube ${name}: stopping its processes: ${halted.message ?? 'no answer'}`);
    for (const { volume, image, size } of qube.keep) {
      const problem = await saveImage(sandbox.link, volume, image, imageLimit(size));
      if (problem !== null) this.log(`qube ${name}: its ${volume} volume keeps its state from its start: ${problem}`);
    }
  }

  private bwrapArgs(name: string, rootSize: number, privateSize: number): string[] {
    // Root keeps only file-ownership capabilities: CAP_SYS_ADMIN would let it
    // remount the read-only host directories writable (when the simulator
    // runs as root).
    const args = ['--unshare-all', '--unshare-user', '--die-with-parent', '--new-session', '--cap-drop', 'ALL'];
    // Nor can it make user namespaces of its own, the way into most kernel bugs.
    if (this.disableUserns) args.push('--disable-userns');
    for (const cap of ROOT_CAPABILITIES) args.push('--cap-add', cap);
    args.push('--uid', '0', '--gid', '0', '--hostname', name);
    if (this.options.network === true) args.push('--share-net');
    // The root volume is the root file system: /usr, /tmp and /run included.
    args.push('--size', String(rootSize), '--tmpfs', '/');
    args.push(...hostUsrArgs());
    for (const dir of HOST_SYSTEM_DIRS) if (dir !== '/usr') args.push(...hostDirArgs(dir));
    for (const [, mount] of ROOT_LAYER_MOUNTS) args.push('--dir', mount);
    args.push('--perms', '1777', '--dir', '/tmp', '--dir', '/run');
    args.push('--size', String(privateSize), '--tmpfs', '/rw', '--symlink', 'rw/home', '/home');
    // The demo's network needs the host's resolver; a qube without network keeps its own file.
    if (this.options.network === true) args.push('--ro-bind-try', '/etc/resolv.conf', '/etc/resolv.conf');
    args.push('--proc', '/proc', '--dev', '/dev', '--perms', '1777', '--size', String(SHM_BYTES), '--tmpfs', '/dev/shm', '--remount-ro', '/dev');
    args.push('--ro-bind', process.execPath, `${TOOLS_DIR_IN_QUBE}/node`);
    const clientRoot = this.options.clientRoot ?? packageRoot();
    if (existsSync(join(clientRoot, 'bin', 'qrexec-client-vm'))) {
      for (const part of CLIENT_PARTS) args.push('--ro-bind-try', join(clientRoot, part), join(CLIENT_ROOT_IN_QUBE, part));
    }
    // the agent's modules keep their place relative to the one shared module they import
    args.push('--ro-bind', AGENT_FROM, `${AGENT_DIR_IN_QUBE}/${AGENT_CODE}`);
    args.push('--ro-bind', join(AGENT_FROM, '..', '..', AGENT_SHARED), `${AGENT_DIR_IN_QUBE}/${AGENT_SHARED}`);
    args.push('--ro-bind', join(packageRoot(), 'package.json'), `${AGENT_DIR_IN_QUBE}/package.json`);
    const socket = this.options.qrexecSocket?.(name) ?? join(this.options.dir, 'qrexec', `${name}.sock`);
    args.push('--bind-try', socket, QREXEC_SOCKET_IN_QUBE);
    args.push('--clearenv', '--setenv', 'PATH', IN_QUBE_PATH, '--chdir', '/');
    args.push('--', `${TOOLS_DIR_IN_QUBE}/node`, `${AGENT_DIR_IN_QUBE}/${AGENT_CODE}/agent.js`);
    return args;
  }
}

// The host's /usr, read-only, but for /usr/local, which is the qube's own.
function hostUsrArgs(): string[] {
  const args: string[] = [];
  let entries: string[];
  try {
    entries = readdirSync('/usr');
  } catch {
    return args;
  }
  for (const entry of entries.sort()) {
    if (entry === 'local') continue;
    args.push(...hostDirArgs(join('/usr', entry)));
  }
  return args;
}

// A host system directory as a bwrap argument: merged-/usr hosts have links.
function hostDirArgs(dir: string): string[] {
  try {
    const info = lstatSync(dir);
    if (info.isSymbolicLink()) return ['--symlink', readlinkSync(dir), dir];
    return info.isDirectory() || info.isFile() ? ['--ro-bind', dir, dir] : [];
  } catch {
    return [];
  }
}

/**
 * Receives a volume's image from the agent into IMAGE.new and makes it the
 * image only if the agent finished and sent at most `limit` bytes; the
 * reason otherwise.
 */
export async function saveImage(link: AgentLink, volume: Volume, image: string, limit: number): Promise<string | null> {
  const partial = `${image}.new`;
  const handle = await open(partial, 'w', 0o600);
  let total = 0;
  let over = false;
  let failed: unknown = null;
  let writes = Promise.resolve();
  const channel = link.open({ kind: 'export', volume });
  channel.onData = (stream, data) => {
    if (stream !== 'out' || over || failed !== null) return channel.ack(data.length);
    total += data.length;
    if (total > limit) {
      over = true;
      return channel.ack(data.length);
    }
    writes = writes
      .then(() => handle.write(data))
      .then(
        () => channel.ack(data.length),
        (e: unknown) => {
          failed = e;
          channel.ack(data.length);
        },
      );
  };
  const info = await idle(channel);
  await writes;
  let problem: string | null = null;
  if (info.code !== 0) problem = info.message ?? `the agent ended with ${info.signal ?? String(info.code)}`;
  else if (over) problem = `it packed to more than ${limit} bytes`;
  else if (failed !== null) problem = failed instanceof Error ? failed.message : String(failed);
  try {
    if (problem === null) await handle.sync();
  } finally {
    await handle.close();
  }
  if (problem === null) await rename(partial, image);
  else await rm(partial, { force: true });
  return problem;
}

function openOn(name: string, sandbox: Sandbox, request: OpenRequest): Channel {
  if (sandbox.link.broken !== null) throw new SandboxError(`qube ${name} does not answer: ${sandbox.link.broken}`);
  return sandbox.link.open(request);
}

async function openImages(name: string, root: string | null, priv: string | null): Promise<Pick<SandboxPlan, 'rootImage' | 'privateImage'>> {
  const rootImage = root === null ? null : await openImage(name, 'root', root);
  try {
    return { rootImage, privateImage: priv === null ? null : await openImage(name, 'private', priv) };
  } catch (e) {
    await rootImage?.close();
    throw e;
  }
}

async function openImage(name: string, volume: Volume, image: string): Promise<FileHandle> {
  try {
    return await open(image, 'r');
  } catch (e) {
    throw new SandboxError(`qube ${name} did not start: its ${volume} volume could not be loaded (${e instanceof Error ? e.message : String(e)})`);
  }
}

async function closeImages(plan: SandboxPlan): Promise<void> {
  await plan.rootImage?.close();
  await plan.privateImage?.close();
}

// Waits for a channel's end while the agent keeps answering.
async function idle(channel: Channel): Promise<ExitInfo> {
  let timer: NodeJS.Timeout | undefined;
  const arm = (): void => {
    clearTimeout(timer);
    timer = setTimeout(() => channel.finish({ code: null, signal: null, message: 'the agent stopped answering' }), STOP_IDLE_MS);
  };
  channel.onActivity = arm;
  arm();
  try {
    return await channel.exited;
  } finally {
    clearTimeout(timer);
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
async function killSandbox(sandbox: Sandbox): Promise<void> {
  const { bwrap, init, closed } = sandbox;
  sandbox.link.close();
  // killed before: its init is gone with bwrap, and that pid may be another process's now
  if (bwrap.exitCode !== null || bwrap.signalCode !== null) return await closed;
  const pid = await Promise.race([init, closed.then(() => undefined)]);
  try {
    if (pid !== undefined) process.kill(pid, 'SIGKILL');
    else bwrap.kill('SIGKILL');
  } catch {
    bwrap.kill('SIGKILL');
  }
  await closed;
}

function pipeAndWait(child: QubeProcess, call: ServiceCall): Promise<number> {
  return new Promise((resolve, reject) => {
    const stdin = child.stdin;
    stdin.on('error', () => undefined);
    if (call.stdin === null) stdin.end();
    else call.stdin.pipe(stdin);
    child.stdout.pipe(call.stdout, { end: false });
    child.stderr.pipe(call.stderr, { end: false });
    // the caller went away and qrexec shut the service's side: its writes fail from now on
    call.stdout.once('close', () => child.closeOutput());
    call.stderr.once('close', () => child.closeOutput());
    child.once('error', reject);
    child.once('close', (code: number | null, signal: NodeJS.Signals | null) => resolve(code ?? 128 + signalNumber(signal ?? 'SIGKILL')));
  });
}

function signalNumber(signal: NodeJS.Signals): number {
  return constants.signals[signal] ?? 9;
}
