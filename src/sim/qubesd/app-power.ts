/**
 * Power states: start (its netvm first), shutdown, kill, pause and unpause,
 * each firing the events qubesd fires, and which running qubes' volumes a
 * template's stop made outdated.
 */
import { randomUUID } from 'node:crypto';
import type { EventKwargs } from '../../shared/adminapi/wire.js';
import { err, QubesError } from './errors.js';
import { commitAtStop } from './revisions.js';
import type { RevisionHooks } from './revisions.js';
import type { PropValue, VmState } from './state.js';

/** Where the sandbox layer plugs into power changes; the default does nothing. */
export interface PowerHooks extends RevisionHooks {
  /** Runs before a qube is marked running; throwing fails the start. */
  beforeStart?(vm: string): Promise<void> | void;
  /** Runs after a qube stopped (shutdown or kill). */
  afterStop?(vm: string): Promise<void> | void;
  /** Runs after a qube was removed. */
  afterRemove?(vm: string): Promise<void> | void;
  /** Runs after a volume's content was cloned into another qube's volume. */
  afterVolumeClone?(source: string, target: string, volume: string): Promise<void> | void;
}

/** What power changes read, fire through and hand on. */
export interface PowerHost {
  readonly vms: ReadonlyMap<string, VmState>;
  readonly hooks: PowerHooks;
  fire(subject: string, event: string, kwargs?: EventKwargs): void;
  mustGet(name: string): VmState;
  sorted(): VmState[];
  save(): void;
  propValue(vm: VmState, prop: string): PropValue | undefined;
  /** Disposables' clean-up after a failed start and after a stop. */
  afterStartFailed(vm: VmState): Promise<void>;
  afterStop(vm: VmState): Promise<void>;
}

export class AppPower {
  /** Starts in flight, so a concurrent start waits for the first (qubesd's startup_lock). */
  private readonly starting = new Map<string, Promise<void>>();
  /** When each qube last started and stopped, in one sequence: which snapshots are outdated. */
  private powerSeq = 0;
  private readonly startedAt = new Map<string, number>();
  private readonly stoppedAt = new Map<string, number>();

  constructor(private readonly app: PowerHost) {}

  /**
   * Qubes' storage.outdated_volumes, non-empty: the running qube's volumes
   * snapshot a qube up its template chain that stopped (committing its
   * volumes) after this one started.
   */
  hasOutdatedVolumes(vm: VmState): boolean {
    const started = this.startedAt.get(vm.name);
    if (vm.power === 'Halted' || started === undefined) return false;
    const seen = new Set<string>([vm.name]);
    let t = this.app.propValue(vm, 'template');
    while (typeof t === 'string' && !seen.has(t)) {
      seen.add(t);
      if ((this.stoppedAt.get(t) ?? -1) > started) return true;
      const next = this.app.vms.get(t);
      t = next ? this.app.propValue(next, 'template') : undefined;
    }
    return false;
  }

  async start(vm: VmState): Promise<void> {
    // dom0 is qubesd's "fake domain": its power calls raise (qubes/vm/adminvm.py)
    if (vm.klass === 'AdminVM') throw err.notHalted(vm.name, 'Cannot start Dom0 fake domain!');
    const pending = this.starting.get(vm.name);
    if (pending) return pending;
    if (vm.power !== 'Halted') return;
    const run = this.startHalted(vm).finally(() => this.starting.delete(vm.name));
    this.starting.set(vm.name, run);
    return run;
  }

