/**
 * qmcp.FirewallSet+QUBE (net tier): replaces a qube's firewall rules. The
 * payload is the rules in Qubes' own line syntax, each checked as qubesd
 * checks it (src/shared/firewall-rules.ts) before the gate asks anyone, and
 * passed to qubesd byte for byte. Echoes the rules it set.
 */
import { decodeRules } from '../../shared/firewall-rules.js';
import { isQubeName } from '../../shared/names.js';
import { ServiceRefusal } from '../service/refusal.js';
import type { ServiceSpec } from '../service/run.js';

export interface FirewallSetInput {
  readonly name: string;
  readonly rules: readonly string[];
  /** The canonical payload: every rule followed by a newline, nothing else. */
  readonly payload: Buffer;
}

export const firewallSetService: ServiceSpec<FirewallSetInput> = {
  operation: 'firewall.set',
  changesState: true,
  parse(argument, payload) {
    const rules = isQubeName(argument) ? decodeRules(payload) : null;
    return rules === null ? null : { name: argument, rules, payload };
  },
  targets: (input) => [{ name: input.name, tier: 'net' }],
  reads: 'named',
  async handle({ input, qubesd, snapshot }): Promise<{ name: string; rules: readonly string[] }> {
    if (!(await snapshot.recheck(qubesd, input.name, 'net'))) throw new ServiceRefusal('hidden since the snapshot');
    await qubesd.call('admin.vm.firewall.Set', input.name, '', input.payload);
    return { name: input.name, rules: input.rules };
  },
};
