/** qmcp.Create: an AppVM from a visible template, born by the create rule. */
import { giveBirth } from '../create/birth.js';
import type { WriteDeps } from '../create/deps.js';
import { parseNewQube } from '../create/input.js';
import { LEASE_KEY, birthLease } from '../create/lease.js';
import type { NewQubeInput } from '../create/input.js';
import { egressNetvm, inheritedDefaultDispvm, requireFreeName, sourceLabel } from '../create/source.js';
import { ActionableError } from '../service/refusal.js';
import type { HandlerContext, ServiceSpec } from '../service/run.js';

export interface CreateInput extends NewQubeInput {
  readonly template: string;
  /** Seconds the new qube lives; null: no expiry. */
  readonly lease: number | null;
}

/** Shared by Create and CreateDispTemplate: `dispTemplate` adds template_for_dispvms. */
export function appVmService(deps: WriteDeps, operation: string, dispTemplate: boolean): ServiceSpec<CreateInput> {
  return {
    operation,
    changesState: true,
    parse(argument, payload) {
      if (argument !== '') return null;
      const settings = deps.settings();
      const p = parseNewQube(payload, settings.prefix, ['template'], [LEASE_KEY]);
      if (!p || typeof p.extra['template'] !== 'string') return null;
      const lease = birthLease(settings.lease, p.extra[LEASE_KEY]);
      if (lease === undefined) return null;
      return { name: p.name, label: p.label, netvm: p.netvm, template: p.extra['template'], lease };
    },
    targets: (i) => [{ name: i.template, tier: 'full' }],
    async handle(ctx: HandlerContext<CreateInput>) {
      const { input, qubesd, snapshot, principal } = ctx;
      const settings = deps.settings();
      const source = ctx.targets[0];
      if (!source) throw new Error('no target');
      requireFreeName(snapshot, input.name);
      if (source.klass !== 'TemplateVM') throw new ActionableError('not_a_template', 'the named qube is not a template');
      const netvm = egressNetvm(snapshot, settings.egress, input.netvm);
      const defaultDispvm = await inheritedDefaultDispvm(qubesd, snapshot, source.name);
      const label = input.label ?? (await sourceLabel(qubesd, source.name));
      const name = await giveBirth(
        { qubesd, principal, settings, deps },
        {
          source,
          keepPropagating: false,
          netvm,
          defaultDispvm,
          inheritsFromSource: false,
          estimate: { total: 0, privateSize: 0 },
          name: input.name,
          lease: input.lease,
          async make() {
            await qubesd.call('admin.vm.Create.AppVM', 'dom0', source.name, `name=${input.name} label=${label}`);
          },
          async configure(n) {
            if (dispTemplate) await qubesd.call('admin.vm.property.Set', n, 'template_for_dispvms', 'True');
          },
        },
      );
      return { name, klass: 'AppVM', template: source.name, ...(dispTemplate ? { template_for_dispvms: true } : {}) };
    },
  };
}

export function createService(deps: WriteDeps): ServiceSpec<CreateInput> {
  return appVmService(deps, 'create', false);
}