  private async startHalted(vm: VmState): Promise<void> {
    const prohibit = vm.features['prohibit-start'];
    if (prohibit) {
      const reason = `Qube start is prohibited. Rationale: ${prohibit}`;
      this.app.fire(vm.name, 'domain-start-failed', [['reason', reason]]);
      throw err.generic(reason);
    }
    const template = this.app.propValue(vm, 'template');
    if ((vm.klass === 'AppVM' || vm.klass === 'DispVM') && (typeof template !== 'string' || !this.app.vms.has(template))) {
      throw err.noTemplate(vm.name);
    }
    const guid = randomUUID();
    const memory = Number(this.app.propValue(vm, 'memory') ?? 400);
    this.app.fire(vm.name, 'domain-pre-start', [
      ['start_guid', guid],
      ['mem_required', String(memory * 1024 * 1024)],
    ]);
    const netvm = this.app.propValue(vm, 'netvm');
    try {
      if (typeof netvm === 'string') {
        const n = this.app.mustGet(netvm);
        if (n.power === 'Halted') await this.start(n);
      }
      vm.power = 'Transient';
      await this.app.hooks.beforeStart?.(vm.name);
    } catch (e) {
      vm.power = 'Halted';
      const reason = e instanceof Error ? e.message : String(e);
      this.app.fire(vm.name, 'domain-start-failed', [['reason', reason]]);
      await this.app.afterStartFailed(vm);
      throw e instanceof QubesError ? e : err.generic(`Start failed: ${reason}`);
    }
    this.app.fire(vm.name, 'domain-pre-spawn', [['start_guid', guid]]);
    for (const p of ['xid', 'stubdom_xid', 'start_time']) this.app.fire(vm.name, `property-reset:${p}`, [['name', p]]);
    this.app.fire(vm.name, 'domain-spawn', [['start_guid', guid]]);
    this.app.fire(vm.name, 'domain-pre-unpaused');
    vm.power = 'Running';
    this.startedAt.set(vm.name, ++this.powerSeq);
    this.app.fire(vm.name, 'domain-unpaused');
    this.app.fire(vm.name, 'domain-start', [['start_guid', guid]]);
    this.app.save();
  }

  async shutdown(vm: VmState, force: boolean): Promise<void> {
    if (vm.klass === 'AdminVM') throw err.vm('Cannot shutdown Dom0 fake domain!');
    if (vm.power === 'Halted') throw err.notStarted(vm.name);
    if (!force) {
      const users = this.app.sorted().filter((v) => v.power !== 'Halted' && this.app.propValue(v, 'netvm') === vm.name);
      if (users.length) {
        throw err.inUse(vm.name, `There are other VMs connected to this VM: ${users.map((v) => v.name).join(', ')}`);
      }
    }
    this.app.fire(vm.name, 'domain-pre-shutdown', [['force', force ? 'True' : 'False']]);
    await this.stopped(vm);
  }

  async kill(vm: VmState): Promise<void> {
    if (vm.klass === 'AdminVM') throw err.vm('Cannot kill Dom0 fake domain!');
    if (vm.power === 'Halted') throw err.notStarted(vm.name);
    await this.stopped(vm);
  }

  private async stopped(vm: VmState): Promise<void> {
    vm.power = 'Halted';
    this.stoppedAt.set(vm.name, ++this.powerSeq);
    try {
      // the content before this run becomes a revision, before the stop saves the new content
      await commitAtStop(vm, new Date(), this.app.hooks);
    } catch {
      // storage the host could not copy: the stop goes on, as the qube is down either way
    }
    try {
      await this.app.hooks.afterStop?.(vm.name);
    } catch {
      // the qube is down either way
    }
    this.app.fire(vm.name, 'domain-stopped');
    for (const p of ['xid', 'stubdom_xid', 'start_time']) this.app.fire(vm.name, `property-reset:${p}`, [['name', p]]);
    this.app.fire(vm.name, 'domain-shutdown');
    await this.app.afterStop(vm);
    this.app.save();
  }

  pause(vm: VmState): void {
    if (vm.klass === 'AdminVM' || vm.power !== 'Running') throw err.notRunning(vm.name);
    this.app.fire(vm.name, 'domain-pre-paused');
    vm.power = 'Paused';
    this.app.fire(vm.name, 'domain-paused');
    this.app.save();
  }

  unpause(vm: VmState): void {
    if (vm.power !== 'Paused') throw err.notPaused(vm.name);
    this.app.fire(vm.name, 'domain-pre-unpaused');
    vm.power = 'Running';
    this.app.fire(vm.name, 'domain-unpaused');
    this.app.save();
  }
}
