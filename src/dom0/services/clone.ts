/**
 * qmcp.Clone+SOURCE: a copy of a visible qube of the same class (a clone of
 * a TemplateVM is a TemplateVM). It copies an explicit set (SPEC §4.5):
 * allowlisted properties, re-validated; allowlisted features; firewall
 * rules; the persistent volumes. Never device assignments, never tags
 * beyond what the birth rule keeps.
 */
import { isQubeName } from '../../shared/names.js';
import { footprint } from '../create/budget.js';
import { giveBirth } from '../create/birth.js';
import type { WriteDeps } from '../create/deps.js';
import { parseNewQube } from '../create/input.js';
import { LEASE_KEY, birthLease } from '../create/lease.js';
import type { NewQubeInput } from '../create/input.js';
import { checkFeatureValue } from '../create/features.js';
import { inheritedDefaultDispvm, inheritedNetvm, requireFreeName, vmValue } from '../create/source.js';
import type { Qubesd } from '../qubesd.js';
import { QubesdError } from '../qubesd.js';
import { ActionableError } from '../service/refusal.js';
import type { Snapshot } from '../service/snapshot.js';
import type { ServiceSpec } from '../service/run.js';

export interface CloneInput extends NewQubeInput {
  readonly source: string;
  /** Seconds the clone lives; null: no expiry. */
  readonly lease: number | null;
}

const CLONABLE = new Set(['AppVM', 'TemplateVM', 'StandaloneVM']);

/** Properties a clone copies when the source sets them, each with its value check. */
const COPIED: Record<string, (v: string) => boolean> = {
  memory: (v) => /^[1-9][0-9]{0,6}$/.test(v),
  maxmem: (v) => /^(0|[1-9][0-9]{0,6})$/.test(v),
  vcpus: (v) => /^[1-9][0-9]{0,2}$/.test(v),
  include_in_backups: (v) => v === 'True' || v === 'False',
  template_for_dispvms: (v) => v === 'True' || v === 'False',
};

async function copyProperties(q: Qubesd, from: string, to: string): Promise<void> {
  for (const [prop, ok] of Object.entries(COPIED)) {
    let v;
    try {
      v = await q.property(from, prop);
    } catch (err) {
      if (err instanceof QubesdError && err.errorClass === 'QubesNoSuchPropertyError') continue;
      throw err;
    }
    if (v.isDefault) continue;
    if (!ok(v.value)) throw new Error(`copied ${prop} fails its check`);
    await q.call('admin.vm.property.Set', to, prop, v.value);
  }
}

async function copyFeatures(q: Qubesd, snapshot: Snapshot, allow: readonly string[], from: string, to: string): Promise<void> {
  const present = new Set((await q.call('admin.vm.feature.List', from)).split('\n').filter(Boolean));
  for (const f of allow) {
    if (!present.has(f)) continue;
    const value = await q.call('admin.vm.feature.Get', from, f);
    // A feature that fails the write rule now is left behind, not copied.
    if (checkFeatureValue(snapshot, allow, f, value) !== null) continue;
    await q.call('admin.vm.feature.Set', to, f, value);
  }
}

async function copyVolumes(q: Qubesd, from: string, to: string): Promise<void> {
  for (const v of (await q.call('admin.vm.volume.List', from)).split('\n').filter(Boolean)) {
    const info = await q.call('admin.vm.volume.Info', from, v);
    if (!/^save_on_stop=True$/m.test(info)) continue;
    const token = await q.call('admin.vm.volume.CloneFrom', from, v);
    await q.call('admin.vm.volume.CloneTo', to, v, token);
  }
}

export function cloneService(deps: WriteDeps): ServiceSpec<CloneInput> {
  return {
    operation: 'clone',
    changesState: true,
    parse(argument, payload) {
      if (!isQubeName(argument)) return null;
      const settings = deps.settings();
      const p = parseNewQube(payload, settings.prefix, [], [LEASE_KEY]);
      if (!p) return null;
      const lease = birthLease(settings.lease, p.extra[LEASE_KEY]);
      if (lease === undefined) return null;
      return { name: p.name, label: p.label, netvm: p.netvm, source: argument, lease };
    },
    targets: (i) => [{ name: i.source, tier: 'full' }],
    async handle(ctx) {
      const { input, qubesd, snapshot, principal } = ctx;
      const settings = deps.settings();
      const source = ctx.targets[0];
      if (!source) throw new Error('no target');
      requireFreeName(snapshot, input.name);
      if (!CLONABLE.has(source.klass)) throw new ActionableError('not_clonable', 'this kind of qube cannot be cloned');
      const template = source.klass === 'AppVM' ? await vmValue(qubesd, source.name, 'template') : null;
      const netvm = await inheritedNetvm(qubesd, snapshot, settings.egress, source.name, input.netvm);
      const defaultDispvm = await inheritedDefaultDispvm(qubesd, snapshot, source.name);
      const label = input.label ?? (await qubesd.property(source.name, 'label')).value;
      const name = await giveBirth(
        { qubesd, principal, settings, deps },
        {
          source,
          keepPropagating: true,
          netvm,
          defaultDispvm,
          inheritsFromSource: false,
          estimate: await footprint(qubesd, source.name),
          name: input.name,
          lease: input.lease,
          async make() {
            await qubesd.call(`admin.vm.Create.${source.klass}`, 'dom0', template ?? '', `name=${input.name} label=${label}`);
          },
          async configure(n) {
            await copyProperties(qubesd, source.name, n);
            await copyFeatures(qubesd, snapshot, settings.features, source.name, n);
            const rules = await qubesd.call('admin.vm.firewall.Get', source.name);
            if (rules !== '') await qubesd.call('admin.vm.firewall.Set', n, '', rules);
            await copyVolumes(qubesd, source.name, n);
          },
        },
      );
      return { name, klass: source.klass, ...(template && snapshot.visible(template) ? { template } : {}) };
    },
  };
}
