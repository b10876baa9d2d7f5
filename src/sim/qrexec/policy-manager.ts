/**
 * The router's policy: the files of the simulated dom0's policy.d, read
 * again for every call and parsed again when they changed (qrexec reloads
 * them when they change), evaluated
 * against qubesd's system info; an `ask` waits for the operator's answer.
 */
import { qubesdCall } from '../../shared/adminapi/client.js';
import type { Policy, PolicyRequest, PolicySyntaxError, Resolution, SystemInfo } from '../../shared/policy/index.js';
import { denyAllPolicy } from '../../shared/policy/index.js';
import { PolicyReloader } from '../../shared/policy/reload.js';
import type { AskQueue } from './asks.js';

/** A resolution that lets the call through. */
export type Allowed = Extract<Resolution, { action: 'allow' }>;

export interface PolicyManagerOptions {
  /** The simulated dom0's root: the policy is under etc/qubes/policy.d. */
  readonly policyRoot: string;
  /** qubesd's internal socket, which answers internal.GetSystemInfo. */
  readonly internalSocket: string;
  readonly asks: AskQueue;
  readonly log: (line: string) => void;
}

export class PolicyManager {
  private readonly files: PolicyReloader;

  constructor(private readonly o: PolicyManagerOptions) {
    this.files = new PolicyReloader(o.policyRoot);
  }

  /** The qubes as the policy sees them: names, types, tags and power states. */
  async systemInfo(): Promise<SystemInfo> {
    const r = await qubesdCall(this.o.internalSocket, { method: 'internal.GetSystemInfo', dest: 'dom0' });
    if (!r.ok) throw new Error(`internal.GetSystemInfo failed: ${r.message}`);
    return JSON.parse(r.data.toString('utf8')) as SystemInfo;
  }

  /** The policy as its files read now; files qrexec would not load refuse every call. */
  load(): Policy {
    try {
      return this.files.load();
    } catch (e) {
      if (e instanceof Error && e.name === 'PolicySyntaxError') {
        this.o.log(`qrexec: invalid policy, refusing every call: ${e.message}`);
        return denyAllPolicy(e as PolicySyntaxError);
      }
      throw e;
    }
  }

  /** The policy's answer to a call, an `ask` settled by the operator; null when the call is refused. */
  async decide(req: PolicyRequest, info: SystemInfo): Promise<Allowed | null> {
    const res = this.load().evaluate(req, info);
    if (res.action === 'deny') {
      this.o.log(`qrexec: refused ${req.source} -> ${req.target} ${req.service}+${req.argument}: ${res.reason}`);
      return null;
    }
    if (res.action === 'allow') return res;
    // qrexec shows its dialog in the caller's GUI qube, and refuses an ask from a qube without one
    if (!info.domains[req.source]?.guivm) {
      this.o.log(`qrexec: refused ${req.source} -> ${req.target} ${req.service}+${req.argument}: the policy asks, but ${req.source} has no GUI qube`);
      return null;
    }
    const answer = await this.o.asks.add({ ...req, targets: res.targets, defaultTarget: res.defaultTarget });
    if (!answer) return null;
    return { action: 'allow', target: answer.target, user: res.user, autostart: res.autostart, notify: res.notify, rule: res.rule };
  }
}
