/**
 * An in-memory stand-in for what the principal reaches over qrexec, just
 * enough for the scenarios, with switches that break one rule each: the
 * self-test must notice every one of them.
 */
import type { Caller, CallHooks, Reply } from '../../src/principal/selftest/caller.js';

export interface Breakage {
  /** Info names an outside qube as a netvm. */
  leakNetvm?: boolean;
  /** Info shows the tier tag beside the umbrella. */
  showTierTag?: boolean;
  /** Info on a missing name answers "no such qube" instead of the refusal. */
  noSuchQube?: boolean;
  /** The list names a qube whose info is refused. */
  listOutside?: boolean;
  /** Remove deletes for real: the name is free again and the pool forgets it. */
  realDelete?: boolean;
  /** A create from a template is born offline instead of behind the egress qube. */
  bornOffline?: boolean;
  /** A new qube is visible, offline, before its create has set its netvm. */
  visibleEarly?: boolean;
  /** No create is accepted at all. */
  noCreate?: boolean;
  /** A gated call on a name outside the world waits for the operator too. */
  askOutside?: boolean;
  /** A denied call acts all the same (and still answers the refusal). */
  deniedActs?: boolean;
  /** A denied call answers as if allowed. */
  deniedAnswersOk?: boolean;
}

/** The fake's gate: the dom0-service operations it asks for; the operator's answers are queued in `answers`. */
export const FAKE_GATED: readonly string[] = ['qmcp.Remove', 'qmcp.SetProperty', 'qmcp.Kill'];

interface Qube {
  klass: string;
  template: string | null;
  netvm: string | null;
  label: string;
  tombstone: boolean;
  providesNetwork: boolean;
}

const GiB = 1024 ** 3;
const refused: Reply = { status: 126, stdout: Buffer.alloc(0), stderr: Buffer.from('Request refused\n') };
const ok = (v: unknown): Reply => ({ status: 0, stdout: Buffer.from(JSON.stringify(v)), stderr: Buffer.alloc(0) });
const admin = (text: string): Reply => ({ status: 0, stdout: Buffer.from(text, 'latin1'), stderr: Buffer.alloc(0) });
const refusedAfterWait: Reply = { status: 126, stdout: Buffer.from('\n'), stderr: Buffer.from('Request refused\n') };
const killed: Reply = { status: null, stdout: Buffer.from('\n'), stderr: Buffer.alloc(0) };
const actionable = (code: string): Reply => ({ status: 1, stdout: Buffer.from(JSON.stringify({ error: { code, message: code } })), stderr: Buffer.alloc(0) });

export class FakeHost implements Caller {
  readonly qubes = new Map<string, Qube>([
    ['ai-tpl', { klass: 'TemplateVM', template: null, netvm: null, label: 'black', tombstone: false, providesNetwork: false }],
    ['ai-egress', { klass: 'AppVM', template: 'ai-tpl', netvm: null, label: 'red', tombstone: false, providesNetwork: true }],
    ['ai-box', { klass: 'AppVM', template: 'ai-tpl', netvm: 'ai-egress', label: 'red', tombstone: false, providesNetwork: false }],
  ]);
  /** Every call made, as `target service`. */
  readonly calls: string[] = [];
  /** The operator's answers to the calls that wait, in order; none left is a lapse. */
  readonly answers: ('allow' | 'deny')[] = [];

  constructor(
    private readonly broken: Breakage = {},
    private readonly gated: readonly string[] = FAKE_GATED,
  ) {}

  /** For a gated service: waits as the real gate does; null when the call may act, else the reply (a refusal or the withdrawal). */
  private async gate(service: string, visible: boolean, hooks: CallHooks | undefined, act: () => void): Promise<Reply | null> {
    if (!this.gated.includes(service) || (!visible && !this.broken.askOutside)) return null;
    hooks?.onWait?.();
    await new Promise((next) => setImmediate(next));
    if (hooks?.signal?.aborted) return killed;
    if (!visible) return refusedAfterWait;
    const answer = this.answers.shift() ?? 'deny';
    if (answer === 'allow' || this.broken.deniedAnswersOk) return null;
    if (this.broken.deniedActs) act();
    return refusedAfterWait;
  }

  private visible(name: string): Qube | undefined {
    const q = this.qubes.get(name);
    return q && !q.tombstone ? q : undefined;
  }

  private info(name: string, q: Qube): Record<string, unknown> {
    return {
      name,
      klass: q.klass,
      label: q.label,
      template: q.template,
      netvm: this.broken.leakNetvm && name === 'ai-box' ? 'sys-firewall' : q.netvm,
      provides_network: q.providesNetwork,
      state: 'Halted',
      tags: this.broken.showTierTag && name === 'ai-box' ? ['ai-managed', 'ai-full'] : ['ai-managed'],
    };
  }

  private born(name: string, q: Qube): Reply {
    this.qubes.set(name, q);
    return ok({ name, klass: q.klass });
  }

  async call(target: string, service: string, argument?: string, payload?: Uint8Array, hooks?: CallHooks): Promise<Reply> {
    this.calls.push(`${target} ${service}`);
    const body = payload ? (JSON.parse(Buffer.from(payload).toString('utf8')) as Record<string, unknown>) : {};
    if (target !== '@adminvm') {
      const q = this.visible(target);
      if (!q) return refused;
      if (service === 'admin.vm.CurrentState') return admin('0\0mem=0 power_state=Halted');
      if (service === 'admin.vm.firewall.Get') return admin('0\0action=accept\n');
      if (service === 'admin.vm.firewall.Reload') return admin('0\0');
      return refused;
    }
    const arg = argument ?? '';
    switch (service) {
      case 'qmcp.List': {
        const rows = [...this.qubes].filter(([, q]) => !q.tombstone).map(([name, q]) => ({ name, class: q.klass, state: 'Halted', label: q.label, template: q.template, netvm: q.netvm }));
        if (this.broken.listOutside) rows.push({ name: 'vault', class: 'AppVM', state: 'Halted', label: 'black', template: null, netvm: null });
        return ok({ qubes: rows });
      }
      case 'qmcp.Info': {
        const q = this.visible(arg);
        if (q) return ok(this.info(arg, q));
        return this.broken.noSuchQube && arg !== 'dom0' ? actionable('no-such-qube') : refused;
      }
      case 'qmcp.PoolFigures': {
        const used = [...this.qubes.values()].length * GiB;
        return ok({ used, cap: 100 * GiB, headroom: 100 * GiB - used });
      }
      case 'qmcp.Create': {
        const name = String(body['name']);
        const tpl = this.visible(String(body['template']));
        if (this.broken.noCreate || !name.startsWith('ai-') || !tpl || tpl.klass !== 'TemplateVM') return refused;
        if (this.visible(name)) return actionable('exists');
        if (this.qubes.has(name)) return refused;
        const q: Qube = { klass: 'AppVM', template: String(body['template']), netvm: this.broken.bornOffline ? null : 'ai-egress', label: 'red', tombstone: false, providesNetwork: false };
        if (this.broken.visibleEarly) {
          this.qubes.set(name, { ...q, netvm: null });
          // the rest of the create happens after the caller's next read
          await new Promise((done) => setImmediate(done));
        }
        return this.born(name, q);
      }
      case 'qmcp.Clone': {
        const src = this.visible(arg);
        const name = String(body['name']);
        if (!src || !name.startsWith('ai-') || this.qubes.has(name)) return refused;
        return this.born(name, { ...src });
      }
      case 'qmcp.Remove': {
        const q = this.visible(arg);
        const remove = (): void => {
          if (!q) return;
          if (this.broken.realDelete) this.qubes.delete(arg);
          else q.tombstone = true;
        };
        const held = await this.gate(service, q !== undefined, hooks, remove);
        if (held) return held;
        if (!q) return refused;
        remove();
        return ok({ name: arg, removed: true });
      }
      case 'qmcp.Kill': {
        const held = await this.gate(service, this.visible(arg) !== undefined, hooks, () => undefined);
        if (held) return held;
        // every fixture is halted
        return this.visible(arg) ? actionable('not_running') : refused;
      }
      case 'qmcp.SetProperty': {
        const q = this.visible(arg);
        const set = (): void => {
          if (q && body['name'] === 'label') q.label = String(body['value']);
        };
        const held = await this.gate(service, q !== undefined, hooks, set);
        if (held) return held;
        if (!q) return refused;
        set();
        return ok({ name: body['name'], value: body['value'] });
      }
      default:
        return refused;
    }
  }
}
